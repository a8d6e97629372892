"""Reading and writing PEFT adapter folders without loading a base model.

A folder holds ``adapter_config.json`` and ``adapter_model.safetensors`` (``adapter_model.bin`` is read too).
Writing goes through :func:`adamergex.files.atomic_directory`, so an output folder is either whole or absent.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from adamergex.adapters.config import parse_adapter_config
from adamergex.adapters.types import (
    Adapter,
    IA3Adapter,
    IA3Module,
    LoraAdapter,
    LoraModule,
    lora_scale,
    resolve_rank_alpha,
)
from adamergex.errors import AdapterFormatError, NumericalError, StorageError
from adamergex.files import atomic_directory, sha256_file
from adamergex.provenance import write_provenance
from adamergex.tensors import all_finite

CONFIG_FILE = "adapter_config.json"
SAFETENSORS_FILE = "adapter_model.safetensors"
BIN_FILE = "adapter_model.bin"
KEY_PREFIX = "base_model.model."
_LORA_SUFFIXES = {
    ".lora_A.weight": ("A", False),
    ".lora_B.weight": ("B", False),
    ".lora_embedding_A": ("A", True),
    ".lora_embedding_B": ("B", True),
}
_IA3_SUFFIX = ".ia3_l"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise AdapterFormatError(f"{folder}: no {CONFIG_FILE} (expected a PEFT adapter folder)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise AdapterFormatError(f"{path}: not valid JSON ({_first_line(error)})") from error
    except OSError as error:
        raise AdapterFormatError(f"{path}: cannot read ({error.strerror or type(error).__name__})") from None
    return parse_adapter_config(config, path)


def _read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    safetensors_path = folder / SAFETENSORS_FILE
    bin_path = folder / BIN_FILE
    if safetensors_path.is_file():
        try:
            with safe_open(str(safetensors_path), framework="pt", device="cpu") as handle:
                return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except Exception as error:  # safetensors raises several types for truncated or garbled files
            raise AdapterFormatError(
                f"{safetensors_path}: cannot read safetensors file ({_first_line(error)})"
            ) from error
    if bin_path.is_file():
        try:
            state = torch.load(bin_path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise AdapterFormatError(f"{bin_path}: cannot read PyTorch weights ({_first_line(error)})") from error
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise AdapterFormatError(f"{bin_path}: expected a dict of tensors")
        return state
    raise AdapterFormatError(f"{folder}: no {SAFETENSORS_FILE} or {BIN_FILE} (expected the adapter weights)")


def _strip_prefix(folder: Path, key: str) -> str:
    if not key.startswith(KEY_PREFIX):
        raise AdapterFormatError(f"{folder}: tensor key {key!r} does not start with {KEY_PREFIX!r}")
    return key[len(KEY_PREFIX) :]


def _check_tensor(folder: Path, name: str, tensor: torch.Tensor) -> None:
    if not tensor.is_floating_point():
        dtype = str(tensor.dtype).removeprefix("torch.")
        raise AdapterFormatError(f"{folder}: module {name} is stored as {dtype}; expected a floating-point dtype")
    if not all_finite(tensor):
        bad = int((~torch.isfinite(tensor)).sum())
        raise NumericalError(f"{folder}: module {name} holds {bad} non-finite value(s) (NaN or inf)")


def _is_module_in(name: str, module_names: list[str] | str | None) -> bool:
    if not module_names:
        return False
    names = [module_names] if isinstance(module_names, str) else list(module_names)
    return any(name == m or name.endswith("." + m) for m in names)


def _read_lora(folder: Path, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> LoraAdapter:
    if config.get("use_dora"):
        raise AdapterFormatError(
            f"{folder}: DoRA adapters (use_dora=true) are not additive in ΔW and cannot be merged; "
            "expected a plain LoRA adapter"
        )
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        raise AdapterFormatError(
            f"{folder}: LoRA with trained biases (bias={config.get('bias')!r}, lora_bias="
            f"{config.get('lora_bias')!r}) is not supported; expected bias='none'"
        )
    if config.get("target_parameters"):
        raise AdapterFormatError(f"{folder}: LoRA on parameters (target_parameters) is not supported")
    factors: dict[str, dict[str, torch.Tensor]] = {}
    embedding: dict[str, bool] = {}
    extra: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        for suffix, (which, is_embedding) in _LORA_SUFFIXES.items():
            if key.endswith(suffix):
                name = _strip_prefix(folder, key[: -len(suffix)])
                factors.setdefault(name, {})[which] = tensor
                embedding[name] = is_embedding
                break
        else:
            extra[key] = tensor
    if not factors:
        raise AdapterFormatError(f"{folder}: no LoRA tensors (lora_A / lora_B) in the adapter weights")
    use_rslora = bool(config.get("use_rslora", False))
    modules: dict[str, LoraModule] = {}
    for name, pair in factors.items():
        if set(pair) != {"A", "B"}:
            missing = "lora_B" if "A" in pair else "lora_A"
            raise AdapterFormatError(f"{folder}: module {name} has no {missing} tensor")
        lora_A, lora_B = pair["A"], pair["B"]
        if lora_A.ndim != 2 or lora_B.ndim != 2 or lora_A.shape[0] != lora_B.shape[1]:
            raise AdapterFormatError(
                f"{folder}: module {name} has lora_A {tuple(lora_A.shape)} and lora_B {tuple(lora_B.shape)}; "
                "expected (r, in) and (out, r)"
            )
        rank, alpha = resolve_rank_alpha(config, name)
        if rank != lora_A.shape[0]:
            raise AdapterFormatError(
                f"{folder}: module {name} has rank {lora_A.shape[0]} in the weights but {rank} in the config"
            )
        _check_tensor(folder, name, lora_A)
        _check_tensor(folder, name, lora_B)
        modules[name] = LoraModule(lora_A, lora_B, lora_scale(rank, alpha, use_rslora), embedding[name])
    return LoraAdapter(config=config, modules=dict(sorted(modules.items())), extra_tensors=extra, path=folder)


def _read_ia3(folder: Path, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> IA3Adapter:
    modules: dict[str, IA3Module] = {}
    extra: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        if not key.endswith(_IA3_SUFFIX):
            extra[key] = tensor
            continue
        name = _strip_prefix(folder, key[: -len(_IA3_SUFFIX)])
        feedforward = _is_module_in(name, config.get("feedforward_modules"))
        expected_ok = tensor.ndim == 2 and (tensor.shape[0] == 1 if feedforward else tensor.shape[1] == 1)
        if not expected_ok:
            expected = "(1, in_features)" if feedforward else "(out_features, 1)"
            raise AdapterFormatError(
                f"{folder}: module {name} has an (IA)³ vector of shape {tuple(tensor.shape)}; expected {expected}"
            )
        _check_tensor(folder, name, tensor)
        modules[name] = IA3Module(tensor, feedforward)
    if not modules:
        raise AdapterFormatError(f"{folder}: no (IA)³ tensors (ia3_l) in the adapter weights")
    return IA3Adapter(config=config, modules=dict(sorted(modules.items())), extra_tensors=extra, path=folder)


def read_adapter(path: str | Path) -> Adapter:
    """Read a PEFT LoRA or (IA)³ adapter folder into memory (CPU tensors, stored dtype)."""
    folder = Path(path)
    if not folder.is_dir():
        raise AdapterFormatError(f"adapter folder not found: {folder} (expected a PEFT adapter folder)")
    config = _read_config(folder)
    tensors = _read_tensors(folder)
    if str(config["peft_type"]).upper() == "LORA":
        return _read_lora(folder, config, tensors)
    return _read_ia3(folder, config, tensors)


def adapter_fingerprint(folder: str | Path) -> str:
    """A sha256 over an adapter folder's config and weight files (name and content of each, in order).

    The provenance sidecar is excluded, so the fingerprint names the adapter, not the run that wrote it.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, SAFETENSORS_FILE, BIN_FILE):
        path = folder / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


