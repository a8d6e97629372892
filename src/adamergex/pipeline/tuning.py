"""Choosing t: a budgeted 1-D search, grid first, then refinement around the best point.

The objective (a dev-set score as a function of t) is noisy and cheap enough to evaluate a handful of times;
a coarse grid finds the right basin, and each refinement round evaluates the midpoints between the best point
and its neighbours, halving the spacing. Every evaluation is kept so the whole curve can be plotted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class SearchResult:
    """The chosen t, its score, and every (t, score) evaluated, in evaluation order."""

    best_t: float
    best_score: float
    curve: list[tuple[float, float]] = field(default_factory=list)

    def sorted_curve(self) -> list[tuple[float, float]]:
        return sorted(self.curve)


def search_t(
    objective: Callable[[float], float],
    grid: Sequence[float],
    *,
    refine_rounds: int = 2,
    budget: int | None = None,
    maximize: bool = True,
) -> SearchResult:
    """Maximise (or minimise) ``objective(t)``: evaluate ``grid``, then refine ``refine_rounds`` times.

    Each refinement evaluates the midpoints between the current best t and its nearest evaluated neighbours
    on either side. ``budget`` caps the number of evaluations (the grid is evaluated first). Ties go to the
    smaller |t| (the smaller change to the task adapter), then to the smaller t.
    """
    if not grid:
        raise ValueError("the t grid is empty")
    points = sorted(set(float(t) for t in grid))
    scores: dict[float, float] = {}
    curve: list[tuple[float, float]] = []
    limit = budget if budget is not None else len(points) + 2 * refine_rounds

    def evaluate(t: float) -> None:
        if t in scores or len(scores) >= limit:
            return
        score = float(objective(t))
        scores[t] = score
        curve.append((t, score))

    def best() -> float:
        sign = 1.0 if maximize else -1.0
        return max(scores, key=lambda t: (sign * scores[t], -abs(t), -t))

    for t in points:
        evaluate(t)
    for _ in range(refine_rounds):
        centre = best()
        evaluated = sorted(scores)
        position = evaluated.index(centre)
        neighbours = []
        if position > 0:
            neighbours.append(evaluated[position - 1])
        if position < len(evaluated) - 1:
            neighbours.append(evaluated[position + 1])
        for neighbour in neighbours:
            evaluate(round((centre + neighbour) / 2, 10))
    chosen = best()
    return SearchResult(best_t=chosen, best_score=scores[chosen], curve=curve)
