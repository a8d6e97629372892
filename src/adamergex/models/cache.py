"""The adamergex cache folder and content hashes of large files that are computed once.

The cache lives in ``$ADAMERGEX_CACHE`` when set, else ``$XDG_CACHE_HOME/adamergex``, else
``~/.cache/adamergex``. It holds dequantised GGUF models (as safetensors folders keyed by the GGUF's sha256),
assembled packaged GGUF files, a memo of file hashes and the markers of licence notices already shown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from adamergex.files import atomic_write_text, cache_root, sha256_file

_HASH_MEMO = "file_hashes.json"


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, memoised in the cache by (absolute path, size, mtime) so big files are read once.

    A changed file (different size or modification time) is hashed again; the memo is only a speed-up.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = str(path)
    memo_path = cache_root() / _HASH_MEMO
    try:
        memo = json.loads(memo_path.read_text()) if memo_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        memo = {}
    entry = memo.get(key)
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return str(entry["sha256"])
    digest = sha256_file(path)
    memo[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    atomic_write_text(memo_path, json.dumps(memo, indent=1, sort_keys=True), force=True)
    return digest


def files_fingerprint(files: Iterable[Path], root: Path) -> str:
    """sha256 over (relative name, sha256 of content) of each file, in sorted order of names."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(bytes.fromhex(file_sha256(path)))
    return digest.hexdigest()
