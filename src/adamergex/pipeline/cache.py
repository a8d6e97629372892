"""Content-addressed step outputs: a step's folder is named by the hash of everything that determines it.

A step's key is the sha256 of the canonical JSON of its inputs (settings plus the keys of the steps it reads),
so changing a setting invalidates exactly the steps downstream of it.

Integrity: a folder becomes visible under its key only by an atomic rename after its content is complete and
its manifest (``step.json``) records the size and sha256 of every file. Every entry a run takes from the cache
is verified against those hashes first (once per run); a damaged entry (a flipped byte, a truncated or extra
file, an unreadable manifest) is reported, removed and recomputed, never reused. A killed run or a full disk
leaves at most a temporary folder, which is never read and is swept by the next run.

Concurrency: a step is computed under a per-step lock (``filelock``: ``flock`` on POSIX, which the kernel
releases when its process dies, so a crashed run never leaves a stale lock). A run that finds a step locked
waits, then takes the sealed result, so several runs (or workers) on one folder compute each step once. The
sweep removes a temporary folder only when no live process holds its step's lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from adamergex.errors import StorageError
from adamergex.files import (
    atomic_directory,
    atomic_write_text,
    discard_directory,
    make_folder,
    sha256_file,
    storage_error,
)

MANIFEST = "step.json"
SCHEMA_VERSION = 1
#: Manifest format: 2 records each file's size and sha256 (1, sizes only, is treated as unverifiable).
MANIFEST_FORMAT = 2
JOURNAL = "seals.jsonl"
LOCKS = ".locks"

_log = logging.getLogger(__name__)


def step_key(step: str, inputs: dict[str, Any]) -> str:
    """sha256 of the step name and its inputs as canonical JSON (sorted keys, no whitespace)."""
    payload = json.dumps(
        {"step": step, "schema": SCHEMA_VERSION, "inputs": inputs}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _owner() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def _files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and p != folder / MANIFEST]


def _signature(folder: Path) -> tuple[tuple[str, int, int, int], ...]:
    """What a verified entry looked like (name, size, mtime, inode of each file): a cheap "unchanged since"."""
    stats = [(path, path.stat()) for path in [*_files(folder), folder / MANIFEST]]
    return tuple((str(path.relative_to(folder)), s.st_size, s.st_mtime_ns, s.st_ino) for path, s in stats)


def entry_problem(folder: Path, key: str) -> str | None:
    """Why the sealed entry in ``folder`` cannot be trusted for ``key``, or None when every file matches its
    manifest (set of files, sizes and sha256)."""
    try:
        record = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"its manifest {MANIFEST} is unreadable"
    if not isinstance(record, dict) or record.get("key") != key:
        return f"its manifest {MANIFEST} names another key"
    files = record.get("files")
    if record.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
        return "it was sealed without content hashes (by an older version)"
    present = {str(p.relative_to(folder)): p for p in _files(folder)}
    for name in sorted(set(files) - set(present)):
        return f"{name} is missing"
    for name in sorted(set(present) - set(files)):
        return f"{name} was added after sealing"
    for name, expected in sorted(files.items()):
        if not isinstance(expected, dict):
            return f"its manifest has no hash for {name}"
        size = present[name].stat().st_size
        if size != expected.get("size"):
            return f"{name} has {size} bytes, {expected.get('size')} when sealed"
        if sha256_file(present[name]) != expected.get("sha256"):
            return f"{name} does not match its sha256"
    return None


def sealed_manifests(root: Path) -> list[Path]:
    """The manifest of every sealed entry under a cache root (``STEP/KEY/step.json``), sorted; scratch and
    replaced folders (names starting with a dot) are not entries."""
    return [
        manifest
        for manifest in sorted(Path(root).glob(f"*/*/{MANIFEST}"))
        if not (manifest.parent.name.startswith(".") or manifest.parent.parent.name.startswith("."))
    ]


class StepCache:
    """Step folders under ``root/<step>/<key[:16]>``, verified before reuse and produced under a lock.

    Args:
        root: the cache folder.
        report: called with a one-line message when an entry is damaged or a run waits for another.
        read_only: look, never change anything (a dry run): damage is reported but not removed, no locks.
    """

    def __init__(
        self, root: str | Path, *, report: Callable[[str], None] | None = None, read_only: bool = False
    ) -> None:
        self.root = Path(root)
        self.report = report or _log.warning
        self.read_only = read_only
        self._verified: dict[Path, tuple] = {}
        self._locks: dict[Path, FileLock] = {}

    def path(self, step: str, key: str) -> Path:
        return self.root / step.replace("/", "_") / key[:16]

    # -- reading ----------------------------------------------------------------------------------------------
    def lookup(self, step: str, key: str) -> Path | None:
        """The finished folder for ``key``, or None; a damaged entry is reported and removed (None)."""
        folder = self.path(step, key)
        if not (folder / MANIFEST).is_file():
            return None
        if self._verified.get(folder) == _signature(folder):
            return folder
        problem = entry_problem(folder, key)
        if problem is None:
            self._verified[folder] = _signature(folder)
            return folder
        self._damaged(folder, step, problem)
        return None

    def _damaged(self, folder: Path, step: str, problem: str) -> None:
        if self.read_only:
            self.report(f"cache entry {step}/{folder.name} is damaged: {problem}; a run will recompute it")
            return
        self.report(f"cache entry {step}/{folder.name} is damaged: {problem}; recomputing it")
        self._verified.pop(folder, None)
        discard_directory(folder)

    def verify_all(self) -> tuple[int, list[str]]:
        """Check every sealed entry under the root, reachable from the current config or not.

        Returns the number of entries checked and a line per damaged entry (removed unless ``read_only``).
        """
        checked, damaged = 0, []
        for manifest in sealed_manifests(self.root):
            folder = manifest.parent
            checked += 1
            try:
                key = str(json.loads(manifest.read_text(encoding="utf-8"))["key"])
            except (OSError, ValueError, KeyError, TypeError):
                key = ""
            problem = self._problem(folder, key)
            if problem is None:
                continue
            # Recheck under the step's lock: another run may have just replaced the entry with a good one.
            with self._held(self._lock_path(folder)) if not self.read_only else contextlib.nullcontext():
                problem = self._problem(folder, key) if folder.is_dir() else None
                if problem is not None:
                    damaged.append(f"{folder.parent.name}/{folder.name}: {problem}")
                    self._damaged(folder, folder.parent.name, problem)
        return checked, damaged

    @staticmethod
    def _problem(folder: Path, key: str) -> str | None:
        return entry_problem(folder, key) if key.startswith(folder.name) else f"its {MANIFEST} is unreadable"

    # -- locking ----------------------------------------------------------------------------------------------
    def _lock_path(self, folder: Path) -> Path:
        return self.root / LOCKS / f"{folder.parent.name}-{folder.name}.lock"

    @contextlib.contextmanager
    def _held(self, lock_path: Path, label: str = "") -> Iterator[None]:
        """Hold the lock at ``lock_path`` (re-entrant within this cache), saying whom we wait for."""
        lock = self._locks.setdefault(lock_path, FileLock(str(lock_path)))
        owner_path = lock_path.with_suffix(".owner")
        if not lock.is_locked:
            make_folder(lock_path.parent, "the step cache")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                self.report(f"waiting for {self._describe_owner(owner_path)} to finish {label or lock_path.stem}")
                lock.acquire()
            except OSError as error:
                raise storage_error(error, "lock", lock_path) from None
        else:
            lock.acquire()
        try:
            if lock.lock_counter == 1:
                atomic_write_text(owner_path, json.dumps(_owner()), force=True)
            yield
        finally:
            if lock.lock_counter == 1:
                owner_path.unlink(missing_ok=True)
            lock.release()

    @staticmethod
    def _describe_owner(owner_path: Path) -> str:
        try:
            owner = json.loads(owner_path.read_text())
            return f"another run (pid {owner['pid']} on {owner['host']}, since {owner['time']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another run"

    @contextlib.contextmanager
    def claim(self, step: str, key: str, label: str = "") -> Iterator[Path | None]:
        """Hold ``step``/``key``'s lock and yield its sealed folder, or None when the caller must produce it.

        A run that finds the step locked waits for the holder, then sees the holder's sealed result. Read-only
        caches take no lock and only look.
        """
        if self.read_only:
            yield self.lookup(step, key)
            return
        with self._held(self._lock_path(self.path(step, key)), f"{step} {label}".strip()):
            yield self.lookup(step, key)

    # -- writing ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def produce(self, step: str, key: str, inputs: dict[str, Any]) -> Iterator[Path]:
        """Yield a temporary folder to fill; on success it is sealed with a manifest and renamed into place."""
        if self.read_only:
            raise StorageError(f"cannot produce {step}/{key[:16]}: the cache is read-only (dry run)")
        final = self.path(step, key)
        make_folder(final.parent, "the step cache")
        with self._held(self._lock_path(final), step):
            # force: a damaged entry left under our key (found by lookup) is replaced, never reused.
            with atomic_directory(final, force=True, action="write the cache entry") as tmp:
                yield tmp
                self._seal(tmp, step, key, inputs)
            self._verified[final] = _signature(final)
            self._journal(step, key)

    @staticmethod
    def _seal(tmp: Path, step: str, key: str, inputs: dict[str, Any]) -> None:
        files = {}
        for path in _files(tmp):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            files[str(path.relative_to(tmp))] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
        record = {
            "format": MANIFEST_FORMAT,
            "step": step,
            "key": key,
            "inputs": inputs,
            "files": files,
            "sealed_by": _owner(),
        }
        with open(tmp / MANIFEST, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record, indent=2, sort_keys=True, default=str))
            handle.flush()
            os.fsync(handle.fileno())

    def _journal(self, step: str, key: str) -> None:
        """Append one line per sealed entry (an audit trail: who computed what, when)."""
        line = json.dumps({"step": step, "key": key, **_owner()}) + "\n"
        with open(self.root / JOURNAL, "a", encoding="utf-8") as handle:
            handle.write(line)

    def prepare(self) -> None:
        """Create the root (refusing an unwritable one before any work) and sweep leftovers of killed runs."""
        if self.read_only:
            return
        make_folder(self.root, "the step cache")
        probe = self.root / f".write-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise storage_error(error, "write in the step cache", self.root) from None
        self.sweep()

    def sweep(self) -> int:
        """Remove temporary folders left by killed runs (never one whose step lock a live run holds)."""
        removed = 0
        if self.read_only or not self.root.is_dir():
            return removed
        for path in self.root.glob("*/.*.old-*"):
            shutil.rmtree(path, ignore_errors=True)
        make_folder(self.root / LOCKS, "the step cache")
        for path in self.root.glob("*/.*.tmp-*"):
            name = path.name[1:].split(".tmp-")[0]
            # A separate lock object: it conflicts even with a lock this process holds, so a temporary folder
            # is removed only when no run at all (this one included) is filling it.
            lock = FileLock(str(self.root / LOCKS / f"{path.parent.name}-{name}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
            finally:
                lock.release()
        return removed
