"""The t search on known synthetic curves."""

from __future__ import annotations

import pytest

from adamergex.pipeline.tuning import search_t


def test_finds_optimum_of_a_known_concave_curve() -> None:
    calls = []

    def curve(t: float) -> float:
        calls.append(t)
        return -((t - 0.7) ** 2)

    result = search_t(curve, [0.0, 0.25, 0.5, 0.75, 1.0], refine_rounds=3)
    # grid best is 0.75; refinements at 0.625/0.875, then 0.6875/0.8125, then 0.71875/...: converges on 0.7
    assert result.best_t == pytest.approx(0.7, abs=0.02)
    assert len(calls) == len(set(calls))  # no point evaluated twice
    assert result.curve[:5] == [(t, -((t - 0.7) ** 2)) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]


def test_optimum_at_grid_edge_and_minimisation() -> None:
    result = search_t(lambda t: (t + 1.0) ** 2, [-1.0, 0.0, 1.0], refine_rounds=2, maximize=False)
    assert result.best_t == -1.0 and result.best_score == 0.0


def test_budget_caps_evaluations() -> None:
    calls = []
    result = search_t(lambda t: calls.append(t) or -abs(t - 0.3), [0.0, 0.5, 1.0], refine_rounds=5, budget=4)
    assert len(calls) == 4 and len(result.curve) == 4


def test_ties_prefer_smaller_change() -> None:
    assert search_t(lambda t: 1.0, [-0.5, 0.0, 0.5, 1.0], refine_rounds=1).best_t == 0.0


def test_empty_grid_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        search_t(lambda t: t, [])
