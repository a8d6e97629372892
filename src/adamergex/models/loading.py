"""Load a base causal LM and its tokenizer from a short name, a local folder, a GGUF file or a hub id.

Resolution order for ``name_or_path``:

1. a packaged short name (``gemma-3-270m``, ``smollm2-135m``; see :mod:`adamergex.models.packaged`);
2. an existing ``.gguf`` file;
3. an existing folder with ``config.json`` (a ``save_pretrained`` folder);
4. anything shaped like a hub id (``org/name``), downloaded through ``huggingface_hub``.

A GGUF model is dequantised once (transformers' ``gguf_file=`` loader) and cached as a safetensors folder
under ``<cache>/models/<sha256 of the GGUF>``, so later loads take seconds instead of a minute. Every loaded
model carries a ``fingerprint``: the GGUF's sha256, or a sha256 over the folder's config, weight and
tokenizer files, so an adapter's sidecar can name exactly which weights it was trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from adamergex.errors import AdamergexError, OutputExistsError
from adamergex.files import atomic_directory, cache_root
from adamergex.models.cache import file_sha256, files_fingerprint
from adamergex.models.packaged import PACKAGED_MODELS, packaged_gguf
from adamergex.provenance import PROVENANCE_FILE, write_provenance
from adamergex.tensors import dtype_by_name


class UnknownModelError(AdamergexError):
    """The model name is neither a packaged short name, an existing file/folder, nor a hub id."""


class ModelUnavailableError(AdamergexError):
    """A hub model could not be downloaded (offline or missing) and no local copy exists."""


#: Weight dtypes a model may be loaded in (float64 weights would only waste memory and time).
WEIGHT_DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FINGERPRINT_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".tiktoken")


@dataclass
class LoadedModel:
    """A base model ready for adapters.

    Attributes:
        model: the transformers causal LM, in eval mode, on ``device`` with weights in ``dtype``.
        tokenizer: its tokenizer; ``pad_token`` is set (to EOS when the model has none) so batches can pad.
        name: the name or path as given by the user.
        fingerprint: sha256 identifying the weights/config/tokenizer used (see module docstring).
        device: the device the model is on (``"cpu"``, ``"cuda:0"``, ...).
        dtype: the weights' dtype.
        source: how it was found: ``"packaged"``, ``"gguf"``, ``"folder"`` or ``"hub"``.
        path: the local folder the weights were read from (the safetensors cache for GGUF models).
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    fingerprint: str
    device: str
    dtype: torch.dtype
    source: str
    path: Path


def default_device() -> str:
    """``"cuda"`` when a CUDA device is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | torch.dtype | None, device: str) -> torch.dtype:
    """The weights' dtype: as asked, else bf16 on a CUDA device that supports it, else fp32.

    fp32 is the CPU default because CPU bf16 matmuls are slow on most machines and fp16 training needs a
    loss scaler; on CUDA, bf16 halves memory and keeps fp32's exponent range.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is None or dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return dtype_by_name(dtype, WEIGHT_DTYPES, aliases=True, handled=("auto",))


def _fingerprint_folder(folder: Path) -> str:
    files = [
        p for p in folder.iterdir() if p.is_file() and p.suffix in _FINGERPRINT_SUFFIXES and p.name != PROVENANCE_FILE
    ]
    return files_fingerprint(files, folder)


def _dequantised_folder(gguf: Path, digest: str) -> Path:
    """The safetensors folder of a GGUF model, converting it on first use (about a minute for 270 M)."""
    folder = cache_root() / "models" / digest
    if (folder / "config.json").is_file():
        return folder
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The model was dequantised on load; without this it would be saved with its GGUF quantisation config
    # and reloading the safetensors would try to quantise again.
    model.hf_quantizer = None  # type: ignore[assignment]  # transformers types the attribute without None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        with atomic_directory(folder) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_provenance(tmp, {"kind": "dequantised_gguf", "gguf": {"path": str(gguf), "sha256": digest}})
    except OutputExistsError:
        # Another process (e.g. a second DDP rank) finished the same conversion first; its folder is equal.
        pass
    return folder


def _hub_folder(name: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]
    try:
        return Path(snapshot_download(name, allow_patterns=patterns))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelUnavailableError(
            f"could not download model {name!r} from the Hugging Face hub ({reason}); download it where the hub is "
            f"reachable and pass the local folder, a .gguf file, or one of: {', '.join(PACKAGED_MODELS)}"
        ) from error


def _resolve(name_or_path: str) -> tuple[Path, str, str]:
    """(local folder with config.json, fingerprint, source kind) for a model name or path."""
    if name_or_path in PACKAGED_MODELS:
        _, gguf = packaged_gguf(name_or_path)
        digest = PACKAGED_MODELS[name_or_path].sha256
        return _dequantised_folder(gguf, digest), digest, "packaged"
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        digest = file_sha256(path)
        return _dequantised_folder(path, digest), digest, "gguf"
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UnknownModelError(f"model folder {path} has no config.json; expected a save_pretrained folder")
        return path, _fingerprint_folder(path), "folder"
    if path.exists():
        raise UnknownModelError(f"model file {path} is not a .gguf file; expected a GGUF file or a model folder")
    if _HUB_ID.match(name_or_path):
        folder = _hub_folder(name_or_path)
        return folder, _fingerprint_folder(folder), "hub"
    raise UnknownModelError(
        f"unknown model {name_or_path!r}; expected one of {', '.join(PACKAGED_MODELS)}, a model folder, "
        "a .gguf file, or a hub id like org/name"
    )


def load_base_model(
    name_or_path: str, *, dtype: str | torch.dtype | None = None, device: str | None = None
) -> LoadedModel:
    """Load a causal LM and its tokenizer; see the module docstring for what ``name_or_path`` may be.

    Args:
        name_or_path: packaged short name, ``.gguf`` file, local folder or hub id.
        dtype: ``"auto"``/None (fp32 on CPU, bf16 on CUDA with bf16 support), or a name/torch dtype.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; None picks CUDA when available.

    Raises:
        UnknownModelError, ModelUnavailableError, ChecksumMismatchError, MissingModelPackageError.
    """
    device = device or default_device()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AdamergexError(f"device {device!r} was asked for but no CUDA device is available; use cpu")
    torch_dtype = resolve_dtype(dtype, device)
    folder, fingerprint, source = _resolve(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch_dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)  # type: ignore[arg-type]  # transformers' wrapper type hides Module.to(device)
    model.eval()
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=name_or_path,
        fingerprint=fingerprint,
        device=str(next(model.parameters()).device),
        dtype=torch_dtype,
        source=source,
        path=folder,
    )
