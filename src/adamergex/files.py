"""File helpers every layer shares: the adamergex cache folder, file hashes and atomic file writes.

The cache root is ``$ADAMERGEX_CACHE`` when set, else ``$XDG_CACHE_HOME/adamergex``, else
``~/.cache/adamergex``; it holds downloaded and extracted data, assembled and dequantised models, and notices.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from adamergex.errors import OutputExistsError

CACHE_ENV = "ADAMERGEX_CACHE"
_CHUNK = 1 << 20


def cache_root() -> Path:
    """The cache root (created on first use)."""
    if os.environ.get(CACHE_ENV):
        root = Path(os.environ[CACHE_ENV]).expanduser()
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "adamergex"
    else:
        root = Path.home() / ".cache" / "adamergex"
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    Raises :class:`OutputExistsError` before writing when ``path`` exists and ``force`` is false.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str, *, force: bool = False) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"), force=force)
