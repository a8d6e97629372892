"""Provenance sidecars: what went into an artifact, so that it can be traced and reproduced.

Every folder adamergex writes (adapters, dequantised models, checkpoints) carries ``adamergex_provenance.json``
with the inputs (paths and sha256), the settings, the library versions and the UTC time. Every layer writes
them, so they live below all of them (next to :mod:`adamergex.files`).
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from adamergex.errors import AdapterFormatError

PROVENANCE_FILE = "adamergex_provenance.json"


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment_versions() -> dict[str, str | None]:
    """Versions of Python and of the libraries whose behaviour determines an artifact's content."""
    return {
        "python": platform.python_version(),
        "adamergex": _package_version("adamergex"),
        "torch": _package_version("torch"),
        "transformers": _package_version("transformers"),
        "peft": _package_version("peft"),
        "safetensors": _package_version("safetensors"),
    }


def write_provenance(folder: str | Path, record: dict[str, Any]) -> None:
    """Write ``record`` plus versions and the UTC time as the folder's provenance sidecar."""
    payload = dict(record)
    payload.setdefault("versions", environment_versions())
    payload.setdefault("created", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    Path(folder, PROVENANCE_FILE).write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def read_provenance(folder: str | Path) -> dict[str, Any] | None:
    """The folder's provenance record, or None when it has no sidecar.

    Raises :class:`AdapterFormatError` when the sidecar exists but is not a readable JSON object.
    """
    path = Path(folder, PROVENANCE_FILE)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error).splitlines()[0]
        raise AdapterFormatError(f"{path}: unreadable ({reason})") from None
    if not isinstance(record, dict):
        raise AdapterFormatError(f"{path}: unreadable (expected a JSON object)")
    return record
