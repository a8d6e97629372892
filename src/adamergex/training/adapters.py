"""PEFT configurations for LoRA and (IA)³, with target modules resolved for the model's architecture.

LoRA targets the paper's seven projections — query, key, value, output of attention and gate, up, down of
the MLP — under whatever names the architecture uses (``q_proj`` in Llama/Gemma/Qwen, ``query`` in BERT-like
models, ``c_attn``/``c_proj``/``c_fc`` in GPT-2, ``q``/``k``/``v``/``o``/``wi``/``wo`` in T5). Roles an
architecture lacks (GPT-2 has no gate) are skipped. (IA)³ uses PEFT's per-architecture defaults (keys,
values and the MLP's down projection, scaled on its input).
"""

from __future__ import annotations

import torch
from peft import IA3Config, LoraConfig, PeftConfig, PeftModel, TaskType, get_peft_model
from peft.utils.constants import (
    TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING,
    TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING,
)
from torch import nn

from adamergex.errors import AdamergexError
from adamergex.training.config import TrainingConfig

#: The paper's LoRA targets by role, with the names each role has in common architectures (first found wins).
LORA_ROLES: dict[str, tuple[str, ...]] = {
    "q": ("q_proj", "query", "q", "c_attn", "Wqkv", "qkv_proj", "query_key_value"),
    "k": ("k_proj", "key", "k"),
    "v": ("v_proj", "value", "v"),
    "o": ("o_proj", "out_proj", "dense", "o", "c_proj"),
    "gate": ("gate_proj", "w1", "gate_up_proj"),
    "up": ("up_proj", "w3", "fc1", "c_fc", "wi", "dense_h_to_4h"),
    "down": ("down_proj", "w2", "fc2", "wo", "dense_4h_to_h"),
}


class TargetModuleError(AdamergexError):
    """A requested target module does not exist in the model, or none can be found by default."""


def linear_module_names(model: nn.Module) -> list[str]:
    """Sorted distinct last name components of the model's linear layers (``q_proj``, ``down_proj``, ...).

    GPT-2's ``Conv1D`` counts as linear (PEFT adapts it like one); the output head is left out.
    """
    names: set[str] = set()
    for full_name, module in model.named_modules():
        if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D":
            leaf = full_name.rsplit(".", 1)[-1]
            if leaf not in ("lm_head", "embed_out", "output"):
                names.add(leaf)
    return sorted(names)


def default_lora_targets(model: nn.Module) -> list[str]:
    """The q, k, v, o, gate, up, down projections under the model's own names (see :data:`LORA_ROLES`)."""
    available = set(linear_module_names(model))
    targets: list[str] = []
    for candidates in LORA_ROLES.values():
        found = next((name for name in candidates if name in available), None)
        if found is not None and found not in targets:
            targets.append(found)
    if not targets:
        raise TargetModuleError(
            "no attention/MLP projection found for LoRA; pass target_modules / --target-modules with some of the "
            f"model's linear modules: {', '.join(sorted(available))}"
        )
    return targets


def check_targets(model: nn.Module, targets: list[str]) -> None:
    """Every target must name a linear module (by last name component or dotted suffix)."""
    linear = linear_module_names(model)
    full_names = [name for name, module in model.named_modules() if name.rsplit(".", 1)[-1] in linear]
    for target in targets:
        if not any(name == target or name.endswith("." + target) for name in full_names):
            raise TargetModuleError(
                f"target module {target!r} is not a linear module of this model; "
                f"its linear modules are: {', '.join(linear)}"
            )


def _model_type(model: nn.Module) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", ""))


def build_peft_config(model: nn.Module, config: TrainingConfig) -> PeftConfig:
    """The LoRA or (IA)³ configuration for ``model`` from the training settings (targets checked)."""
    if config.adapter == "lora":
        targets = config.target_modules or default_lora_targets(model)
        check_targets(model, targets)
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,  # type: ignore[arg-type]  # PEFT annotates int, scales by any number
            lora_dropout=config.lora_dropout,
            use_rslora=config.use_rslora,
            bias="none",
            target_modules=targets,
        )
    model_type = _model_type(model)
    if config.target_modules is not None:
        targets = config.target_modules
        feedforward = config.feedforward_modules or []
    elif model_type in TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING:
        targets = list(TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING[model_type])
        feedforward = list(TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING[model_type])
    else:
        raise TargetModuleError(
            f"PEFT has no (IA)³ defaults for model type {model_type!r}; pass target_modules / --target-modules and "
            "feedforward_modules / --feedforward-modules from its linear modules: "
            f"{', '.join(linear_module_names(model))}"
        )
    check_targets(model, [t.rsplit(".", 1)[-1] for t in targets])
    return IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=targets, feedforward_modules=feedforward)


def initialise_adapter(model: nn.Module, config: TrainingConfig) -> PeftModel:
    """Wrap ``model`` with a fresh adapter whose initial weights come from ``config.adapter_init_seed`` alone.

    The init runs under a forked RNG, so the global generators (data order, dropout; seeded by ``config.seed``)
    are the same whatever the init seed, and two adapters that differ only in role or language differ at
    initialisation.
    """
    peft_config = build_peft_config(model, config)
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(config.adapter_init_seed)
        return get_peft_model(model, peft_config)
