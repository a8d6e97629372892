"""File helpers every layer shares: the adamergex cache folder, file hashes and atomic file writes.

The cache root is ``$ADAMERGEX_CACHE`` when set, else ``$XDG_CACHE_HOME/adamergex``, else
``~/.cache/adamergex``; it holds downloaded and extracted data, assembled and dequantised models, and notices.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from adamergex.errors import OutputExistsError, StorageError

CACHE_ENV = "ADAMERGEX_CACHE"
_CHUNK = 1 << 20
# errno values that mean "the machine's storage refused" (permissions, read-only or full disk, a file in the way)
# rather than a bug; other OSErrors (e.g. a file vanishing under us) keep their traceback.
_STORAGE_NAMES = ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT", "ENOTDIR", "EISDIR", "EEXIST", "ENAMETOOLONG", "EIO",
                  "EFBIG")  # fmt: skip
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


def atomic_write_bytes(path: Path, data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    The file gets the mode a plain ``open`` would give it (0666 less the umask), not ``mkstemp``'s 0600.
    Raises :class:`OutputExistsError` before writing when ``path`` exists and ``force`` is false, and
    :class:`StorageError` when the folder cannot be created or written (nothing is left behind).
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass force to overwrite it")
    if path.is_dir():
        raise StorageError(f"cannot write {path}: it is a folder; expected a file path")
    make_folder(path.parent)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise storage_error(error, "write", path) from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise storage_error(error, "write", path) from None
        raise
    return path


def atomic_write_text(path: Path, text: str, *, force: bool = False) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), force=force)
