"""What the report says, computed from per-item predictions: scores, paired comparisons, the transfer gap.

* **Scores** per method and language, pooled over seeds: the mean over seeds, the spread across seeds, and a
  95% interval from a bootstrap that resamples items and, crossed with them, seeds
  (:func:`~adamergex.evaluation.paired.crossed_bootstrap`); the pooled score is the mean over target languages.
* **Paired comparisons** of every method against Eng-FT (and the merges with a t against AriMerge): the
  difference on the same items, its paired bootstrap interval, and the exact McNemar p-value on the discordant
  pairs, per language and pooled over languages and seeds.
* **The transfer gap**: Eng-FT's source-language score minus its target-language score, paired item by item
  where the test sets are translations of one another.

A *variant* is a method with its way of choosing t: ``adamergex`` (t chosen in the headline setting),
``adamergex (t = 1)`` (fixed), ``adamergex (t: label-free)`` (another selection setting).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adamergex.evaluation.paired import crossed_bootstrap, discordant_pairs, mcnemar_exact, seed_spread
from adamergex.pipeline.methods import BASELINE, METHODS
from adamergex.pipeline.predictions import BINARY_METRICS, Scored, aligned_ids, paired_order, per_item, scorer

SELECTION_ORDER = ("", "source-dev", "unlabelled", "target-dev", "fixed")
SELECTION_SHORT = {"source-dev": "source dev", "target-dev": "target dev, few-shot", "unlabelled": "label-free"}


@dataclass(frozen=True)
class ScoreRow:
    """A variant's metric in one language (or ``pooled`` over the target languages), pooled over seeds."""

    task: str
    adapter: str
    method: str
    variant: str
    lang: str
    metric: str
    value: float
    low: float
    high: float
    n: int
    seeds: tuple[int, ...]
    seed_sd: float | None
    per_seed: tuple[float, ...]
    t: float | None = None
    selection: str = ""


@dataclass(frozen=True)
class Comparison:
    """``variant − reference`` on the same items in ``lang`` (or ``pooled``), with interval and McNemar p."""

    task: str
    adapter: str
    metric: str
    variant: str
    reference: str
    lang: str
    difference: float
    low: float | None
    high: float | None
    n: int
    discordant: tuple[int, int] | None = None
    p_value: float | None = None


@dataclass(frozen=True)
class LabelShift:
    """How often ``variant`` predicts each label in ``lang`` beside how often it is the gold label (counts summed
    over seeds), and the total-variation distance between the two distributions (0: every label predicted as
    often as it occurs; 1: disjoint). A merge that moves accuracy by moving this distance acts on label priors."""

    task: str
    adapter: str
    variant: str
    lang: str
    predicted: tuple[int, ...]
    gold: tuple[int, ...]
    distance: float


@dataclass
class Analysis:
    scores: list[ScoreRow] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    gaps: list[Comparison] = field(default_factory=list)
    label_counts: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    label_shift: list[LabelShift] = field(default_factory=list)
    chosen_t: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def variant_name(s: Scored, headline: str) -> str:
    """The row label of ``s``: the method, with t or its selection setting where that tells rows apart."""
    if s.selection == "fixed":
        return f"{s.method} (t = {s.t:g})"
    if s.selection in ("", headline):
        return s.method
    return f"{s.method} (t: {SELECTION_SHORT.get(s.selection, s.selection)})"


def _variant_key(s: Scored, methods: Sequence[str], headline: str) -> tuple:
    method_rank = methods.index(s.method) if s.method in methods else len(methods)
    selection_rank = SELECTION_ORDER.index(s.selection) if s.selection in SELECTION_ORDER else len(SELECTION_ORDER)
    if s.selection == headline:
        selection_rank = -1
    return (method_rank, s.method, selection_rank, s.t if s.selection == "fixed" else 0.0)


Cells = dict[str, dict[int, Scored]]  # lang → seed → items


