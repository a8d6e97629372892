"""Small PEFT-format adapter folders written directly from tensors (no model): LoRA and (IA)³ on three modules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

PREFIX = "base_model.model.model.layers.0."
# module → (in_features, out_features)
SHAPES = {"self_attn.q_proj": (16, 16), "self_attn.v_proj": (16, 8), "mlp.down_proj": (24, 16)}


def lora_config(r: int = 4, alpha: float = 8) -> dict[str, Any]:
    return {
        "peft_type": "LORA",
        "r": r,
        "lora_alpha": alpha,
        "target_modules": ["q_proj", "v_proj", "down_proj"],
        "base_model_name_or_path": "tiny",
        "task_type": "CAUSAL_LM",
        "bias": "none",
        "use_rslora": False,
        "rank_pattern": {},
        "alpha_pattern": {},
        "modules_to_save": None,
    }


def ia3_config() -> dict[str, Any]:
    return {
        "peft_type": "IA3",
        "target_modules": ["q_proj", "v_proj", "down_proj"],
        "feedforward_modules": ["down_proj"],
        "base_model_name_or_path": "tiny",
        "task_type": "CAUSAL_LM",
        "modules_to_save": None,
    }


def lora_tensors(seed: int, r: int = 4, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, (fan_in, fan_out) in SHAPES.items():
        tensors[f"{PREFIX}{name}.lora_A.weight"] = torch.randn(r, fan_in, generator=generator).to(dtype)
        tensors[f"{PREFIX}{name}.lora_B.weight"] = torch.randn(fan_out, r, generator=generator).to(dtype)
    return tensors


def ia3_tensors(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, (fan_in, fan_out) in SHAPES.items():
        shape = (1, fan_in) if name.endswith("down_proj") else (fan_out, 1)
        tensors[f"{PREFIX}{name}.ia3_l"] = 0.5 + torch.rand(shape, generator=generator)
    return tensors


def write_adapter_folder(folder: Path, config: Any, tensors: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    return folder
