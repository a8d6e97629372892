"""The t search on known synthetic curves."""

from __future__ import annotations

import math

import pytest

from adamergex.pipeline.tuning import information_maximisation, search_t


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


def test_refinement_visits_both_neighbours_within_budget() -> None:
    calls = []
    search_t(lambda t: calls.append(t) or -abs(t - 0.5), [0.0, 0.5, 1.0], refine_rounds=1, budget=5)
    assert calls == [0.0, 0.5, 1.0, 0.25, 0.75] or calls == [0.0, 0.5, 1.0, 0.75, 0.25]


@pytest.mark.parametrize(("peak", "expected"), [(0.7, 0.75), (0.3, 0.25)])
def test_one_spare_evaluation_goes_to_the_better_side(peak: float, expected: float) -> None:
    """Grid best 0.5; with one evaluation left the side of the better neighbour is refined: 0.75 when the
    optimum is at 0.7 (f(1) > f(0)), 0.25 when it is at 0.3 — not always the left one."""
    calls = []
    result = search_t(lambda t: calls.append(t) or -abs(t - peak), [0.0, 0.5, 1.0], refine_rounds=1, budget=4)
    assert calls[3] == expected and result.best_t == expected


def test_budget_must_cover_the_grid() -> None:
    with pytest.raises(ValueError, match="cannot cover the 5-point grid"):
        search_t(lambda t: t, [0.0, 0.25, 0.5, 0.75, 1.0], budget=3)


def test_information_maximisation_hand_worked() -> None:
    """Two confident items on different classes: H(p̄) = log 2, mean H(p) ≈ 0, so I ≈ log 2; a model that
    puts every item confidently on one class scores 0; uniform predictions score 0."""
    big = 50.0
    assert information_maximisation([[0.0, -big], [-big, 0.0]]) == pytest.approx(math.log(2), abs=1e-9)
    assert information_maximisation([[0.0, -big], [0.0, -big]]) == pytest.approx(0.0, abs=1e-9)
    assert information_maximisation([[-1.0, -1.0], [-3.0, -3.0]]) == pytest.approx(0.0, abs=1e-12)
    # one item with p = (0.75, 0.25) and one with (0.25, 0.75): I = log 2 − H(0.75, 0.25)
    third = math.log(3)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert information_maximisation([[third, 0.0], [0.0, third]]) == pytest.approx(math.log(2) - h)


def test_ties_prefer_smaller_change() -> None:
    assert search_t(lambda t: 1.0, [-0.5, 0.0, 0.5, 1.0], refine_rounds=1).best_t == 0.0


def test_empty_grid_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        search_t(lambda t: t, [])