def group_cells(scored: Sequence[Scored], headline: str, methods: Sequence[str]) -> dict[tuple[str, str, str], Cells]:
    """Scored sets by (task, adapter kind, variant), each as language → seed → items, variants in report order."""
    ordered = sorted(scored, key=lambda s: (s.task, s.kind, _variant_key(s, methods, headline), s.lang, s.seed))
    groups: dict[tuple[str, str, str], Cells] = {}
    for s in ordered:
        groups.setdefault((s.task, s.kind, variant_name(s, headline)), {}).setdefault(s.lang, {})[s.seed] = s
    return groups


def _common_seeds(*cell_maps: dict[int, Scored]) -> list[int]:
    seeds = set(cell_maps[0])
    for cells in cell_maps[1:]:
        seeds &= set(cells)
    return sorted(seeds)


def _shared(cells: Sequence[Scored]) -> bool:
    """Whether the strata's items are translations of one another, item by item (so resampled together)."""
    return len({aligned_ids(c) for c in cells}) == 1


def analyse(scored: Sequence[Scored], info: dict[str, Any], *, resamples: int = 2000, seed: int = 0) -> Analysis:
    """Scores, comparisons, transfer gaps, label counts and chosen t of a run's predictions.

    ``info`` holds ``source_lang``, ``headline`` (the selection setting reported as the method itself),
    ``methods`` (report order) and ``tasks`` (per task: ``metrics``).
    """
    source, headline = info["source_lang"], info.get("headline", "")
    methods = info.get("methods", [])
    groups = group_cells(scored, headline, methods)
    analysis = Analysis()
    options = {"resamples": resamples, "seed": seed}
    for (task, adapter, variant), cells in groups.items():
        for metric in info["tasks"][task]["metrics"]:
            analysis.scores.extend(_score_rows(task, adapter, variant, cells, metric, source, options))
    for (task, adapter, variant), cells in groups.items():
        reference_names = _references(task, adapter, variant, cells, groups, headline)
        for reference in reference_names:
            for metric in info["tasks"][task]["metrics"]:
                analysis.comparisons.extend(
                    _compare(
                        task,
                        adapter,
                        metric,
                        variant,
                        reference,
                        cells,
                        groups[(task, adapter, reference)],
                        source,
                        options,
                    )
                )
        first = next(iter(next(iter(cells.values())).values()))
        if first.method == BASELINE and source in cells:
            for metric in info["tasks"][task]["metrics"]:
                analysis.gaps.extend(_gap(task, adapter, metric, variant, cells, source, options))
        if first.selection not in ("", "fixed"):
            analysis.chosen_t.extend(
                {
                    "task": task,
                    "adapter": adapter,
                    "variant": variant,
                    "lang": s.lang,
                    "seed": s.seed,
                    "t": s.t,
                    "selection": s.selection,
                }
                for lang_cells in cells.values()
                for s in lang_cells.values()
            )
    analysis.label_counts = _label_counts(scored)
    analysis.label_shift = label_shift(groups)
    return analysis


def label_shift(groups: dict[tuple[str, str, str], Cells]) -> list[LabelShift]:
    """Predicted vs gold label distribution of every variant and language of a classification task."""
    out = []
    for (task, adapter, variant), cells in groups.items():
        for lang, by_seed in cells.items():
            runs = list(by_seed.values())
            labels = [v for s in runs for v in (*s.gold, *s.prediction)]
            if not labels or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in labels):
                continue  # generated answers or scores: no label distribution
            width = max(labels) + 1
            predicted = np.sum(
                [np.bincount(np.asarray(s.prediction, dtype=np.int64), minlength=width) for s in runs], 0
            )
            gold = np.sum([np.bincount(np.asarray(s.gold, dtype=np.int64), minlength=width) for s in runs], 0)
            distance = 0.5 * float(np.abs(predicted / predicted.sum() - gold / gold.sum()).sum())
            out.append(
                LabelShift(task, adapter, variant, lang, tuple(predicted.tolist()), tuple(gold.tolist()), distance)
            )
    return out


