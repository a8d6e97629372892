"""Label-free calibration of multiple-choice scores: batch calibration in log space.

A model — or a merge — can raise one class's score on every item alike: a prior, not evidence about the item.
Batch calibration (Zhou et al. 2023, arXiv 2309.17249) estimates that per-class shift from a batch of
unlabelled inputs and removes it before the argmax. Here, with ``s_i`` the summed log-likelihoods of an
item's choices:

    prior_c = (1/M) Σ_i log softmax(s_i)_c        over M unlabelled inputs (never a dev or test item)
    ŷ = argmax_c (s_c − prior_c)                   for every evaluated item

**Why the mean of log-probabilities.** The model of the bias is additive in log space: ``s_ic = u_ic + b_c``.
The mean of log-scores is equivariant under such shifts (adding ``b_c`` to every item's class c adds exactly
``b_c`` to ``prior_c``), so the calibrated argmax is unchanged by them, whatever the items; the mean of
probabilities (which Zhou et al. write) is not, because each item's softmax renormalises differently, and it
is dominated by the few items where the model is confident. Normalising each item with ``log softmax`` (rather
than averaging the raw summed log-likelihoods) changes the prior only by a constant over classes — the same
predictions — but makes it a readable quantity: ``exp(prior)`` are the geometric-mean class probabilities,
the prior the model holds on the task's inputs.

The arithmetic is float64 with ``math.fsum`` in item order, so a prior does not depend on threads or batching.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from adamergex.errors import AdamergexError
from adamergex.evaluation.loglikelihood import first_argmax
from adamergex.evaluation.runner import EvalResult, classification_metrics

#: Metrics whose scores are not the calibrated ones (per-character scores), left out of a calibrated result.
UNCALIBRATED_METRICS: tuple[str, ...] = ("accuracy_norm",)


def log_softmax(scores: Sequence[float]) -> list[float]:
    """``s_c − log Σ_k exp(s_k)``, in float64, stable for scores of any size."""
    if not scores:
        raise AdamergexError("an item has no choice scores; expected at least one")
    top = max(scores)
    normaliser = top + math.log(math.fsum(math.exp(s - top) for s in scores))
    return [s - normaliser for s in scores]


def _check_widths(scores: Sequence[Sequence[float]], width: int, what: str) -> None:
    for index, item in enumerate(scores):
        if len(item) != width:
            raise AdamergexError(
                f"item {index} has {len(item)} choice scores but {what} has {width}; calibration needs the same "
                "classes on every item"
            )


def estimate_prior(scores: Sequence[Sequence[float]]) -> list[float]:
    """The batch-calibration prior: the mean over items of each item's log-softmax over its choices.

    Args:
        scores: per unlabelled item, one score per choice (summed log-likelihoods); every item has the same
            number of choices, in the same class order.

    Returns:
        ``prior_c = (1/M) Σ_i log softmax(s_i)_c`` per class c.
    """
    if not scores:
        raise AdamergexError("no unlabelled items to estimate a prior from; expected at least one")
    _check_widths(scores, len(scores[0]), "the first item")
    normalised = [log_softmax(item) for item in scores]
    return [math.fsum(item[c] for item in normalised) / len(normalised) for c in range(len(scores[0]))]


def calibrate(scores: Sequence[Sequence[float]], prior: Sequence[float]) -> list[int]:
    """Calibrated predictions: ``argmax_c (s_ic − prior_c)`` per item (the first class on ties)."""
    _check_widths(scores, len(prior), "the prior")
    return [first_argmax([s - p for s, p in zip(item, prior, strict=True)]) for item in scores]


def calibrate_result(
    result: EvalResult,
    prior: Sequence[float],
    *,
    resamples: int = 1000,
    source: Mapping[str, Any] | None = None,
) -> EvalResult:
    """``result`` re-scored with ``prior``: its predictions, correctness and metrics, from its per-item scores.

    No model is run: the stored per-item ``loglikelihoods`` (rounded to 6 decimals, as recorded) minus the prior
    give the calibrated choice, so a published predictions file is enough to reproduce it. The metrics are
    recomputed with the result's seed and ``resamples`` bootstrap resamples; ``accuracy_norm`` (per-character
    scores, which the prior does not describe) is left out. ``calibration`` records the method, the prior and
    ``source`` (what the prior was estimated on: split, item count, fingerprints).
    """
    if result.calibration is not None:
        raise AdamergexError(f"the {result.task}/{result.language} result is calibrated already")
    if not result.predictions or any("loglikelihoods" not in p for p in result.predictions):
        raise AdamergexError(
            f"the {result.task}/{result.language} result has no per-item log-likelihoods; expected a "
            "multiple-choice evaluation with its predictions kept"
        )
    scores = [p["loglikelihoods"] for p in result.predictions]
    predicted = calibrate(scores, prior)
    gold = [int(p["gold"]) for p in result.predictions]
    predictions = [
        {**p, "prediction": c, "correct": c == g} for p, c, g in zip(result.predictions, predicted, gold, strict=True)
    ]
    names = [name for name in result.metrics if name not in UNCALIBRATED_METRICS]
    metrics = classification_metrics(names, resamples, result.seed, predicted=predicted, gold=gold)
    calibration = {"method": "batch", "prior": [float(p) for p in prior], **dict(source or {})}
    return replace(result, metrics=metrics, predictions=predictions, calibration=calibration)
