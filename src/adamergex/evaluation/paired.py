"""Statistics for methods scored on the same items: paired differences, McNemar, a crossed bootstrap.

Every method of an experiment is scored on the same test items, so two methods are compared item by item:
the difference of their scores with a *paired* bootstrap interval (one draw of items serves both methods, so
the variation the items share cancels) and, for right/wrong outcomes, the exact McNemar test on the discordant
pairs. Experiments repeat training with several seeds and evaluate several languages; the bootstrap resamples
items within each language (stratified) and, crossed with them, the seeds, so the interval covers both the
choice of items and the luck of training.

Everything here is a pure function of NumPy arrays; a *scorer* maps item multiplicities ``W`` (resamples × n,
each row counts how often each item was drawn) to one score per resample, so the same code gives the point
estimate (``W`` = a row of ones) and every resample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import comb

import numpy as np

Scorer = Callable[[np.ndarray], np.ndarray]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: ``min(1, 2 · P(X ≤ min(b, c)))`` with ``X ~ Binomial(b + c, ½)``.

    ``b`` counts items the first method gets right and the second wrong, ``c`` the reverse; items both get right
    or both get wrong carry no information about which is better and are left out. No discordant pair gives 1.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be non-negative, got {b} and {c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def discordant_pairs(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int]:
    """``(b, c)``: items only ``a`` gets right, items only ``b`` gets right."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes must have the same shape, got {a.shape} and {b.shape}")
    return int(np.sum(a & ~b)), int(np.sum(~a & b))


def resample_counts(generator: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """Multiplicities of ``resamples`` draws of ``n`` items with replacement, shape (resamples, n)."""
    if n < 1:
        raise ValueError("nothing to resample: no items")
    draws = generator.integers(0, n, size=(resamples, n))
    offsets = np.arange(resamples)[:, None] * n
    return np.bincount((draws + offsets).ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


def weighted_mean(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of per-item ``values`` under each row of multiplicities ``weights`` (resamples × n)."""
    return weights @ np.asarray(values, dtype=float) / weights.sum(axis=1)


def weighted_macro_f1(weights: np.ndarray, predicted: np.ndarray, gold: np.ndarray, n_labels: int) -> np.ndarray:
    """Macro-F1 ``mean_k 2·TP_k / (#predicted_k + #gold_k)`` under each row of ``weights``.

    Labels are integer codes below ``n_labels``; the mean runs over the labels that occur (as a prediction or a
    gold label) in that resample, as :func:`adamergex.evaluation.metrics.macro_f1` does.
    """
    predicted, gold = np.asarray(predicted), np.asarray(gold)
    labels = np.arange(n_labels)
    hits = ((predicted == gold)[:, None] & (gold[:, None] == labels)).astype(float)
    support = (predicted[:, None] == labels).astype(float) + (gold[:, None] == labels).astype(float)
    true_positive, counted = weights @ hits, weights @ support
    present = counted > 0
    f1 = np.divide(2 * true_positive, counted, out=np.zeros_like(counted), where=present)
    return f1.sum(axis=1) / present.sum(axis=1)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its percentile-bootstrap interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class CrossedBootstrap:
    """Per-stratum and pooled estimates (pooled: the unweighted mean over strata)."""

    strata: list[Estimate]
    pooled: Estimate


def _interval(value: float, draws: np.ndarray, confidence: float) -> Estimate:
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return Estimate(float(value), float(low), float(high))


def crossed_bootstrap(
    cells: Sequence[Sequence[Scorer]],
    sizes: Sequence[int],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    shared_items: bool = False,
) -> CrossedBootstrap:
    """Bootstrap a score (or a paired difference) over items within each stratum, crossed with seeds.

    ``cells[l][s]`` scores stratum ``l`` (a language) under training seed ``s`` from item multiplicities; every
    stratum has the same number of seeds. The estimate of stratum ``l`` is ``mean_s cells[l][s](1)``; the pooled
    estimate is the mean over strata. Each resample draws the seeds with replacement and, independently, the
    items of each stratum with replacement (``shared_items``: one draw for all strata, for strata whose items are
    translations of one another and so must move together); the same item draw serves every seed, since the
    items are the same under every seed. With one seed this is the ordinary (paired) item bootstrap.
    """
    if not cells or len(cells) != len(sizes):
        raise ValueError("need one list of seed scorers per stratum and one size per stratum")
    n_seeds = len(cells[0])
    if n_seeds == 0 or any(len(row) != n_seeds for row in cells):
        raise ValueError("every stratum needs a scorer for each seed")
    if shared_items and len(set(sizes)) != 1:
        raise ValueError("shared item draws need strata of equal size")
    generator = np.random.default_rng(seed)
    seed_weights = np.ones((resamples, 1)) if n_seeds == 1 else resample_counts(generator, n_seeds, resamples)
    shared = resample_counts(generator, sizes[0], resamples) if shared_items else None
    strata, pooled_value, pooled_draws = [], 0.0, np.zeros(resamples)
    for row, size in zip(cells, sizes, strict=True):
        weights = shared if shared is not None else resample_counts(generator, size, resamples)
        ones = np.ones((1, size))
        value = float(np.mean([scorer(ones)[0] for scorer in row]))
        draws = np.asarray(sum(seed_weights[:, s] * scorer(weights) for s, scorer in enumerate(row)) / n_seeds)
        strata.append(_interval(value, draws, confidence))
        pooled_value += value / len(cells)
        pooled_draws += draws / len(cells)
    return CrossedBootstrap(strata, _interval(pooled_value, pooled_draws, confidence))


def seed_spread(values: Sequence[float]) -> float | None:
    """Sample standard deviation across seeds (``None`` with fewer than two seeds)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None