def _score_rows(
    task: str, adapter: str, variant: str, cells: Cells, metric: str, source: str, options: dict[str, int]
) -> list[ScoreRow]:
    rows = []
    targets = [lang for lang in sorted(cells) if lang != source]
    seeds = _common_seeds(*cells.values())
    for langs, pooled in (([source], False), (targets, True)):
        langs = [lang for lang in langs if lang in cells]
        if not langs or not seeds:
            continue
        strata = [[cells[lang][s] for s in seeds] for lang in langs]
        result = crossed_bootstrap(
            [[scorer(metric, c) for c in row] for row in strata],
            [row[0].n for row in strata],
            shared_items=_shared([row[0] for row in strata]),
            **options,
        )
        sample = strata[0][0]
        t = sample.t if sample.selection == "fixed" else None
        per_lang = [
            (lang, estimate, [_point(metric, c) for c in row], row[0].n)
            for lang, estimate, row in zip(langs, result.strata, strata, strict=True)
        ]
        if pooled and len(langs) > 1:
            per_seed = [float(np.mean([values[i] for _, _, values, _ in per_lang])) for i in range(len(seeds))]
            per_lang.append(("pooled", result.pooled, per_seed, sum(n for *_, n in per_lang)))
        for lang, estimate, values, n in per_lang:
            rows.append(
                ScoreRow(
                    task,
                    adapter,
                    sample.method,
                    variant,
                    lang,
                    metric,
                    estimate.value,
                    estimate.low,
                    estimate.high,
                    n,
                    tuple(seeds),
                    seed_spread(values),
                    tuple(values),
                    t,
                    sample.selection,
                )
            )
    return rows


def _point(metric: str, s: Scored) -> float:
    return float(scorer(metric, s)(np.ones((1, s.n)))[0])


def _references(
    task: str, adapter: str, variant: str, cells: Cells, groups: dict[tuple[str, str, str], Cells], headline: str
) -> list[str]:
    """The variants ``variant`` is compared with: the baseline (Eng-FT), the same merge on the main reference
    adapters for a reference ablation, and the methods of its table entry's ``versus`` (AriMerge for the merges
    with a t) at the matching t selection, else at any."""
    sample = next(iter(next(iter(cells.values())).values()))
    out = []
    if sample.method != BASELINE and (task, adapter, BASELINE) in groups:
        out.append(BASELINE)
    method, _, ablation = sample.method.partition("@")
    if ablation:  # a reference ablation (adamergex@task-text): against the same merge on the main references
        main = variant_name(Scored(task, adapter, method, "", 0, sample.t, sample.selection, (), (), ()), headline)
        if (task, adapter, main) in groups:
            out.append(main)
    spec = METHODS.get(sample.method)
    for other in spec.versus if spec is not None else ():
        matching = variant_name(Scored(task, adapter, other, "", 0, sample.t, sample.selection, (), (), ()), headline)
        for candidate in (matching, other):
            if (task, adapter, candidate) in groups:
                out.append(candidate)
                break
    return out


def _compare(
    task: str,
    adapter: str,
    metric: str,
    variant: str,
    reference: str,
    cells: Cells,
    others: Cells,
    source: str,
    options: dict[str, int],
) -> list[Comparison]:
    langs = [lang for lang in sorted(cells) if lang != source and lang in others]
    seeds = _common_seeds(*(cells[lang] for lang in langs), *(others[lang] for lang in langs)) if langs else []
    if not seeds:
        return []
    pairs, orders = [], []
    for lang in langs:
        row = [(cells[lang][s], others[lang][s]) for s in seeds]
        order = [paired_order(a, b) for a, b in row]
        if any(o is None for o in order):
            continue  # not the same items: no paired comparison
        pairs.append((lang, row))
        orders.append(order)
    if not pairs:
        return []
    scorers = [
        [_difference(metric, a, b, o) for (a, b), o in zip(row, order, strict=True)]
        for (_, row), order in zip(pairs, orders, strict=True)
    ]
    result = crossed_bootstrap(
        scorers, [row[0][0].n for _, row in pairs], shared_items=_shared([row[0][0] for _, row in pairs]), **options
    )
    out, total = [], [0, 0]
    for (lang, row), order, estimate in zip(pairs, orders, result.strata, strict=True):
        discordant = _discordant(metric, row, order)
        if discordant is not None:
            total = [total[0] + discordant[0], total[1] + discordant[1]]
        out.append(
            Comparison(
                task,
                adapter,
                metric,
                variant,
                reference,
                lang,
                estimate.value,
                estimate.low,
                estimate.high,
                row[0][0].n,
                discordant,
                mcnemar_exact(*discordant) if discordant else None,
            )
        )
    if len(pairs) > 1:
        binary = metric in BINARY_METRICS
        out.append(
            Comparison(
                task,
                adapter,
                metric,
                variant,
                reference,
                "pooled",
                result.pooled.value,
                result.pooled.low,
                result.pooled.high,
                sum(row[0][0].n for _, row in pairs),
                (total[0], total[1]) if binary else None,
                mcnemar_exact(*total) if binary else None,
            )
        )
    return out


