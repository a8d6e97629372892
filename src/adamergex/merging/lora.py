"""LoRA merge algebra on factors, exact on the weight update ΔW = s · B · A.

A LoRA module adds ``s · B A x`` to a layer's output, so adapters combine additively on ΔW (AdaMergeX, §3):

    ΔW_out = Σ_i w_i · s_i · B_i A_i          (AdaMergeX: w = (1, t, −t) for (T, Rt, Rs))

Adding A and B factors separately is *not* this: ``(Σ A)(Σ B) ≠ Σ B A`` because of cross terms. Every function
here works on factors and never forms a dense ΔW (norms and inner products of such products, from small Gram
matrices, are in :mod:`adamergex.tensors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

# One term of a weighted sum: (coefficient c_i = w_i · s_i, lora_A (r_i, in), lora_B (out, r_i)).
Term = tuple[float, torch.Tensor, torch.Tensor]


def concat_factors(terms: Sequence[Term], dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Write ``Σ_i c_i · B_i A_i`` exactly as one LoRA of rank ``Σ_i r_i`` with output scale 1.

    ``A = [c_1 A_1; c_2 A_2; …]`` (rows stacked) and ``B = [B_1, B_2, …]`` (columns stacked), so
    ``B A = Σ_i B_i (c_i A_i)``.

    Returns:
        ``(lora_A, lora_B)`` of shapes (Σr, in) and (out, Σr), in ``dtype``.
    """
    if not terms:
        raise ValueError("concat_factors needs at least one term")
    lora_A = torch.cat([coefficient * a.to(dtype) for coefficient, a, _ in terms], dim=0)
    lora_B = torch.cat([b.to(dtype) for _, _, b in terms], dim=1)
    return lora_A, lora_B


@dataclass(frozen=True)
class Compressed:
    """A rank-k LoRA from :func:`compress_factors` and the singular values of the exact product."""

    lora_A: torch.Tensor
    lora_B: torch.Tensor
    singular_values: torch.Tensor

    @property
    def rank(self) -> int:
        return int(self.lora_A.shape[0])

    @property
    def kept_energy(self) -> float:
        """``Σ_{i≤k} σ_i² / Σ_i σ_i²``: the share of ‖B A‖_F² the truncation keeps (1.0 for a zero product)."""
        energy = self.singular_values.double().pow(2)
        total = float(energy.sum())
        return 1.0 if total == 0.0 else float(energy[: self.rank].sum()) / total


def compress_factors(lora_A: torch.Tensor, lora_B: torch.Tensor, rank: int) -> Compressed:
    """The best rank-``rank`` approximation of ``B A`` in factored form, without forming ``B A``.

    With thin QR factorisations ``B = Q_B R_B`` and ``Aᵀ = Q_A R_A``, ``B A = Q_B (R_B R_Aᵀ) Q_Aᵀ``. The small core
    ``R_B R_Aᵀ = U Σ Vᵀ`` (at most R × R for inner rank R) gives the SVD of ``B A`` as ``(Q_B U) Σ (Q_A V)ᵀ``,
    so keeping k singular values yields exactly the truncated dense SVD (Eckart–Young):

        B' = Q_B U_k Σ_k^½,   A' = (Q_A V_k Σ_k^½)ᵀ

    ``rank`` larger than the inner rank (or than ``min(out, in)``) is capped, which keeps the product exact.
    The singular values are split evenly (½/½) between the factors, which keeps both well scaled.
    """
    if rank < 1:
        raise ValueError(f"rank must be at least 1, got {rank}")
    q_b, r_b = torch.linalg.qr(lora_B, mode="reduced")
    q_a, r_a = torch.linalg.qr(lora_A.T, mode="reduced")
    u, sigma, vh = torch.linalg.svd(r_b @ r_a.T, full_matrices=False)
    k = min(rank, sigma.shape[0])
    root = sigma[:k].sqrt()
    new_B = (q_b @ u[:, :k]) * root
    new_A = ((q_a @ vh[:k].T) * root).T
    return Compressed(new_A.contiguous(), new_B.contiguous(), sigma)


def factorwise_combine(
    terms: Sequence[tuple[float, torch.Tensor, torch.Tensor]], dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """The released AdaMergeX code's rule: ``A = Σ_i w_i A_i`` and ``B = Σ_i w_i B_i`` (same scale kept).

    Kept only to reproduce that code; it is *not* ΔW-exact: ``(Σ w_i B_i)(Σ w_j A_j)`` has cross terms
    ``w_i w_j B_i A_j``. Here each term is ``(w_i, A_i, B_i)`` with plain weights (no LoRA scale), and all
    ranks must be equal.
    """
    if not terms:
        raise ValueError("factorwise_combine needs at least one term")
    ranks = {int(a.shape[0]) for _, a, _ in terms}
    if len(ranks) != 1:
        raise ValueError(f"factor-wise combination needs equal ranks, got {sorted(ranks)}")
    lora_A = sum(weight * a.to(dtype) for weight, a, _ in terms)
    lora_B = sum(weight * b.to(dtype) for weight, _, b in terms)
    return lora_A, lora_B  # type: ignore[return-value]
