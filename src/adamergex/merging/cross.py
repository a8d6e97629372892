"""The cross ablation for LoRA: the multiplicative (IA)³ operators applied to LoRA-adapted weights.

AdaMergeX (cross) swaps each adapter's operators for the other structure's to show that matching them matters
(§4 of the paper). For LoRA the adapted weight is ``W = W₀ + ΔW``; applying ⊕ = ⊙ and ⊖ = ⊘ to those weights
gives

    W_out = W_T ⊙ (t · (W_Rt ⊘ W_Rs − 1) + 1),      ΔW_out = W_out − W₀

which is dense (it needs the base weights W₀) and is written back as a LoRA by truncated SVD.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from adamergex.adapters.types import LoraAdapter, LoraModule
from adamergex.errors import IncompatibleAdaptersError
from adamergex.merging.combination import Combination, ModuleReport, lora_output_config
from adamergex.merging.ia3 import DEFAULT_MIN_ABS, guarded_ratio
from adamergex.merging.lora import Compressed


def dense_to_lora(delta: torch.Tensor, rank: int) -> Compressed:
    """The best rank-``rank`` LoRA (scale 1) for a dense ΔW, by truncated SVD (singular values split ½/½)."""
    u, sigma, vh = torch.linalg.svd(delta, full_matrices=False)
    k = min(rank, sigma.shape[0])
    root = sigma[:k].sqrt()
    return Compressed((vh[:k] * root[:, None]).contiguous(), (u[:, :k] * root).contiguous(), sigma)


def multiplicative_lora_cross(
    adapters: Sequence[LoraAdapter],
    base_weights: Mapping[str, torch.Tensor],
    t: float,
    *,
    rank: int | None = None,
    min_abs: float = DEFAULT_MIN_ABS,
) -> Combination:
    """``W_T ⊙ (t (W_Rt ⊘ W_Rs − 1) + 1) − W₀`` per module, as rank-``rank`` LoRA factors.

    ``adapters`` are (task, reference_target, reference_source); ``base_weights`` maps module names to W₀
    (out, in). Elements of W_Rs with ``|w| < min_abs`` are clamped to ``±min_abs`` and counted. The default
    rank is the sum of the input ranks of the module.
    """
    task, reference_target, reference_source = adapters
    names = sorted(set(task.modules) | set(reference_target.modules) | set(reference_source.modules))
    modules: dict[str, LoraModule] = {}
    reports: list[ModuleReport] = []
    for name in names:
        if name not in base_weights:
            raise IncompatibleAdaptersError(f"module {name} is not a weight of the base model")
        base = base_weights[name].double()
        weights = []
        for adapter in adapters:
            module = adapter.modules.get(name)
            if module is None:
                weights.append(base)
                continue
            if module.embedding or module.shape != tuple(base.shape):
                raise IncompatibleAdaptersError(f"module {name}: ΔW {module.shape} does not fit W₀ {tuple(base.shape)}")
            weights.append(base + module.delta_weight(torch.float64))
        ratio = guarded_ratio(weights[1], weights[2], min_abs=min_abs, clamp=True)
        delta = weights[0] * (t * (ratio.value - 1.0) + 1.0) - base
        input_ranks = tuple(a.modules[name].rank if name in a.modules else None for a in adapters)
        compressed = dense_to_lora(delta, rank or sum(r for r in input_ranks if r))
        modules[name] = LoraModule(
            compressed.lora_A.to(task.dtype), compressed.lora_B.to(task.dtype), 1.0, embedding=False
        )
        first = task.modules.get(name)
        first_delta = first.delta_weight(torch.float64) if first else torch.zeros_like(base)
        denominator = float(first_delta.norm())
        change = float((compressed.lora_B.double() @ compressed.lora_A.double() - first_delta).norm())
        reports.append(
            ModuleReport(
                name=name,
                input_ranks=input_ranks,
                output_rank=compressed.rank,
                kept_energy=compressed.kept_energy,
                relative_change=change / denominator if denominator else float("inf"),
                clamped=ratio.clamped,
            )
        )
    config = lora_output_config(
        task, {n: m.rank for n, m in modules.items()}, same_modules=list(modules) == list(task.modules), extra_keys=()
    )
    notes = []
    clamped = sum(r.clamped for r in reports)
    if clamped:
        notes.append(f"clamped {clamped} element(s) of W_Rs with |w| < {min_abs:g}")
    return Combination(LoraAdapter(config, modules, {}), reports, {}, notes)


def cross_vs_additive(
    adapters: Sequence[LoraAdapter],
    base_weights: Mapping[str, torch.Tensor],
    t: float,
    *,
    min_abs: float = DEFAULT_MIN_ABS,
) -> dict[str, float]:
    """Per module, how far the cross merge's ΔW lies from the additive rule's: ``‖ΔW_× − ΔW_+‖_F / ‖ΔW_+‖_F``.

    ``ΔW_× = W_T ⊙ (t (W_Rt ⊘ W_Rs − 1) + 1) − W₀`` (exact, before any truncation to a rank) and
    ``ΔW_+ = ΔW_T + t (ΔW_Rt − ΔW_Rs)``. Expanding the ratio for ΔW ≪ W₀ gives
    ``ΔW_× = ΔW_+ + t · ΔW_T ⊙ (ΔW_Rt − ΔW_Rs) ⊘ W₀ + O((ΔW/W₀)²)``: the two agree to first order, and what
    separates them comes from elements where W₀ is small (clamped at ``min_abs`` as in the merge).
    """
    task, reference_target, reference_source = adapters
    names = sorted(set(task.modules) | set(reference_target.modules) | set(reference_source.modules))
    out: dict[str, float] = {}
    for name in names:
        if name not in base_weights:
            raise IncompatibleAdaptersError(f"module {name} is not a weight of the base model")
        base = base_weights[name].double()
        deltas = [
            a.modules[name].delta_weight(torch.float64) if name in a.modules else torch.zeros_like(base)
            for a in adapters
        ]
        ratio = guarded_ratio(base + deltas[1], base + deltas[2], min_abs=min_abs, clamp=True)
        cross = (base + deltas[0]) * (t * (ratio.value - 1.0) + 1.0) - base
        additive = deltas[0] + t * (deltas[1] - deltas[2])
        norm = float(additive.norm())
        out[name] = float((cross - additive).norm()) / norm if norm else float("inf")
    return out