def _difference(metric: str, first: Scored, second: Scored, order: Sequence[int] | None):
    score_first, score_second = scorer(metric, first), scorer(metric, second, order)
    return lambda weights: score_first(weights) - score_second(weights)


def _discordant(
    metric: str, row: Sequence[tuple[Scored, Scored]], orders: Sequence[Sequence[int] | None]
) -> tuple[int, int] | None:
    """Discordant pairs summed over seeds (None for a metric that is not right/wrong per item)."""
    if metric not in BINARY_METRICS:
        return None
    b = c = 0
    for (first, second), order in zip(row, orders, strict=True):
        right_second = per_item(metric, second)[np.asarray(order)]
        more, fewer = discordant_pairs(per_item(metric, first) > 0.5, right_second > 0.5)
        b, c = b + more, c + fewer
    return b, c


def _gap(
    task: str, adapter: str, metric: str, variant: str, cells: Cells, source: str, options: dict[str, int]
) -> list[Comparison]:
    """Source-language minus target-language score of one variant (Eng-FT): the transfer gap."""
    out = []
    targets = [lang for lang in sorted(cells) if lang != source]
    seeds = _common_seeds(cells[source], *(cells[lang] for lang in targets))
    paired_langs, scorers = [], []
    for lang in targets:
        row, paired = [], True
        for s in seeds:
            first, second = cells[source][s], cells[lang][s]
            position = {item: i for i, item in enumerate(aligned_ids(second))}
            found = [position.get(item) for item in aligned_ids(first)]
            order = [index for index in found if index is not None]
            if len(order) != len(found) or first.n != second.n:
                paired = False
                break
            row.append(_difference(metric, first, second, order))
        if paired and seeds:
            paired_langs.append(lang)
            scorers.append(row)
        elif seeds:
            value = np.mean([_point(metric, cells[source][s]) - _point(metric, cells[lang][s]) for s in seeds])
            out.append(
                Comparison(
                    task,
                    adapter,
                    metric,
                    variant,
                    f"{variant} ({source})",
                    lang,
                    float(value),
                    None,
                    None,
                    cells[lang][seeds[0]].n,
                )
            )
    if scorers:
        result = crossed_bootstrap(scorers, [cells[source][seeds[0]].n] * len(scorers), shared_items=True, **options)
        for lang, estimate in zip(paired_langs, result.strata, strict=True):
            out.append(
                Comparison(
                    task,
                    adapter,
                    metric,
                    variant,
                    f"{variant} ({source})",
                    lang,
                    estimate.value,
                    estimate.low,
                    estimate.high,
                    cells[lang][seeds[0]].n,
                )
            )
        if len(paired_langs) > 1:
            out.append(
                Comparison(
                    task,
                    adapter,
                    metric,
                    variant,
                    f"{variant} ({source})",
                    "pooled",
                    result.pooled.value,
                    result.pooled.low,
                    result.pooled.high,
                    sum(cells[lang][seeds[0]].n for lang in paired_langs),
                )
            )
    return out


def _label_counts(scored: Sequence[Scored]) -> dict[str, dict[str, list[int]]]:
    """Gold label counts of each task's test set per language (classification tasks only)."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(dict)
    for s in scored:
        if s.lang in counts[s.task] or not s.gold or not all(isinstance(g, int) for g in s.gold):
            continue
        counts[s.task][s.lang] = np.bincount(np.asarray(s.gold, dtype=np.int64)).tolist()
    return {task: dict(sorted(langs.items())) for task, langs in counts.items() if langs}
