"""Per-item predictions: what every table of a run is computed from (``predictions.csv``).

One CSV row per scored item: ``task,kind,method,lang,seed,t,item_id,gold,prediction,t_selection``. ``kind`` is
the adapter kind (lora, ia3); ``gold`` and ``prediction`` are label indices for multiple choice, and for
generation the extracted answer and a JSON list of the extracted reference answers; ``t`` is empty for a method
without one; ``t_selection`` says how t was chosen (``fixed``, ``source-dev``, ``target-dev``, ``unlabelled``;
empty without t).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adamergex.errors import AdamergexError
from adamergex.evaluation.metrics import PER_ITEM_METRICS
from adamergex.evaluation.paired import Scorer, weighted_macro_f1, weighted_mean
from adamergex.evaluation.runner import reference_answers

COLUMNS = ("task", "kind", "method", "lang", "seed", "t", "item_id", "gold", "prediction", "t_selection")
BINARY_METRICS = frozenset({"accuracy", "exact_match"})


@dataclass(frozen=True)
class Scored:
    """One evaluation's items: ``method`` (at ``t``, chosen by ``selection``) on one task, kind, language, seed."""

    task: str
    kind: str
    method: str
    lang: str
    seed: int
    t: float | None
    selection: str
    item_ids: tuple[str, ...]
    gold: tuple[Any, ...]
    prediction: tuple[Any, ...]

    @property
    def n(self) -> int:
        return len(self.item_ids)


def from_eval_record(
    record: dict[str, Any],
    *,
    task: str,
    kind: str,
    method: str,
    lang: str,
    seed: int,
    t: float | None = None,
    selection: str = "",
) -> Scored:
    """The items of an evaluation record (``EvalResult.to_json`` with predictions) as a :class:`Scored`."""
    items = record.get("predictions")
    if not items:
        raise AdamergexError(f"the evaluation of {method}/{lang} kept no per-item predictions")
    generation = "answer" in items[0]
    gold = tuple(reference_answers(item["gold"]) if generation else int(item["gold"]) for item in items)
    prediction = tuple(str(item["answer"]) if generation else int(item["prediction"]) for item in items)
    return Scored(task, kind, method, lang, seed, t, selection, tuple(str(i["id"]) for i in items), gold, prediction)


def to_csv(scored: Iterable[Scored]) -> str:
    """The CSV text of ``scored`` (one row per item, :data:`COLUMNS`)."""
    buffer = io.StringIO()
    # Text fields are quoted (numbers are not), so a carriage return inside a generated answer survives.
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(COLUMNS)
    for s in scored:
        t = None if s.t is None else float(s.t)
        for item_id, gold, prediction in zip(s.item_ids, s.gold, s.prediction, strict=True):
            gold_value = json.dumps(gold, ensure_ascii=False) if isinstance(gold, list) else gold
            writer.writerow((s.task, s.kind, s.method, s.lang, s.seed, t, item_id, gold_value, prediction, s.selection))
    return buffer.getvalue()


def read_csv(path: Path, task_kinds: dict[str, str]) -> list[Scored]:
    """Read ``predictions.csv``; ``task_kinds`` maps a task to multiple_choice or generation (how to parse)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:  # keep "\r" inside quoted answers
            text = handle.read()
    except OSError as error:
        raise AdamergexError(f"cannot read {path}: {error.strerror}") from None
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise AdamergexError(f"{path} has columns {reader.fieldnames}; expected {','.join(COLUMNS)}")
    groups: dict[tuple, list[dict[str, str]]] = {}
    for line, row in enumerate(reader, start=2):
        if row["task"] not in task_kinds:
            raise AdamergexError(f"{path} line {line}: task {row['task']!r} is not described by the run's records")
        key = (row["task"], row["kind"], row["method"], row["lang"], row["seed"], row["t"], row["t_selection"])
        groups.setdefault(key, []).append(row)
    out = []
    for (task, kind, method, lang, seed, t, selection), rows in groups.items():
        generation = task_kinds[task] == "generation"
        try:
            gold = tuple(json.loads(r["gold"]) if generation else int(r["gold"]) for r in rows)
            prediction = tuple(r["prediction"] if generation else int(r["prediction"]) for r in rows)
            seed_value, t_value = int(seed), None if t == "" else float(t)
        except (ValueError, json.JSONDecodeError) as error:
            raise AdamergexError(f"{path}: bad value in rows of {method}/{lang}/seed {seed}: {error}") from None
        ids = tuple(r["item_id"] for r in rows)
        out.append(Scored(task, kind, method, lang, seed_value, t_value, selection, ids, gold, prediction))
    return out


def label_codes(values: Sequence[Any]) -> tuple[np.ndarray, int]:
    """Integer codes for labels (integers are their own codes), and the number of codes."""
    if all(isinstance(v, int | np.integer) for v in values):
        codes = np.asarray(values, dtype=np.int64)
        return codes, int(codes.max()) + 1 if codes.size else 0
    table: dict[str, int] = {}
    codes = np.array([table.setdefault(json.dumps(v), len(table)) for v in values], dtype=np.int64)
    return codes, len(table)


def per_item(metric: str, scored: Scored) -> np.ndarray:
    """Per-item scores of a mean-type metric (accuracy, exact_match, f1, rouge_l) for ``scored``."""
    if metric == "accuracy":
        return np.array(
            [
                float(p in g if isinstance(g, list) else p == g)
                for p, g in zip(scored.prediction, scored.gold, strict=True)
            ]
        )
    if metric in PER_ITEM_METRICS:
        function = PER_ITEM_METRICS[metric]
        return np.array([function(p, g) for p, g in zip(scored.prediction, scored.gold, strict=True)])
    raise AdamergexError(
        f"metric {metric!r} is not per item; expected accuracy or one of {', '.join(PER_ITEM_METRICS)}"
    )


def scorer(metric: str, scored: Scored, order: Sequence[int] | None = None) -> Scorer:
    """The :data:`~adamergex.evaluation.paired.Scorer` of ``metric`` on ``scored`` (items in ``order``)."""
    index = np.arange(scored.n) if order is None else np.asarray(order)
    if metric == "macro_f1":
        if any(isinstance(g, list) for g in scored.gold):
            raise AdamergexError("macro_f1 applies to classification tasks only")
        codes, n_labels = label_codes([*scored.prediction, *scored.gold])
        predicted, gold = codes[: scored.n][index], codes[scored.n :][index]
        return lambda weights: weighted_macro_f1(weights, predicted, gold, n_labels)
    values = per_item(metric, scored)[index]
    return lambda weights: weighted_mean(weights, values)


def paired_order(first: Scored, second: Scored) -> list[int] | None:
    """Indices that put ``second``'s items in ``first``'s order, or None when their item sets differ."""
    position = {item: i for i, item in enumerate(second.item_ids)}
    if len(position) != second.n or set(position) != set(first.item_ids) or first.n != second.n:
        return None
    return [position[item] for item in first.item_ids]


def aligned_ids(scored: Scored) -> tuple[str, ...]:
    """Item ids with the language removed (``multiemo/de/test/7`` → ``multiemo/*/test/7``): equal across
    languages when the test sets are translations of one another, item by item."""
    marker = f"/{scored.lang}/"
    return tuple(item.replace(marker, "/*/", 1) for item in scored.item_ids)
