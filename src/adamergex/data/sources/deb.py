"""Read Debian binary packages (``.deb``) with the standard library only; no ``dpkg`` needed.

A ``.deb`` is an ``ar`` archive: the global header ``!<arch>\\n``, then members, each a 60-byte header (name 16,
mtime 12, uid 6, gid 6, mode 8, size 10, magic ``\\x60\\n``) followed by ``size`` bytes padded to an even length.
Its members are ``debian-binary``, ``control.tar.<ext>`` and ``data.tar.<ext>``, where ``<ext>`` is ``xz``,
``gz``, ``bz2``, ``zst`` or nothing. ``zst`` needs the optional ``zstandard`` package.

:func:`read_deb_tree` returns the regular files, symbolic links and hard links of the data archive under one
folder, with paths normalised (no leading ``./``), and :func:`resolve_link` follows links inside that tree.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from adamergex.data.cache import DataFormatError

AR_MAGIC = b"!<arch>\n"
_HEADER = 60
_MAX_LINK_DEPTH = 40
_TAR_MODES = {"": "r:", ".gz": "r:gz", ".xz": "r:xz", ".bz2": "r:bz2"}


@dataclass(frozen=True)
class DebEntry:
    """One entry of a package's data archive.

    Attributes:
        kind: ``file``, ``symlink`` or ``hardlink``.
        data: the bytes of a regular file (empty for links).
        target: for links, the normalised archive path the link points to.
    """

    kind: Literal["file", "symlink", "hardlink"]
    data: bytes = b""
    target: str = ""


def ar_members(archive: bytes, origin: str = "<deb>") -> dict[str, bytes]:
    """The members of an ``ar`` archive, by name (GNU's trailing ``/`` removed)."""
    if not archive.startswith(AR_MAGIC):
        raise DataFormatError(f"{origin}: not a Debian package (no ar archive header)")
    members: dict[str, bytes] = {}
    offset = len(AR_MAGIC)
    while offset < len(archive):
        header = archive[offset : offset + _HEADER]
        if len(header) < _HEADER or header[58:60] != b"`\n":
            raise DataFormatError(f"{origin}: truncated or corrupt ar member header at byte {offset}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DataFormatError(f"{origin}: ar member {name!r} has no valid size") from None
        start = offset + _HEADER
        if start + size > len(archive):
            raise DataFormatError(f"{origin}: ar member {name!r} is truncated")
        members[name] = archive[start : start + size]
        offset = start + size + (size % 2)
    return members


def open_tarball(name: str, payload: bytes, origin: str = "<deb>") -> tarfile.TarFile:
    """Open a ``*.tar[.gz|.xz|.bz2|.zst]`` member held in memory."""
    suffix = name[name.index(".tar") + 4 :] if ".tar" in name else None
    if suffix == ".zst":
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            raise DataFormatError(
                f"{origin}: {name} is zstd-compressed; install the zstandard package (pip install zstandard) to read it"
            ) from None
        payload = zstandard.ZstdDecompressor().decompressobj().decompress(payload)
        suffix = ""
    if suffix not in _TAR_MODES:
        raise DataFormatError(f"{origin}: member {name!r} is not a tar archive with a known compression")
    try:
        return tarfile.open(fileobj=io.BytesIO(payload), mode=_TAR_MODES[suffix])  # type: ignore[call-overload]  # mode is one of the read modes
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataFormatError(f"{origin}: {name} is not a readable tar archive ({error})") from None


def _member(members: dict[str, bytes], stem: str, origin: str) -> tuple[str, bytes]:
    found = [name for name in members if name == stem or name.startswith(stem + ".")]
    if not found:
        raise DataFormatError(f"{origin}: no {stem}.* member (members: {', '.join(members)})")
    return found[0], members[found[0]]


def normalise(path: str) -> str:
    """An archive path without ``./`` or a leading ``/``."""
    normalised = posixpath.normpath(path.lstrip("/"))
    return "" if normalised == "." else normalised


def read_deb_tree(deb: Path, under: str = "") -> dict[str, DebEntry]:
    """Regular files and links of ``deb``'s data archive whose normalised path is inside folder ``under``."""
    origin = str(deb)
    try:
        archive = Path(deb).read_bytes()
    except OSError as error:
        raise DataFormatError(f"{origin}: cannot read ({error.strerror})") from None
    name, payload = _member(ar_members(archive, origin), "data.tar", origin)
    prefix = normalise(under)
    tree: dict[str, DebEntry] = {}
    try:
        with open_tarball(name, payload, origin) as tar:
            for member in tar:
                path = normalise(member.name)
                if prefix and not (path == prefix or path.startswith(prefix + "/")):
                    continue
                if member.isfile():
                    handle = tar.extractfile(member)
                    tree[path] = DebEntry("file", data=handle.read() if handle is not None else b"")
                elif member.issym():
                    base = "" if member.linkname.startswith("/") else posixpath.dirname(path)
                    tree[path] = DebEntry("symlink", target=normalise(posixpath.join(base, member.linkname)))
                elif member.islnk():
                    tree[path] = DebEntry("hardlink", target=normalise(member.linkname))
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DataFormatError(f"{origin}: {name} is not a readable tar archive ({error})") from None
    return tree


def resolve_link(tree: dict[str, DebEntry], path: str) -> str | None:
    """The path of the regular file ``path`` leads to through links; None if it dangles, loops or leaves the tree."""
    for _ in range(_MAX_LINK_DEPTH):
        entry = tree.get(path)
        if entry is None:
            return None
        if entry.kind == "file":
            return path
        path = entry.target
    return None
