"""Content-addressed step outputs: a step's folder is named by the hash of everything that determines it.

A step's key is the sha256 of the canonical JSON of its inputs (settings plus the keys of the steps it reads),
so changing a setting invalidates exactly the steps downstream of it. A folder becomes visible under its key
only by an atomic rename after its content and manifest are complete; a killed run or a full disk leaves at most
a temporary folder, which is never read and is swept on the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MANIFEST = "step.json"
SCHEMA_VERSION = 1


def step_key(step: str, inputs: dict[str, Any]) -> str:
    """sha256 of the step name and its inputs as canonical JSON (sorted keys, no whitespace)."""
    payload = json.dumps({"step": step, "schema": SCHEMA_VERSION, "inputs": inputs}, sort_keys=True,
                         separators=(",", ":"), default=str)  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()


def _file_listing(folder: Path) -> dict[str, int]:
    return {
        str(path.relative_to(folder)): path.stat().st_size
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


class StepCache:
    """Step folders under ``root/<step>/<key[:16]>``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, step: str, key: str) -> Path:
        return self.root / step.replace("/", "_") / key[:16]

    def lookup(self, step: str, key: str) -> Path | None:
        """The finished folder for ``key``, or None; a folder whose files do not match its manifest is dropped."""
        folder = self.path(step, key)
        manifest = folder / MANIFEST
        if not manifest.is_file():
            return None
        try:
            record = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            record = {}
        if record.get("key") != key or record.get("files") != _file_listing(folder):
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return folder

    @contextlib.contextmanager
    def produce(self, step: str, key: str, inputs: dict[str, Any]) -> Iterator[Path]:
        """Yield a temporary folder to fill; on success it is sealed with a manifest and renamed into place."""
        final = self.path(step, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            yield tmp
            record = {"step": step, "key": key, "inputs": inputs, "files": _file_listing(tmp)}
            (tmp / MANIFEST).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
            for path in tmp.rglob("*"):
                if path.is_file():
                    with open(path, "rb") as handle:
                        os.fsync(handle.fileno())
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def sweep(self) -> int:
        """Remove temporary folders left by killed runs; return how many."""
        removed = 0
        if self.root.is_dir():
            for path in self.root.glob("*/.*.tmp-*"):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        return removed
