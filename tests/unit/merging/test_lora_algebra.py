"""The LoRA algebra against dense computations and a hand-worked example (no model needed)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adamergex.merging.lora import (
    compress_factors,
    concat_factors,
    factorwise_combine,
)
from adamergex.tensors import lowrank_frobenius_norm


def _random_term(generator: torch.Generator, coefficient: float, rank: int, out: int, inp: int):
    a = torch.randn(rank, inp, generator=generator, dtype=torch.float64)
    b = torch.randn(out, rank, generator=generator, dtype=torch.float64)
    return coefficient, a, b


def _dense(terms) -> torch.Tensor:
    return sum(c * (b @ a) for c, a, b in terms)


def test_concat_hand_worked_example() -> None:
    # ΔW = 2·[1;2][3 4] − 1·[0;1][1 1] = [[6, 8], [12, 16]] − [[0, 0], [1, 1]]
    a1, b1 = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0], [2.0]])
    a2, b2 = torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0], [1.0]])
    lora_A, lora_B = concat_factors([(2.0, a1, b1), (-1.0, a2, b2)])
    assert lora_A.shape == (2, 2) and lora_B.shape == (2, 2)
    assert torch.equal(lora_B @ lora_A, torch.tensor([[6.0, 8.0], [11.0, 15.0]]))


def test_factorwise_is_not_exact_hand_worked() -> None:
    # Released-code rule: (B1 + B2)(A1 + A2) = B1A1 + B2A2 + B1A2 + B2A1; the cross terms are the error.
    a1, b1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0], [0.0]])
    a2, b2 = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0], [1.0]])
    lora_A, lora_B = factorwise_combine([(1.0, a1, b1), (1.0, a2, b2)])
    exact = b1 @ a1 + b2 @ a2  # identity
    assert torch.equal(exact, torch.eye(2))
    assert torch.equal(lora_B @ lora_A, torch.ones(2, 2))  # cross terms fill the off-diagonal


def test_factorwise_needs_equal_ranks() -> None:
    with pytest.raises(ValueError, match="equal ranks"):
        factorwise_combine([(1.0, torch.ones(2, 3), torch.ones(3, 2)), (1.0, torch.ones(4, 3), torch.ones(3, 4))])


@settings(max_examples=40, deadline=None)
@given(
    ranks=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    coefficients=st.lists(st.floats(-3, 3, allow_nan=False), min_size=4, max_size=4),
    out=st.integers(1, 24),
    inp=st.integers(1, 24),
    seed=st.integers(0, 2**16),
)
def test_concat_equals_dense_sum(ranks, coefficients, out, inp, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    terms = [_random_term(generator, c, r, out, inp) for c, r in zip(coefficients, ranks, strict=False)]
    lora_A, lora_B = concat_factors(terms, dtype=torch.float64)
    assert lora_A.shape == (sum(ranks), inp) and lora_B.shape == (out, sum(ranks))
    torch.testing.assert_close(lora_B @ lora_A, _dense(terms), rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    ranks=st.lists(st.integers(1, 8), min_size=1, max_size=3),
    out=st.integers(2, 30),
    inp=st.integers(2, 30),
    keep=st.integers(1, 12),
    t=st.floats(-2, 2, allow_nan=False),
    seed=st.integers(0, 2**16),
)
def test_compress_equals_truncated_dense_svd(ranks, out, inp, keep, t, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    coefficients = [1.0, t, -t][: len(ranks)]
    terms = [_random_term(generator, c, r, out, inp) for c, r in zip(coefficients, ranks, strict=True)]
    lora_A, lora_B = concat_factors(terms, dtype=torch.float64)
    compressed = compress_factors(lora_A, lora_B, keep)

    dense = _dense(terms)
    u, s, vh = torch.linalg.svd(dense, full_matrices=False)
    k = min(keep, sum(ranks), out, inp)
    truncated = (u[:, :k] * s[:k]) @ vh[:k]
    assert compressed.rank == k
    torch.testing.assert_close(compressed.lora_B @ compressed.lora_A, truncated, rtol=1e-8, atol=1e-8 * (1 + s[0]))
    expected_energy = float(s[:k].pow(2).sum() / s.pow(2).sum()) if float(s.pow(2).sum()) > 0 else 1.0
    assert compressed.kept_energy == pytest.approx(expected_energy, rel=1e-8, abs=1e-12)
    torch.testing.assert_close(compressed.singular_values[:k], s[:k], rtol=1e-8, atol=1e-8 * (1 + s[0]))


def test_compress_at_full_rank_is_exact_and_keeps_all_energy() -> None:
    generator = torch.Generator().manual_seed(0)
    terms = [_random_term(generator, c, r, 40, 30) for c, r in ((1.0, 4), (0.5, 8), (-0.5, 16))]
    lora_A, lora_B = concat_factors(terms, dtype=torch.float64)
    compressed = compress_factors(lora_A, lora_B, 28)
    torch.testing.assert_close(compressed.lora_B @ compressed.lora_A, _dense(terms), rtol=1e-10, atol=1e-10)
    assert compressed.kept_energy == pytest.approx(1.0)


def test_compress_of_zero_product() -> None:
    compressed = compress_factors(torch.zeros(3, 5), torch.randn(4, 3), 2)
    assert compressed.kept_energy == 1.0
    assert torch.count_nonzero(compressed.lora_B @ compressed.lora_A) == 0


def test_compress_rejects_rank_zero() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        compress_factors(torch.ones(2, 3), torch.ones(3, 2), 0)


@settings(max_examples=30, deadline=None)
@given(rank=st.integers(1, 10), out=st.integers(1, 20), inp=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_lowrank_frobenius_norm_matches_dense(rank, out, inp, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(rank, inp, generator=generator)
    b = torch.randn(out, rank, generator=generator)
    assert lowrank_frobenius_norm(a, b) == pytest.approx(float((b.double() @ a.double()).norm()), rel=1e-6)
