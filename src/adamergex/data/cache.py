"""The data cache: where downloaded and extracted sources live, and small helpers to fill it safely.

The cache root is :func:`adamergex.files.cache_root`. Everything is written through the atomic writers of
:mod:`adamergex.files`, so an interrupted download or extraction never leaves a half-written file that a later run would
trust.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from adamergex.errors import AdamergexError
from adamergex.files import cache_root, sha256_file


class SourceUnavailableError(AdamergexError):
    """A data source is not cached and cannot be obtained (offline, tool missing, hub unreachable)."""


class ToolFailedError(SourceUnavailableError):
    """A download tool ran and failed; ``output`` holds its full standard error."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class ChecksumError(AdamergexError):
    """A file does not have the pinned sha256 (corrupted or a different version)."""


class DataFormatError(AdamergexError):
    """A data file does not have the expected format."""


def data_cache_dir(*parts: str) -> Path:
    """``<cache root>/data/<parts...>`` (not created)."""
    return cache_root().joinpath("data", *parts)


def verify_sha256(path: Path, expected: str, what: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has sha256 ``expected``."""
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(
            f"{path}: sha256 {actual} does not match the pinned {expected} of {what} "
            "(corrupted or a different version; delete it and obtain it again)"
        )


def run_tool(command: Sequence[str], *, cwd: Path, what: str, how_to_supply: str) -> None:
    """Run a download tool (``npm``, ``pip``); failure becomes :class:`SourceUnavailableError`.

    The message names what could not be obtained and ``how_to_supply`` it by hand.
    """
    try:
        result = subprocess.run(list(command), cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SourceUnavailableError(
            f"cannot obtain {what}: {command[0]!r} is not installed; {how_to_supply}"
        ) from None
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ToolFailedError(
            f"cannot obtain {what}: `{' '.join(command)}` failed ({detail}); {how_to_supply}", result.stderr
        )
