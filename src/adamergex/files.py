"""File helpers every layer shares: the adamergex cache folder, file hashes, and the one atomic writer.

Every file or folder adamergex writes appears complete or not at all: :func:`atomic_file` and
:func:`atomic_directory` fill a temporary name beside the destination and rename it into place only when the
work finished (:func:`atomic_write_bytes` / :func:`atomic_write_text` for small files). Nothing else in the
package writes to a temporary name and renames.

The cache root is ``$ADAMERGEX_CACHE`` when set, else ``$XDG_CACHE_HOME/adamergex``, else
``~/.cache/adamergex``; it holds downloaded and extracted data, assembled and dequantised models, and notices.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from adamergex.errors import OutputExistsError, StorageError

CACHE_ENV = "ADAMERGEX_CACHE"
_CHUNK = 1 << 20
# errno values that mean "the machine's storage refused" (permissions, read-only or full disk, a file in the way)
# rather than a bug; other OSErrors (e.g. a file vanishing under us) keep their traceback.
_STORAGE_NAMES = (
    "EACCES",
    "EPERM",
    "EROFS",
    "ENOSPC",
    "EDQUOT",
    "ENOTDIR",
    "EISDIR",
    "EEXIST",
    "ENAMETOOLONG",
    "EIO",
    "EFBIG",
)
STORAGE_ERRNOS = frozenset(getattr(errno, name) for name in _STORAGE_NAMES if hasattr(errno, name))


def storage_error(error: OSError, action: str, path: str | Path) -> StorageError:
    """A one-line :class:`StorageError` for an ``OSError`` met while ``action`` (e.g. "write") on ``path``."""
    reason = error.strerror or type(error).__name__
    culprit = f" ({error.filename})" if error.filename and str(error.filename) != str(path) else ""
    return StorageError(f"cannot {action} {path}: {reason}{culprit}")


def make_folder(path: str | Path, what: str = "folder") -> Path:
    """Create ``path`` and its parents; a file in the way, no permission or a read-only or full disk is a
    :class:`StorageError` naming ``what``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StorageError(f"{what} {path} is a file; expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise storage_error(error, f"create {what}", path) from None
    return path


def cache_root() -> Path:
    """The cache root (created on first use)."""
    if os.environ.get(CACHE_ENV):
        root = Path(os.environ[CACHE_ENV]).expanduser()
        what = f"the cache folder (${CACHE_ENV})"
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "adamergex"
        what = "the cache folder ($XDG_CACHE_HOME/adamergex)"
    else:
        root = Path.home() / ".cache" / "adamergex"
        what = "the cache folder"
    return make_folder(root, what)


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux), else set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _refuse_existing(path: Path, what: str, verb: str) -> None:
    raise OutputExistsError(f"{what} already exists: {path} (pass --force / force=True to {verb} it)")


@contextlib.contextmanager
def atomic_file(path: str | Path, *, force: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary stream whose content becomes ``path`` only if the block finishes without an exception.

    The file gets the mode a plain ``open`` would give it (0666 less the umask), not ``mkstemp``'s 0600.
    Raises :class:`OutputExistsError` before writing when ``path`` exists and ``force`` is false, and
    :class:`StorageError` when the folder cannot be created or written (nothing is left behind).
    """
    path = Path(path)
    if path.exists() and not force:
        _refuse_existing(path, "output file", "overwrite")
    if path.is_dir():
        raise StorageError(f"cannot write {path}: it is a folder; expected a file path")
    make_folder(path.parent)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise storage_error(error, "write", path) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise storage_error(error, "write", path) from None
        raise


def atomic_write_bytes(path: str | Path, data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path, force=force) as stream:
        stream.write(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, force: bool = False) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), force=force)


@contextlib.contextmanager
def atomic_directory(out: str | Path, *, force: bool = False, action: str = "write") -> Iterator[Path]:
    """Yield a temporary folder that becomes ``out`` only if the block finishes without an exception.

    The temporary folder is ``.<name>.tmp-<8 hex>`` beside ``out``. An existing ``out`` is refused before any
    work is done unless ``force``; with ``force`` it is replaced only after the new content is complete
    (several writers may race; the last one's folder stays). Without ``force``, an ``out`` that another
    process put in place while we worked is an :class:`OutputExistsError` (callers filling a cache with equal
    content catch it and keep theirs). On failure the temporary folder is removed. A path that cannot be
    written (no permission, a read-only or full disk, a file in the way) is a :class:`StorageError` saying
    ``cannot <action> <out>``.
    """
    out = Path(out)
    if out.exists() and not force:
        _refuse_existing(out, "output folder", "replace")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output path exists and is not a folder: {out}")
    make_folder(out.parent)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
    except OSError as error:
        raise storage_error(error, action, out) from None
    try:
        yield tmp
        _move_into_place(tmp, out, force=force)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
            raise storage_error(error, action, out) from None
        raise


def discard_directory(folder: Path) -> None:
    """Remove ``folder`` by first renaming it aside (``.<name>.old-<8 hex>``), so no reader ever sees it half
    deleted; a folder that is already gone is fine."""
    aside = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
    with contextlib.suppress(FileNotFoundError):
        folder.rename(aside)
        shutil.rmtree(aside, ignore_errors=True)


def _move_into_place(tmp: Path, out: Path, *, force: bool, attempts: int = 100) -> None:
    """Rename ``tmp`` to ``out``; with ``force`` an existing ``out`` is moved aside first and then removed.

    Another writer may put its own folder at ``out`` between our two renames; we then try again, so
    concurrent writers never fail and one complete folder always ends at ``out``.
    """
    for _ in range(attempts):
        if out.exists() and not force:
            raise OutputExistsError(
                f"output folder appeared while writing: {out} (pass --force / force=True to replace it)"
            )
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        moved_aside = False
        if out.exists():
            with contextlib.suppress(FileNotFoundError):
                out.rename(old)
                moved_aside = True
        try:
            tmp.rename(out)
            return
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        finally:
            if moved_aside:
                shutil.rmtree(old, ignore_errors=True)
    raise StorageError(f"cannot write {out}: other writers kept replacing it ({attempts} attempts)")
