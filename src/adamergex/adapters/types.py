"""In-memory adapters: exactly what a PEFT adapter folder holds, keyed by the base model's module names.

Module names are those of ``base_model.named_modules()`` (for example ``model.layers.0.self_attn.q_proj``);
PEFT's saved keys prefix them with ``base_model.model.``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import torch

#: The adapter kinds adamergex reads, trains and merges.
AdapterKind = Literal["lora", "ia3"]
ADAPTER_KINDS: tuple[str, ...] = get_args(AdapterKind)
#: How messages and reports spell each kind.
KIND_NAMES: dict[str, str] = {"lora": "LoRA", "ia3": "(IA)³"}


def lora_scale(rank: int, alpha: float, use_rslora: bool) -> float:
    """PEFT's LoRA output scale: ``alpha / r``, or ``alpha / sqrt(r)`` with rank-stabilised LoRA."""
    return alpha / (rank**0.5) if use_rslora else alpha / rank


def match_pattern(patterns: Mapping[str, Any], module_name: str) -> str | None:
    """The first key of a PEFT ``rank_pattern`` / ``alpha_pattern`` that selects ``module_name``.

    PEFT treats each key as a regular expression that must match a dotted suffix of the module name:
    ``re.match(rf"(.*\\.)?({key})$", name)``; the first matching key in insertion order wins.
    """
    for key in patterns:
        if re.match(rf"(.*\.)?({key})$", module_name):
            return key
    return None


def resolve_rank_alpha(config: Mapping[str, Any], module_name: str) -> tuple[int, float]:
    """The (r, lora_alpha) that PEFT uses for ``module_name`` given an adapter config."""
    rank_pattern = config.get("rank_pattern") or {}
    alpha_pattern = config.get("alpha_pattern") or {}
    rank_key = match_pattern(rank_pattern, module_name)
    alpha_key = match_pattern(alpha_pattern, module_name)
    rank = int(rank_pattern[rank_key]) if rank_key is not None else int(config["r"])
    alpha = float(alpha_pattern[alpha_key]) if alpha_key is not None else float(config["lora_alpha"])
    return rank, alpha


def _cast_all(tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}


@dataclass(frozen=True)
class LoraModule:
    """One LoRA-adapted module; its weight update is ``ΔW = scale · B · A``.

    ``lora_A`` has shape (r, in_features) and ``lora_B`` (out_features, r). For embeddings PEFT stores
    ``lora_embedding_A`` (r, num_embeddings) and ``lora_embedding_B`` (dim, r) and applies ``(B A)ᵀ``; the
    algebra on ``B A`` is the same, so only the key names differ (``embedding=True``).
    """

    lora_A: torch.Tensor
    lora_B: torch.Tensor
    scale: float
    embedding: bool = False

    @property
    def rank(self) -> int:
        return int(self.lora_A.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """The shape of ``B · A`` (out_features, in_features)."""
        return int(self.lora_B.shape[0]), int(self.lora_A.shape[1])

    def delta_weight(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Dense ``scale · B · A``. For tests and diagnostics; merging never forms it."""
        return self.scale * (self.lora_B.to(dtype) @ self.lora_A.to(dtype))


@dataclass(frozen=True)
class IA3Module:
    """One (IA)³-adapted module: its activations are scaled element-wise by ``vector``.

    PEFT stores shape (out_features, 1) for attention-type modules (the output is scaled) and
    (1, in_features) for feed-forward modules (the input is scaled).
    """

    vector: torch.Tensor
    feedforward: bool


@dataclass
class LoraAdapter:
    """A LoRA adapter folder in memory."""

    config: dict[str, Any]
    modules: dict[str, LoraModule]
    extra_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    path: Path | None = None
    kind: ClassVar[str] = "lora"

    @property
    def base_model(self) -> str | None:
        return self.config.get("base_model_name_or_path") or None

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.modules.values())).lora_A.dtype

    def num_parameters(self) -> int:
        return sum(m.lora_A.numel() + m.lora_B.numel() for m in self.modules.values())

    def to(self, dtype: torch.dtype) -> LoraAdapter:
        """A copy whose factors (and floating extra tensors) are cast to ``dtype``."""
        modules = {n: replace(m, lora_A=m.lora_A.to(dtype), lora_B=m.lora_B.to(dtype)) for n, m in self.modules.items()}
        return replace(self, modules=modules, extra_tensors=_cast_all(self.extra_tensors, dtype))


@dataclass
class IA3Adapter:
    """An (IA)³ adapter folder in memory."""

    config: dict[str, Any]
    modules: dict[str, IA3Module]
    extra_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    path: Path | None = None
    kind: ClassVar[str] = "ia3"

    @property
    def base_model(self) -> str | None:
        return self.config.get("base_model_name_or_path") or None

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.modules.values())).vector.dtype

    def num_parameters(self) -> int:
        return sum(m.vector.numel() for m in self.modules.values())

    def to(self, dtype: torch.dtype) -> IA3Adapter:
        """A copy whose vectors (and floating extra tensors) are cast to ``dtype``."""
        modules = {n: replace(m, vector=m.vector.to(dtype)) for n, m in self.modules.items()}
        return replace(self, modules=modules, extra_tensors=_cast_all(self.extra_tensors, dtype))


Adapter = LoraAdapter | IA3Adapter
