"""Fold an adapter into a model's base weights, and restore them bit for bit afterwards.

MAD-X-style stacking trains a task adapter on top of a frozen reference adapter ``Rs``: the base model with Rs
applied is the model the task adapter learns on. Folding Rs into the base weights gives exactly that model with
no PEFT machinery in the way, so a task adapter can then be trained on it as on any base model. How each kind
acts on a layer ``y = W x + b`` (as PEFT's forward computes it) and what folding writes:

    LoRA, Linear:            y = W x + s·B A x          →  W ← W + s·B A
    LoRA, Embedding:         E[i] + s·(B A)ᵀ[i]         →  E ← E + s·(B A)ᵀ   (PEFT's lora_embedding_A is (r, vocab))
    (IA)³, Linear:           y = l ⊙ (W x + b)          →  W ← diag(l) W, b ← l ⊙ b   (rows; the output is scaled)
    (IA)³, feed-forward:     y = W (l ⊙ x) + b          →  W ← W diag(l)               (columns; the input is scaled)

Each folded weight is computed in float32 and rounded once to the weight's dtype. The original weights are
copied to the CPU before anything changes (host memory, not accelerator memory) and written back by
:meth:`Fold.restore`, which also works after the model was wrapped (``get_peft_model``), since it holds the
parameters themselves, not their names. Every module is checked before the first weight changes, so a refused
fold leaves the model untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch

from adamergex.adapters.io import read_adapter
from adamergex.adapters.types import Adapter, IA3Module, LoraModule
from adamergex.errors import IncompatibleAdaptersError


def folded_lora_weight(weight: torch.Tensor, module: LoraModule) -> torch.Tensor:
    """``W + s·B A`` (a Linear's (out, in) weight) or ``E + s·(B A)ᵀ`` (an Embedding's (vocab, dim) weight)."""
    delta = module.delta_weight(torch.float32).to(weight.device)
    return (weight.float() + (delta.T if module.embedding else delta)).to(weight.dtype)


def folded_ia3_weight(
    weight: torch.Tensor, bias: torch.Tensor | None, module: IA3Module
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(diag(l) W, l ⊙ b)`` for a module whose output (IA)³ scales, ``(W diag(l), b)`` for a feed-forward one."""
    vector = module.vector.float().to(weight.device)
    if module.feedforward:
        return (weight.float() * vector.reshape(1, -1)).to(weight.dtype), bias
    scaled_bias = None if bias is None else (bias.float() * vector.reshape(-1)).to(bias.dtype)
    return (weight.float() * vector.reshape(-1, 1)).to(weight.dtype), scaled_bias


@dataclass
class Fold:
    """An adapter folded into a model: the modules it changed and the original weights to restore."""

    modules: tuple[str, ...]
    originals: list[tuple[torch.Tensor, torch.Tensor]] = field(repr=False)
    restored: bool = False

    def restore(self) -> None:
        """Write the original weights back, bit for bit (once; later calls do nothing)."""
        if self.restored:
            return
        with torch.no_grad():
            for parameter, original in self.originals:
                parameter.copy_(original)
        self.restored = True


def _layer(root: torch.nn.Module, name: str) -> torch.nn.Module:
    try:
        layer = root.get_submodule(name)
    except AttributeError:
        raise IncompatibleAdaptersError(f"module {name} of the adapter is not in the model") from None
    # A layer PEFT already wrapped keeps the original as its base layer.
    base = getattr(layer, "get_base_layer", None)
    return base() if callable(base) else layer


def _parameters(
    name: str, layer: torch.nn.Module, module: LoraModule | IA3Module, tied: set[int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The weight and bias that folding ``module`` into ``layer`` changes, once the fit is checked."""
    kinds = (torch.nn.Linear, torch.nn.Embedding) if isinstance(module, LoraModule) else (torch.nn.Linear,)
    if not isinstance(layer, kinds):
        raise IncompatibleAdaptersError(f"module {name} is a {type(layer).__name__}; folding handles Linear/Embedding")
    weight = layer.weight
    if id(weight) in tied:
        raise IncompatibleAdaptersError(
            f"module {name} shares its weight with another module; folding would change both"
        )
    if isinstance(module, LoraModule):
        expected = module.shape[::-1] if module.embedding else module.shape
        if isinstance(layer, torch.nn.Embedding) != module.embedding:
            raise IncompatibleAdaptersError(f"module {name}: the adapter's embedding flag does not match the model")
    else:
        size = module.vector.numel()
        expected = (int(weight.shape[0]), size) if module.feedforward else (size, int(weight.shape[1]))
    if tuple(weight.shape) != tuple(expected):
        raise IncompatibleAdaptersError(
            f"module {name}: the model's weight is {tuple(weight.shape)}, the adapter expects {tuple(expected)}"
        )
    return weight, layer.bias if isinstance(layer, torch.nn.Linear) else None


def _tied_parameters(model: torch.nn.Module) -> set[int]:
    seen: dict[int, int] = {}
    for _, parameter in model.named_parameters(remove_duplicate=False):
        seen[id(parameter)] = seen.get(id(parameter), 0) + 1
    return {key for key, count in seen.items() if count > 1}


def fold_adapter(model: torch.nn.Module, adapter: Adapter | str | Path) -> Fold:
    """Fold ``adapter`` (a folder or an in-memory adapter) into ``model``'s base weights, in place.

    Args:
        model: a transformers model (``LoadedModel.model``); a ``PeftModel`` is unwrapped to its base model.
        adapter: the adapter whose effect becomes part of the base weights.

    Returns:
        A :class:`Fold`; ``restore()`` gives back the original weights exactly.
    """
    loaded = adapter if not isinstance(adapter, str | Path) else read_adapter(adapter)
    if loaded.config.get("fan_in_fan_out"):
        raise IncompatibleAdaptersError("adapters with fan_in_fan_out (Conv1D layers) cannot be folded")
    unwrap = getattr(model, "get_base_model", None)
    root = unwrap() if callable(unwrap) else model
    tied = _tied_parameters(root)
    targets = {name: _parameters(name, _layer(root, name), module, tied) for name, module in loaded.modules.items()}
    originals: list[tuple[torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        for name, (weight, bias) in targets.items():
            module = loaded.modules[name]
            originals.append((weight, weight.detach().to("cpu", copy=True)))
            if isinstance(module, LoraModule):
                weight.copy_(folded_lora_weight(weight, module))
                continue
            new_weight, new_bias = folded_ia3_weight(weight, bias, module)
            weight.copy_(new_weight)
            if bias is not None and new_bias is not None and new_bias is not bias:
                originals.append((bias, bias.detach().to("cpu", copy=True)))
                bias.copy_(new_bias)
    return Fold(tuple(targets), originals)


@contextmanager
def folded(model: torch.nn.Module, adapter: Adapter | str | Path) -> Iterator[Fold]:
    """``with folded(model, adapter):`` — the adapter folded in for the block, the weights restored after it
    (also when the block raises)."""
    fold = fold_adapter(model, adapter)
    try:
        yield fold
    finally:
        fold.restore()
