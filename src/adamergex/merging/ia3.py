"""(IA)³ merge algebra on scaling vectors.

(IA)³ scales activations element-wise by a vector ``l``, so adapters compose multiplicatively (AdaMergeX, §3):
⊕ is ⊙ and ⊖ is ⊘. A module an adapter does not touch has ``l = 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from adamergex.errors import NumericalError

DEFAULT_MIN_ABS = 1e-6


@dataclass(frozen=True)
class Ratio:
    """``numerator ⊘ denominator`` and how many denominator elements were clamped to compute it."""

    value: torch.Tensor
    clamped: int


def guarded_ratio(
    numerator: torch.Tensor,
    denominator: torch.Tensor,
    *,
    min_abs: float = DEFAULT_MIN_ABS,
    clamp: bool = False,
) -> Ratio:
    """Element-wise ``numerator / denominator`` that refuses denominators with ``|d| < min_abs``.

    With ``clamp=True`` such elements are replaced by ``±min_abs`` (sign kept; zero becomes ``+min_abs``) and
    counted instead. Raises :class:`NumericalError` naming the first offending index and value otherwise.
    """
    small = denominator.abs() < min_abs
    count = int(small.sum())
    if count and not clamp:
        index = int(small.flatten().nonzero()[0])
        value = float(denominator.flatten()[index])
        raise NumericalError(
            f"{count} element(s) with |l| < {min_abs:g} (first: index {index}, value {value:g}); "
            "expected a non-zero reference vector (allow a clamp to replace them)"
        )
    if count:
        sign = torch.where(denominator < 0, -1.0, 1.0).to(denominator.dtype)
        denominator = torch.where(small, sign * min_abs, denominator)
    return Ratio(numerator / denominator, count)


def multiplicative_merge(
    task: torch.Tensor,
    reference_target: torch.Tensor,
    reference_source: torch.Tensor,
    t: float,
    *,
    min_abs: float = DEFAULT_MIN_ABS,
    clamp: bool = False,
) -> Ratio:
    """AdaMergeX for (IA)³: ``l_out = l_T ⊙ (t · (l_Rt ⊘ l_Rs − 1) + 1)``.

    ``t = 0`` returns ``l_T``; ``t = 1`` returns ``l_T ⊙ l_Rt ⊘ l_Rs``. The result carries the clamp count of
    the guarded division.
    """
    ratio = guarded_ratio(reference_target, reference_source, min_abs=min_abs, clamp=clamp)
    return Ratio(task * (t * (ratio.value - 1.0) + 1.0), ratio.clamped)


def additive_merge(
    task: torch.Tensor, reference_target: torch.Tensor, reference_source: torch.Tensor, t: float
) -> torch.Tensor:
    """The cross ablation for (IA)³ (the structure-blind LoRA operators): ``l_T + t · (l_Rt − l_Rs)``."""
    return task + t * (reference_target - reference_source)


def deviation_sum(vectors: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """Structure-blind arithmetic on deviations from identity: ``1 + Σ_i w_i · (l_i − 1)``.

    The AriMerge baseline for (IA)³ with weights (1, t) on (T, Rt) is ``l_T + t · (l_Rt − 1)``: the
    reference adapter's change to each activation scale is added to the task adapter's. (A plain ``l_T + l_Rt``
    doubles every scale, since an untouched module has l = 1.)
    """
    if len(vectors) != len(weights) or not vectors:
        raise ValueError("deviation_sum needs as many weights as vectors, at least one")
    return 1.0 + sum(w * (v - 1.0) for w, v in zip(weights, vectors, strict=True))  # type: ignore[return-value]


def weighted_sum(vectors: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """Structure-blind arithmetic ``Σ_i w_i · l_i`` (e.g. the AriMerge baseline ``l_T + l_Rt``)."""
    if len(vectors) != len(weights) or not vectors:
        raise ValueError("weighted_sum needs as many weights as vectors, at least one")
    return sum(w * v for w, v in zip(weights, vectors, strict=True))  # type: ignore[return-value]


def weighted_product(vectors: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """The multiplicative combination ``∏_i l_i^{w_i}``: (IA)³'s ⊕ applied ``w_i`` times.

    Adapters stacked on one model (MAD-X-style) compose this way with every ``w_i = 1``: each scales the same
    activations, so ``l_T' ⊙ l_Rt``. A weight of 1 multiplies by ``l_i`` itself (no ``pow`` rounding); other
    weights go through ``pow`` (a fractional power of a negative element is NaN, which the caller refuses).
    """
    if len(vectors) != len(weights) or not vectors:
        raise ValueError("weighted_product needs as many weights as vectors, at least one")
    product = torch.ones_like(vectors[0])
    for vector, weight in zip(vectors, weights, strict=True):
        product = product * (vector if weight == 1.0 else vector.pow(weight))
    return product
