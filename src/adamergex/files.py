"""File helpers every layer shares: the adamergex cache folder and file hashes.

The cache root is ``$ADAMERGEX_CACHE`` when set, else ``$XDG_CACHE_HOME/adamergex``, else
``~/.cache/adamergex``; it holds downloaded and extracted data, assembled and dequantised models, and notices.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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
