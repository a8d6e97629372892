"""Tensor helpers every layer shares: finiteness checks, norms of low-rank products, and the dtype names.

They sit below ``adapters/`` (which checks tensors it reads and describes ΔW norms) and ``merging/`` (which
combines them), so neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from adamergex.errors import AdamergexError

#: The floating-point dtypes a user may name (``--dtype``, ``--compute-dtype``, ``dtype=`` in the API).
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
#: Short spellings accepted where model weights are chosen.
DTYPE_ALIASES: dict[str, str] = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def dtype_by_name(
    name: str, allowed: Iterable[str] = DTYPES, *, aliases: bool = False, handled: tuple[str, ...] = ()
) -> torch.dtype:
    """The torch dtype called ``name`` (one of ``allowed``, or a :data:`DTYPE_ALIASES` key with ``aliases``).

    Raises :class:`AdamergexError` naming the accepted names otherwise (``handled``: names the caller accepts
    before asking, such as ``auto``, listed first).
    """
    allowed = tuple(allowed)
    key = name.lower()
    if aliases:
        key = DTYPE_ALIASES.get(key, key)
    if key not in allowed:
        short = [alias for alias, full in DTYPE_ALIASES.items() if full in allowed] if aliases else []
        raise AdamergexError(f"unknown dtype {name!r}; expected one of {', '.join([*handled, *allowed, *short])}")
    return DTYPES[key]


def all_finite(tensor: torch.Tensor) -> bool:
    """True when no element is NaN or ±inf; a finite sum proves it in one cheap reduction."""
    if not tensor.is_floating_point():
        return True
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def lowrank_frobenius_norm(lora_A: torch.Tensor, lora_B: torch.Tensor, dtype: torch.dtype = torch.float64) -> float:
    """``‖B A‖_F`` from r × r Gram matrices: ``‖B A‖_F² = Σ (BᵀB) ⊙ (A Aᵀ)``, without forming ``B A``.

    The Gram products are accumulated in ``dtype`` (float64 by default: when ``B A`` is a difference of nearly
    equal products, float32 would lose the small result to cancellation).
    """
    a = lora_A.to(dtype)
    b = lora_B.to(dtype)
    squared = float(((b.T @ b) * (a @ a.T)).sum())
    return float(max(squared, 0.0) ** 0.5)


def lowrank_inner(lora_A1: torch.Tensor, lora_B1: torch.Tensor, lora_A2: torch.Tensor, lora_B2: torch.Tensor) -> float:
    """The Frobenius inner product ``⟨B₁A₁, B₂A₂⟩ = Σ (B₁ᵀB₂) ⊙ (A₁A₂ᵀ)``, from r₁ × r₂ products only."""
    a1, b1, a2, b2 = (x.double() for x in (lora_A1, lora_B1, lora_A2, lora_B2))
    return float(((b1.T @ b2) * (a1 @ a2.T)).sum())
