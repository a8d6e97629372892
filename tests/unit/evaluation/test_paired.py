"""Paired statistics against hand-worked cases and independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from adamergex.evaluation.metrics import macro_f1
from adamergex.evaluation.paired import (
    crossed_bootstrap,
    discordant_pairs,
    mcnemar_exact,
    resample_counts,
    seed_spread,
    weighted_macro_f1,
    weighted_mean,
)


def test_mcnemar_hand_worked() -> None:
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pair: no evidence either way
    assert mcnemar_exact(3, 3) == 1.0  # tie: 2 · P(X ≤ 3 | n = 6) = 2 · 42/64 > 1, capped
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # 2 · (½)^5
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)  # 2 · (C(10,0) + C(10,1)) / 2^10
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(2, 3) == 1.0  # 2 · P(X ≤ 2 | n = 5) = 2 · 16/32


def test_mcnemar_matches_scipy_binomial_test() -> None:
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(4, 17), (30, 52), (120, 95), (0, 1)]:
        assert mcnemar_exact(b, c) == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, rel=1e-9)


def test_discordant_pairs_ignore_ties() -> None:
    a = np.array([1, 1, 0, 0, 1, 0], dtype=bool)
    b = np.array([1, 0, 1, 0, 0, 0], dtype=bool)
    assert discordant_pairs(a, b) == (2, 1)  # items 1 and 4 only a; item 2 only b; 0, 3, 5 concordant


def test_resample_counts_are_draws_of_n() -> None:
    counts = resample_counts(np.random.default_rng(0), 7, 50)
    assert counts.shape == (50, 7) and (counts.sum(axis=1) == 7).all()


def test_weighted_metrics_equal_the_metric_on_the_expanded_sample() -> None:
    generator = np.random.default_rng(1)
    predicted, gold = generator.integers(0, 4, 40), generator.integers(0, 4, 40)
    weights = resample_counts(generator, 40, 5)
    f1 = weighted_macro_f1(weights, predicted, gold, 4)
    for row, value in zip(weights, f1, strict=True):
        index = np.repeat(np.arange(40), row.astype(int))
        assert value == pytest.approx(macro_f1(list(predicted[index]), list(gold[index])))
    assert weighted_macro_f1(np.ones((1, 40)), predicted, gold, 4)[0] == pytest.approx(
        macro_f1(list(predicted), list(gold))
    )
    values = generator.random(40)
    assert weighted_mean(weights[:1], values)[0] == pytest.approx(np.repeat(values, weights[0].astype(int)).mean())


def _difference(first: np.ndarray, second: np.ndarray):
    return lambda weights: weighted_mean(weights, first) - weighted_mean(weights, second)


def test_paired_bootstrap_identical_methods_have_a_zero_interval() -> None:
    """Unpaired intervals of two 50% methods would overlap widely; paired, their identical items cancel."""
    a = np.array([1, 0] * 10, dtype=float)
    result = crossed_bootstrap([[_difference(a, a.copy())]], [20])
    assert (result.pooled.value, result.pooled.low, result.pooled.high) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_one_discordant_item_in_ten() -> None:
    """d = (1, 0, …, 0): the resampled mean is k/10 with k ~ Binomial(10, 0.1). P(k = 0) = 0.35 > 2.5%, so the
    lower end is 0; P(k ≤ 2) = 0.930 < 97.5% < P(k ≤ 3) = 0.987, so the upper end is 0.3."""
    a = np.array([1, 1, 1, 0, 0, 1, 0, 1, 1, 0], dtype=float)
    b = a.copy()
    b[0] = 0.0
    result = crossed_bootstrap([[_difference(a, b)]], [10], resamples=4000, seed=3)
    assert result.strata[0].value == pytest.approx(0.1)
    assert result.strata[0].low == 0.0 and result.strata[0].high == pytest.approx(0.3)


def test_stratified_pooling_is_the_mean_over_strata() -> None:
    same = np.ones(8)
    shifted = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=float)
    result = crossed_bootstrap([[_difference(same, same)], [_difference(same, shifted)]], [8, 8], seed=0)
    assert result.strata[0].value == 0.0 and result.strata[1].value == pytest.approx(0.5)
    assert result.pooled.value == pytest.approx(0.25)
    # stratum 0 contributes no variance: the pooled interval is half stratum 1's
    assert result.pooled.high - result.pooled.low == pytest.approx((result.strata[1].high - result.strata[1].low) / 2)


def test_seed_resampling_of_two_seeds() -> None:
    """Seed 0 gets every item right, seed 1 none: items add no variance; resampled seed pairs {0,0}, {0,1},
    {1,1} give 1, ½, 0 with probabilities ¼, ½, ¼, so the 95% interval is [0, 1] around the mean ½."""
    right, wrong = np.ones(6), np.zeros(6)
    cells = [[lambda w: weighted_mean(w, right), lambda w: weighted_mean(w, wrong)]]
    result = crossed_bootstrap(cells, [6], seed=0)
    assert result.pooled.value == 0.5 and (result.pooled.low, result.pooled.high) == (0.0, 1.0)
    assert seed_spread([1.0, 0.0]) == pytest.approx(np.sqrt(0.5)) and seed_spread([0.7]) is None


def test_shared_item_draws_keep_translations_together() -> None:
    """Two languages whose differences are the same items: with shared draws the pooled interval equals each
    stratum's; with independent draws it is narrower (the correlation between translations is lost)."""
    a = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 1], dtype=float)
    b = np.array([0, 1, 0, 0, 0, 1, 1, 1, 1, 0], dtype=float)
    cells = [[_difference(a, b)], [_difference(a, b)]]
    shared = crossed_bootstrap(cells, [10, 10], shared_items=True)
    independent = crossed_bootstrap(cells, [10, 10])
    assert (shared.pooled.low, shared.pooled.high) == (shared.strata[0].low, shared.strata[0].high)
    assert independent.pooled.high - independent.pooled.low < shared.pooled.high - shared.pooled.low


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="each seed"):
        crossed_bootstrap([[lambda w: w.sum(axis=1)], []], [3, 3])
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_exact(-1, 2)
