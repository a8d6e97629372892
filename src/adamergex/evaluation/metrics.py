"""Metrics with bootstrap intervals: accuracy, macro-F1, SQuAD exact match / token F1, ROUGE-L.

Every metric is a function of per-item predictions and references; :func:`score_with_interval` adds the
number of items and a percentile-bootstrap 95% interval (items resampled with replacement, a seeded
NumPy generator, so the same inputs and seed give the same interval).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import regex

from adamergex.errors import AdamergexError

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)

# Scripts written without spaces between words: every character is a token.
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
# Everything else: maximal runs of letters, combining marks and digits (marks keep Devanagari, Arabic
# vowel signs etc. inside their word).
_ROUGE_TOKEN = regex.compile(rf"[{_UNSPACED}]|[[\p{{L}}\p{{M}}\p{{N}}]--[{_UNSPACED}]]+", regex.VERSION1)


@dataclass(frozen=True)
class MetricValue:
    """A metric's point estimate over ``n`` items with its bootstrap interval ``[low, high]``."""

    value: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def accuracy(predictions: Sequence[object], references: Sequence[object]) -> float:
    """Fraction of items whose prediction equals the reference."""
    _check_lengths(predictions, references)
    return float(np.mean([p == r for p, r in zip(predictions, references, strict=True)]))


def macro_f1(predictions: Sequence[object], references: Sequence[object]) -> float:
    """Unweighted mean over labels of F1 = 2·TP / (2·TP + FP + FN) = 2·TP / (#predicted + #gold).

    Labels are those that occur as a prediction or a reference; a label that is predicted but never
    correct scores 0 (as scikit-learn's ``f1_score(average="macro", zero_division=0)``).
    """
    _check_lengths(predictions, references)
    predicted, gold, n_labels = _label_codes(predictions, references)
    return _macro_f1_codes(predicted, gold, n_labels)


def _label_codes(predictions: Sequence[object], references: Sequence[object]) -> tuple[np.ndarray, np.ndarray, int]:
    codes: dict[object, int] = {}
    predicted = np.array([codes.setdefault(label, len(codes)) for label in predictions], dtype=np.int64)
    gold = np.array([codes.setdefault(label, len(codes)) for label in references], dtype=np.int64)
    return predicted, gold, len(codes)


def _macro_f1_codes(predicted: np.ndarray, gold: np.ndarray, n_labels: int) -> float:
    true_positive = np.bincount(gold[predicted == gold], minlength=n_labels)
    support = np.bincount(predicted, minlength=n_labels) + np.bincount(gold, minlength=n_labels)
    present = support > 0
    return float(np.mean(2 * true_positive[present] / support[present]))


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop ASCII punctuation and English articles, collapse spaces."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, references: str | Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference (best over references), else 0.0."""
    return max(float(normalize_answer(prediction) == normalize_answer(ref)) for ref in _as_list(references))


def token_f1(prediction: str, references: str | Sequence[str]) -> float:
    """SQuAD token F1 (bag of whitespace tokens after normalisation), best over references.

    Two empty answers score 1; one empty answer scores 0.
    """
    return max(_token_f1(prediction, ref) for ref in _as_list(references))


def _token_f1(prediction: str, reference: str) -> float:
    predicted = normalize_answer(prediction).split()
    gold = normalize_answer(reference).split()
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def rouge_tokenize(text: str) -> list[str]:
    """Lower-cased tokens for ROUGE in any script.

    Characters of scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar, Tibetan) are one
    token each; elsewhere a token is a maximal run of letters, combining marks and digits (Unicode
    categories L, M, N). Punctuation and spaces separate tokens. The default ``rouge_score`` tokenizer
    keeps only ``[a-z0-9]`` and so scores every non-Latin text as empty.
    """
    return _ROUGE_TOKEN.findall(text.lower())


def _lcs_length(first: Sequence[str], second: Sequence[str]) -> int:
    previous = [0] * (len(second) + 1)
    for token in first:
        current = [0]
        for index, other in enumerate(second):
            current.append(previous[index] + 1 if token == other else max(previous[index + 1], current[-1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, references: str | Sequence[str]) -> float:
    """ROUGE-L F1 over :func:`rouge_tokenize` tokens, best over references.

    With L the longest common subsequence: P = L / |prediction|, R = L / |reference|, F = 2PR / (P + R).
    """
    predicted = rouge_tokenize(prediction)
    best = 0.0
    for reference in _as_list(references):
        gold = rouge_tokenize(reference)
        common = _lcs_length(predicted, gold) if predicted and gold else 0
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def _as_list(references: str | Sequence[str]) -> list[str]:
    listed = [references] if isinstance(references, str) else list(references)
    if not listed:
        raise AdamergexError("no reference answer given; each item needs at least one")
    return listed


def _check_lengths(predictions: Sequence[object], references: Sequence[object]) -> None:
    if len(predictions) != len(references):
        raise AdamergexError(f"{len(predictions)} predictions but {len(references)} references; they must pair up")
    if not predictions:
        raise AdamergexError("no items to score; the evaluated split is empty")


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(indices)`` over ``n`` items.

    Each resample draws ``n`` item indices with replacement; the interval is the ``(1 ± confidence) / 2``
    quantiles of the statistic over the resamples.
    """
    if n < 1:
        raise AdamergexError("no items to score; the evaluated split is empty")
    generator = np.random.default_rng(seed)
    draws = generator.integers(0, n, size=(resamples, n))
    values = np.array([statistic(indices) for indices in draws])
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def mean_with_interval(
    per_item: Sequence[float], *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> MetricValue:
    """Mean of per-item scores (accuracy, exact match, F1, ROUGE-L) with its bootstrap interval."""
    values = np.asarray(per_item, dtype=float)
    if values.size == 0:
        raise AdamergexError("no items to score; the evaluated split is empty")
    generator = np.random.default_rng(seed)
    means = values[generator.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return MetricValue(float(values.mean()), float(low), float(high), int(values.size), confidence)


def macro_f1_with_interval(
    predictions: Sequence[object],
    references: Sequence[object],
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MetricValue:
    """Macro-F1 with a bootstrap interval (items resampled, the metric recomputed on each resample)."""
    value = macro_f1(predictions, references)
    predicted, gold, n_labels = _label_codes(predictions, references)
    low, high = bootstrap_interval(
        lambda indices: _macro_f1_codes(predicted[indices], gold[indices], n_labels),
        len(predictions),
        resamples=resamples,
        confidence=confidence,
        seed=seed,
    )
    return MetricValue(value, low, high, len(predictions), confidence)


PER_ITEM_METRICS: dict[str, Callable[[str, str | Sequence[str]], float]] = {
    "exact_match": exact_match,
    "f1": token_f1,
    "rouge_l": rouge_l,
}
