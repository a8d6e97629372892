"""Measuring AdaMergeX's assumption: the language gap is the same for the task and the reference task.

Where a target-language task adapter exists, compare per LoRA module

    D_task = ΔW(A(task, tgt)) − ΔW(A(task, src))      and      D_ref = ΔW(Rt) − ΔW(Rs)

by their cosine ``⟨D_task, D_ref⟩ / (‖D_task‖ ‖D_ref‖)`` and norm ratio ``‖D_ref‖ / ‖D_task‖``. Cosine near 1
with a ratio near 1 means ``T + (Rt − Rs)`` lands where target-language training lands. Everything is computed
from the LoRA factors (r × r products), never from dense ΔW.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from adamergex.adapters.types import LoraAdapter
from adamergex.errors import AdamergexError
from adamergex.merging.lora import lowrank_frobenius_norm, lowrank_inner

Factors = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class ModuleDiagnostic:
    name: str
    cosine: float
    norm_ratio: float
    task_gap_norm: float
    reference_gap_norm: float


def _difference(plus: LoraAdapter, minus: LoraAdapter, name: str) -> Factors | None:
    """Factors of ``ΔW_plus − ΔW_minus`` for one module (a missing module has ΔW = 0)."""
    parts_A, parts_B = [], []
    for adapter, sign in ((plus, 1.0), (minus, -1.0)):
        module = adapter.modules.get(name)
        if module is not None:
            parts_A.append(sign * module.scale * module.lora_A.double())
            parts_B.append(module.lora_B.double())
    if not parts_A:
        return None
    return torch.cat(parts_A, dim=0), torch.cat(parts_B, dim=1)


def language_gap_alignment(
    task_source: LoraAdapter, task_target: LoraAdapter, reference_target: LoraAdapter, reference_source: LoraAdapter
) -> list[ModuleDiagnostic]:
    """Per-module cosine and norm ratio between the task's and the reference task's language gaps."""
    adapters = (task_source, task_target, reference_target, reference_source)
    if any(not isinstance(a, LoraAdapter) for a in adapters):
        raise AdamergexError("the language-gap diagnostic needs LoRA adapters")
    names = sorted(set().union(*(a.modules for a in adapters)))
    results = []
    for name in names:
        task_gap = _difference(task_target, task_source, name)
        reference_gap = _difference(reference_target, reference_source, name)
        if task_gap is None or reference_gap is None:
            continue
        task_norm = lowrank_frobenius_norm(*task_gap)
        reference_norm = lowrank_frobenius_norm(*reference_gap)
        if task_norm == 0.0 or reference_norm == 0.0:
            continue
        inner = lowrank_inner(task_gap[0], task_gap[1], reference_gap[0], reference_gap[1])
        results.append(
            ModuleDiagnostic(
                name=name,
                cosine=inner / (task_norm * reference_norm),
                norm_ratio=reference_norm / task_norm,
                task_gap_norm=task_norm,
                reference_gap_norm=reference_norm,
            )
        )
    return results


def summarize(diagnostics: list[ModuleDiagnostic]) -> dict[str, float]:
    """Mean and median cosine and norm ratio over modules."""
    if not diagnostics:
        return {}
    cosines = [d.cosine for d in diagnostics]
    ratios = [d.norm_ratio for d in diagnostics]
    return {
        "modules": len(diagnostics),
        "cosine_mean": statistics.fmean(cosines),
        "cosine_median": statistics.median(cosines),
        "norm_ratio_mean": statistics.fmean(ratios),
        "norm_ratio_median": statistics.median(ratios),
    }
