"""The source archive of ``bigbench==1.0.0``: obtained, verified and kept in the cache; members extracted on
demand.

The archive is obtained with ``pip download --no-deps bigbench==1.0.0`` (it is published only as a source
archive; never install it: its requirements pull tensorflow) or given by the user, and checked against its
pinned sha256 (RESOURCES.md). Members are extracted in one pass over the archive (seconds) into
``<cache>/data/bigbench-1.0.0/...``; later loads read the small extracted files and never open the archive.

pip from 26.0 on refuses to download a PyPI source archive that declares a direct-URL dependency (bigbench
declares ``bleurt @ file://...``) even with ``--no-deps``; when that happens the download is retried with pip
25.3 run from its own wheel (pip's documented way to run a given pip version), fetched with the same pip.
"""

from __future__ import annotations

import sys
import tarfile
import tempfile
from pathlib import Path

from adamergex.data.cache import (
    DataFormatError,
    SourceUnavailableError,
    ToolFailedError,
    data_cache_dir,
    run_tool,
    verify_sha256,
)
from adamergex.files import atomic_write_bytes

BIGBENCH_VERSION = "1.0.0"
BIGBENCH_ARCHIVE = f"bigbench-{BIGBENCH_VERSION}.tar.gz"
BIGBENCH_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
BIGBENCH_SIZE = 358_249_635
BIGBENCH_TASKS = f"bigbench-{BIGBENCH_VERSION}/bigbench/benchmark_tasks"
_PIP_FALLBACK = "pip==25.3"
HOW_TO_SUPPLY = (
    f"run `pip download --no-deps bigbench=={BIGBENCH_VERSION} -d DIR` where the package index is reachable "
    f"and pass DIR/{BIGBENCH_ARCHIVE} as archive=... / --archive"
)


def bigbench_cache_dir() -> Path:
    """``<cache>/data/bigbench-1.0.0``."""
    return data_cache_dir(f"bigbench-{BIGBENCH_VERSION}")


def cached_archive_path() -> Path:
    """Where a downloaded bigbench archive is kept."""
    return data_cache_dir("downloads", BIGBENCH_ARCHIVE)


def _pip_download(requirement: str, destination: Path, pip: list[str]) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    run_tool(
        [*pip, "download", "--no-deps", "--disable-pip-version-check", requirement, "-d", str(destination)],
        cwd=destination,
        what=requirement,
        how_to_supply=HOW_TO_SUPPLY,
    )


def download_bigbench_archive(destination: Path) -> Path:
    """``pip download`` the bigbench source archive into ``destination``; return the archive's path."""
    destination.mkdir(parents=True, exist_ok=True)
    requirement = f"bigbench=={BIGBENCH_VERSION}"
    try:
        _pip_download(requirement, destination, [sys.executable, "-m", "pip"])
    except ToolFailedError as error:
        if "direct URL" not in error.output:
            raise
        wheel_dir = destination / "pip-fallback"
        _pip_download(_PIP_FALLBACK, wheel_dir, [sys.executable, "-m", "pip"])
        wheels = sorted(wheel_dir.glob("pip-*.whl"))
        if not wheels:
            raise SourceUnavailableError(f"pip download {_PIP_FALLBACK} gave no wheel; {HOW_TO_SUPPLY}") from None
        _pip_download(requirement, destination, [sys.executable, str(wheels[0] / "pip")])
    archive = destination / BIGBENCH_ARCHIVE
    if not archive.is_file():
        raise SourceUnavailableError(f"pip download did not produce {BIGBENCH_ARCHIVE}; {HOW_TO_SUPPLY}")
    return archive


def obtain_bigbench_archive(archive: str | Path | None = None, *, offline: bool = False) -> Path:
    """A verified bigbench source archive: the user's, the cached one, or a fresh ``pip download``.

    A user's archive with the wrong sha256 is an error and is left alone; a downloaded one is deleted.
    """
    if archive is not None:
        path = Path(archive).expanduser()
        if not path.is_file():
            raise SourceUnavailableError(f"{path} does not exist; {HOW_TO_SUPPLY}")
        verify_sha256(path, BIGBENCH_SHA256, f"bigbench {BIGBENCH_VERSION} source archive")
        return path
    cached = cached_archive_path()
    if cached.is_file():
        return cached
    if offline:
        raise SourceUnavailableError(
            f"MultiEmo is not cached under {bigbench_cache_dir()} and offline is set; {HOW_TO_SUPPLY}"
        )
    cached.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".bigbench-", dir=cached.parent) as scratch:
        downloaded = download_bigbench_archive(Path(scratch))
        verify_sha256(downloaded, BIGBENCH_SHA256, f"bigbench {BIGBENCH_VERSION} source archive")
        downloaded.replace(cached)
    return cached


def extract_members(archive: Path, members: dict[str, Path], *, force: bool = False) -> None:
    """One pass over ``archive`` writing each wanted member (name -> destination), atomically.

    Raises :class:`DataFormatError` when the archive is unreadable or lacks a member.
    """
    remaining = dict(members)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                destination = remaining.get(member.name)
                if destination is None or not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                atomic_write_bytes(destination, handle.read(), force=force)
                del remaining[member.name]
                if not remaining:
                    break
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        raise DataFormatError(f"{archive}: cannot read the archive ({error})") from None
    if remaining:
        raise DataFormatError(f"{archive}: missing members {', '.join(sorted(remaining))}")


def obtain_members(members: dict[str, Path], *, archive: str | Path | None = None, offline: bool = False) -> None:
    """Make sure every ``member -> cache path`` is extracted, opening the archive only if one is missing."""
    wanted = {name: path for name, path in members.items() if not path.is_file()}
    if wanted:
        extract_members(obtain_bigbench_archive(archive, offline=offline), wanted)


def clear_downloaded_archive() -> bool:
    """Delete the cached 358 MB archive (extracted files stay); return whether there was one."""
    cached = cached_archive_path()
    if cached.is_file():
        cached.unlink()
        return True
    return False
