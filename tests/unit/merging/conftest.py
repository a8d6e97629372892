"""Real PEFT adapter folders on a tiny random Llama, written by PEFT itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import IA3Config, LoraConfig, get_peft_model

from tiny_models import tiny_llama

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
BASE_NAME = "tiny-random-llama"


def _save(peft_model: Any, path: Path, base_name: str | None) -> Path:
    peft_model.save_pretrained(path)
    config_path = path / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base_name
    config_path.write_text(json.dumps(config))
    return path


@pytest.fixture
def make_lora(tmp_path: Path) -> Callable[..., Path]:
    """Write a LoRA adapter folder with random (non-zero) A and B factors."""

    def factory(
        name: str,
        *,
        seed: int,
        r: int = 8,
        alpha: float = 16,
        target_modules: list[str] | None = None,
        base_name: str | None = BASE_NAME,
        **config: Any,
    ) -> Path:
        base = tiny_llama()
        torch.manual_seed(1000 + seed)  # after building the base model, which reseeds
        lora_config = LoraConfig(
            r=r,
            lora_alpha=alpha,
            target_modules=target_modules or ALL_LINEAR,
            init_lora_weights=False,
            **config,
        )
        peft_model = get_peft_model(base, lora_config)
        with torch.no_grad():  # init_lora_weights=False is random but small; widen it so ΔW is far from zero
            for parameter_name, parameter in peft_model.named_parameters():
                if "lora_" in parameter_name:
                    parameter.normal_(0.0, 0.3)
        return _save(peft_model, tmp_path / name, base_name)

    return factory


@pytest.fixture
def make_ia3(tmp_path: Path) -> Callable[..., Path]:
    """Write an (IA)³ adapter folder with vectors drawn around 1."""

    def factory(
        name: str,
        *,
        seed: int,
        target_modules: list[str] | None = None,
        feedforward_modules: list[str] | None = None,
        base_name: str | None = BASE_NAME,
        low: float = 0.5,
        high: float = 1.5,
    ) -> Path:
        base = tiny_llama()
        torch.manual_seed(2000 + seed)
        config = IA3Config(
            target_modules=target_modules or ["k_proj", "v_proj", "down_proj"],
            feedforward_modules=feedforward_modules if feedforward_modules is not None else ["down_proj"],
        )
        peft_model = get_peft_model(base, config)
        with torch.no_grad():
            for parameter_name, parameter in peft_model.named_parameters():
                if "ia3_l" in parameter_name:
                    parameter.uniform_(low, high)
        return _save(peft_model, tmp_path / name, base_name)

    return factory
