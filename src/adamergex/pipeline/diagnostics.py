"""Measuring AdaMergeX's assumption: the language gap is the same for the task and the reference task.

Where a target-language task adapter exists, compare per LoRA module

    D_task = ΔW(A(task, tgt)) − ΔW(A(task, src))      and      D_ref = ΔW(Rt) − ΔW(Rs)

by their cosine ``⟨D_task, D_ref⟩ / (‖D_task‖ ‖D_ref‖)`` and norm ratio ``‖D_ref‖ / ‖D_task‖``. Cosine near 1
with a ratio near 1 means ``T + (Rt − Rs)`` lands where target-language training lands. Everything is computed
from the LoRA factors (r × r products), never from dense ΔW. For (IA)³ the gaps are ``log l_tgt − log l_src``
(the multiplicative structure's difference) and the same cosine is taken between vectors.

A cosine means little without its null. Two references come with every cosine:

* random directions: for independent random directions in the space of out × in matrices the cosine has mean 0
  and mean square ``1 / (out · in)`` *whatever their ranks* (:func:`random_cosine_rms`), so the mean over M
  modules has standard deviation ``sqrt(Σ_m 1/(out_m in_m)) / M`` under that null;
* replicates: the same gap measured twice, from adapters trained with different seeds; its cosine is the most
  a measured alignment can reach given training noise (a reliability ceiling, as in Spearman's correction).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from adamergex.adapters.types import Adapter, IA3Adapter, LoraAdapter
from adamergex.errors import AdamergexError
from adamergex.tensors import lowrank_frobenius_norm, lowrank_inner
from adamergex.threads import single_threaded

Factors = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class ModuleDiagnostic:
    name: str
    cosine: float
    norm_ratio: float
    task_gap_norm: float
    reference_gap_norm: float
    size: int = 0


def random_cosine_rms(size: int) -> float:
    """Root-mean-square cosine between two independent random directions in a space of ``size`` = out · in.

    If ``X`` is random with a distribution invariant under ``X ↦ U X V`` for orthogonal U, V (a Gaussian matrix,
    or ``B A`` with Gaussian factors of any rank r), then for any fixed ``Y`` the matrix ``E[vec X̂ vec X̂ᵀ]`` of
    the unit direction ``X̂`` commutes with every ``V ⊗ U``; that representation is irreducible, so by Schur's
    lemma it is ``I / size`` (trace 1). Hence ``E[cos] = 0`` and ``E[cos²] = ⟨Ŷ, I Ŷ⟩ / size = 1 / size``,
    independent of both ranks.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return 1.0 / math.sqrt(size)


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


@single_threaded
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
                size=int(task_gap[1].shape[0] * task_gap[0].shape[1]),
            )
        )
    return results


@single_threaded
def ia3_language_gap_alignment(
    task_source: IA3Adapter, task_target: IA3Adapter, reference_target: IA3Adapter, reference_source: IA3Adapter
) -> list[ModuleDiagnostic]:
    """Per-module cosine between ``log l(task, tgt) − log l(task, src)`` and ``log l_Rt − log l_Rs``.

    A module an adapter lacks has l = 1 (log 0); a module with a non-positive scale is skipped.
    """
    adapters = (task_source, task_target, reference_target, reference_source)
    names = sorted(set().union(*(a.modules for a in adapters)))
    results = []
    for name in names:
        present = [a.modules[name].vector.double() for a in adapters if name in a.modules]
        if any(bool((v <= 0).any()) for v in present):
            continue
        logs = [
            a.modules[name].vector.double().log() if name in a.modules else torch.zeros_like(present[0])
            for a in adapters
        ]
        task_gap, reference_gap = logs[1] - logs[0], logs[2] - logs[3]
        task_norm, reference_norm = float(task_gap.norm()), float(reference_gap.norm())
        if task_norm == 0.0 or reference_norm == 0.0:
            continue
        cosine = float((task_gap * reference_gap).sum()) / (task_norm * reference_norm)
        results.append(
            ModuleDiagnostic(
                name=name,
                cosine=cosine,
                norm_ratio=reference_norm / task_norm,
                task_gap_norm=task_norm,
                reference_gap_norm=reference_norm,
                size=task_gap.numel(),
            )
        )
    return results


def gap_alignment(
    task_source: Adapter, task_target: Adapter, reference_target: Adapter, reference_source: Adapter
) -> list[ModuleDiagnostic]:
    """:func:`language_gap_alignment` or :func:`ia3_language_gap_alignment`, by the adapters' kind.

    The same function measures a gap's stability: ``gap_alignment(Rs₁, Rt₁, Rt₂, Rs₂)`` is the cosine between
    the reference gaps of two seeds.
    """
    adapters = (task_source, task_target, reference_target, reference_source)
    if all(isinstance(a, LoraAdapter) for a in adapters):
        return language_gap_alignment(*adapters)  # type: ignore[arg-type]
    if all(isinstance(a, IA3Adapter) for a in adapters):
        return ia3_language_gap_alignment(*adapters)  # type: ignore[arg-type]
    raise AdamergexError("the language-gap diagnostic needs four adapters of one kind (LoRA or (IA)³)")


def null_sd_of_mean(diagnostics: Sequence[ModuleDiagnostic]) -> float:
    """Standard deviation of the mean cosine over modules if every module's gaps were random directions."""
    return math.sqrt(sum(1.0 / d.size for d in diagnostics)) / len(diagnostics)


def summarize(diagnostics: list[ModuleDiagnostic]) -> dict[str, float | None]:
    """Mean and median cosine and norm ratio over modules, with the random-direction null of the mean."""
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
        "null_sd_of_mean": null_sd_of_mean(diagnostics) if all(d.size for d in diagnostics) else None,
        "null_rms_cosine_median": statistics.median(random_cosine_rms(d.size) for d in diagnostics if d.size)
        if all(d.size for d in diagnostics)
        else None,
    }