def adapter_state_dict(adapter: Adapter, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The tensors as PEFT saves them (keys prefixed ``base_model.model.``), optionally cast to ``dtype``."""

    def cast(tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
        return tensor.contiguous()

    state: dict[str, torch.Tensor] = {}
    if isinstance(adapter, LoraAdapter):
        for name, module in adapter.modules.items():
            a_key, b_key = (
                ("lora_embedding_A", "lora_embedding_B") if module.embedding else ("lora_A.weight", "lora_B.weight")
            )
            state[f"{KEY_PREFIX}{name}.{a_key}"] = cast(module.lora_A)
            state[f"{KEY_PREFIX}{name}.{b_key}"] = cast(module.lora_B)
    else:
        for name, vector_module in adapter.modules.items():
            state[f"{KEY_PREFIX}{name}{_IA3_SUFFIX}"] = cast(vector_module.vector)
    for key, tensor in adapter.extra_tensors.items():
        state[key] = cast(tensor)
    return state


def write_adapter(
    adapter: Adapter,
    out: str | Path,
    *,
    force: bool = False,
    dtype: torch.dtype | None = None,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Write ``adapter`` as a PEFT folder at ``out``, atomically, with an optional provenance sidecar.

    Refuses non-finite values (nothing is written) and an existing ``out`` unless ``force``.
    """
    out = Path(out)
    state = adapter_state_dict(adapter, dtype)
    for key, tensor in state.items():
        if not all_finite(tensor):
            raise NumericalError(f"refusing to write {out}: tensor {key} holds non-finite values")
    with atomic_directory(out, force=force) as tmp:
        try:
            save_file(state, str(tmp / SAFETENSORS_FILE), metadata={"format": "pt"})
        except SafetensorError as error:  # a full disk surfaces here, not as an OSError
            if "I/O error" not in str(error):
                raise
            raise StorageError(f"cannot write {out}: {str(error).split('I/O error: ')[-1]}") from None
        (tmp / CONFIG_FILE).write_text(json.dumps(adapter.config, indent=2, sort_keys=True) + "\n")
        if provenance is not None:
            write_provenance(tmp, provenance)
    return out
