"""The (IA)³ algebra against the formula written out by hand."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adamergex.errors import NumericalError
from adamergex.merging.ia3 import additive_merge, guarded_ratio, multiplicative_merge, weighted_sum


def test_multiplicative_hand_worked() -> None:
    task = torch.tensor([2.0, 1.0, 0.5])
    target = torch.tensor([3.0, 1.0, 2.0])
    source = torch.tensor([1.5, 2.0, 4.0])
    # t = 1: l_T · l_Rt / l_Rs = [4, 0.5, 0.25]; t = 0.5: l_T · (0.5 · (ratio − 1) + 1) = [3, 0.75, 0.375]
    assert torch.equal(multiplicative_merge(task, target, source, 1.0).value, torch.tensor([4.0, 0.5, 0.25]))
    assert torch.equal(multiplicative_merge(task, target, source, 0.5).value, torch.tensor([3.0, 0.75, 0.375]))
    assert torch.equal(multiplicative_merge(task, target, source, 0.0).value, task)


@settings(max_examples=30, deadline=None)
@given(t=st.floats(-3, 3, allow_nan=False), n=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_multiplicative_formula_any_sign_of_t(t, n, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    task, target, source = (torch.rand(n, generator=generator, dtype=torch.float64) + 0.5 for _ in range(3))
    expected = task * (t * (target / source - 1) + 1)
    torch.testing.assert_close(multiplicative_merge(task, target, source, t).value, expected)


def test_zero_in_reference_source_is_an_error_naming_index_and_value() -> None:
    with pytest.raises(NumericalError, match=r"index 1, value 0"):
        multiplicative_merge(torch.ones(3), torch.ones(3), torch.tensor([1.0, 0.0, 1e-9]), 1.0)


def test_clamp_keeps_sign_and_counts() -> None:
    ratio = guarded_ratio(torch.ones(4), torch.tensor([1.0, 0.0, -1e-9, 2.0]), min_abs=1e-3, clamp=True)
    assert ratio.clamped == 2
    torch.testing.assert_close(ratio.value, torch.tensor([1.0, 1e3, -1e3, 0.5]))


def test_additive_cross_ablation() -> None:
    task, target, source = torch.tensor([1.0, 2.0]), torch.tensor([1.5, 1.0]), torch.tensor([0.5, 2.0])
    assert torch.equal(additive_merge(task, target, source, 2.0), torch.tensor([3.0, 0.0]))


def test_weighted_sum() -> None:
    assert torch.equal(weighted_sum([torch.ones(2), torch.tensor([2.0, 3.0])], [1.0, -0.5]), torch.tensor([0.0, -0.5]))
    with pytest.raises(ValueError):
        weighted_sum([torch.ones(2)], [1.0, 2.0])
