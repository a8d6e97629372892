"""Choosing t: a budgeted 1-D search, grid first, then refinement around the best point.

The objective (a dev-set score as a function of t) is noisy and cheap enough to evaluate a handful of times;
a coarse grid finds the right basin, and each refinement round evaluates the midpoints between the best point
and its neighbours (the more promising side first), halving the spacing. Every evaluation is kept so the whole
curve can be plotted. :func:`information_maximisation` is a label-free objective for the search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


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

    ``budget`` is the number of objective evaluations allowed in all (default: the grid plus two per round); it
    must cover the grid. Each round proposes the midpoints between the current best t and its nearest evaluated
    neighbour on either side and evaluates them while the budget lasts, the side of the better-scoring
    neighbour first (on a unimodal curve the optimum lies on that side), so a budget of one point more than the
    grid refines towards the optimum rather than always to the left. Ties go to the smaller |t| (the smaller
    change to the task adapter), then to the smaller t.
    """
    if not grid:
        raise ValueError("the t grid is empty")
    points = sorted(set(float(t) for t in grid))
    if budget is not None and budget < len(points):
        raise ValueError(
            f"a budget of {budget} evaluations cannot cover the {len(points)}-point grid; "
            "expected a budget of at least the grid size"
        )
    sign = 1.0 if maximize else -1.0
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
        return max(scores, key=lambda t: (sign * scores[t], -abs(t), -t))

    for t in points:
        evaluate(t)
    for _ in range(refine_rounds):
        if len(scores) >= limit:
            break
        centre = best()
        evaluated = sorted(scores)
        position = evaluated.index(centre)
        sides = [evaluated[i] for i in (position - 1, position + 1) if 0 <= i < len(evaluated)]
        sides.sort(key=lambda neighbour: (-sign * scores[neighbour], abs(neighbour)))
        for neighbour in sides:
            evaluate(round((centre + neighbour) / 2, 10))
    chosen = best()
    return SearchResult(best_t=chosen, best_score=scores[chosen], curve=curve)


def information_maximisation(loglikelihoods: Sequence[Sequence[float]]) -> float:
    """The label-free criterion ``I = H(p̄) − mean_i H(p_i)`` (nats) of a classifier on unlabelled inputs.

    ``p_i`` is the softmax over item ``i``'s choice log-likelihoods and ``p̄`` their mean. The second term
    rewards confident predictions, the first predictions spread over the classes, so a model that collapses
    onto one class scores 0 however confident it is. It is the mutual information between input and
    prediction under the empirical input distribution, the objective of information-maximisation approaches
    to unsupervised model selection and adaptation; it needs target-language inputs but no labels.
    """
    if not loglikelihoods:
        raise ValueError("the label-free criterion needs at least one item")
    logits = np.asarray(loglikelihoods, dtype=float)
    logits = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    mean = probabilities.mean(axis=0)
    marginal = -float(np.sum(mean * np.log(np.clip(mean, 1e-300, None))))
    conditional = -float(np.mean(np.sum(probabilities * np.log(np.clip(probabilities, 1e-300, None)), axis=1)))
    return marginal - conditional
