"""How long a task's texts are in tokens, and how many a ``max_text_tokens`` limit would cut.

Lengths are of the task's long text field (:attr:`Task.text_field`) before any cut, tokenised without special
tokens. Quantiles are nearest-rank: the q-quantile of n sorted lengths is the ``ceil(q · n)``-th smallest
(p90 is the smallest length that at least 90% of the items do not exceed); the median is the usual one
(mean of the two middle values when n is even).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from adamergex.data.tasks import TaskError, get_task


@dataclass(frozen=True)
class LengthStats:
    """Token-length distribution of one split.

    Attributes:
        items: number of texts.
        min, median, p90, max, mean: of the lengths in tokens.
        max_text_tokens: the limit the ``cut`` count refers to (None: no limit).
        cut: texts longer than ``max_text_tokens`` (0 without a limit).
    """

    items: int
    min: int
    median: float
    p90: int
    max: int
    mean: float
    max_text_tokens: int | None
    cut: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)


def nearest_rank(sorted_values: list[int], q: float) -> int:
    """The nearest-rank ``q``-quantile of ascending ``sorted_values`` (non-empty, 0 < q <= 1)."""
    return sorted_values[max(math.ceil(q * len(sorted_values)), 1) - 1]


def length_stats(lengths: list[int], max_text_tokens: int | None = None) -> LengthStats:
    """Summary of ``lengths`` (see the module docstring); an empty list is an error."""
    if not lengths:
        raise TaskError("no texts to measure")
    ordered = sorted(lengths)
    return LengthStats(
        items=len(ordered),
        min=ordered[0],
        median=float(statistics.median(ordered)),
        p90=nearest_rank(ordered, 0.9),
        max=ordered[-1],
        mean=sum(ordered) / len(ordered),
        max_text_tokens=max_text_tokens,
        cut=0 if max_text_tokens is None else sum(1 for length in ordered if length > max_text_tokens),
    )


def token_lengths(texts: list[str], tokenizer: Any) -> list[int]:
    """Tokens per text, without special tokens."""
    if not texts:
        return []
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def task_length_stats(
    task: str,
    lang: str,
    split: str,
    tokenizer: Any,
    *,
    max_text_tokens: int | None = None,
    limit: int | None = None,
    seed: int = 0,
    **source_options: Any,
) -> LengthStats:
    """Token-length distribution of ``task``'s text field in ``split`` of ``lang`` (untruncated)."""
    definition = get_task(task)
    if definition.text_field is None:
        raise TaskError(f"task {definition.name!r} has no long text field to measure")
    items = definition.load(lang, split, limit=limit, seed=seed, **source_options)
    texts = [str(item.fields[definition.text_field]) for item in items]
    return length_stats(token_lengths(texts, tokenizer), max_text_tokens)
