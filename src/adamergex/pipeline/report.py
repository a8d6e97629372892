"""The report of a run, rebuilt from ``predictions.csv`` and ``records.json`` (and ``run.json``, the run's wall
and training times, where present): markdown, JSON, CSV and plots.

``results.md`` holds, per task and adapter kind: the scores (methods × languages, the source-language column
beside the targets), the compact "vs Eng-FT" table (paired differences with intervals and McNemar p-values,
the transfer gap and the share of it each method closes), "vs AriMerge", the t chosen per language and seed,
the test sets' label distributions, and the language-gap diagnostic with its null. Every number in the tables
is recomputed here from the per-item predictions (:mod:`adamergex.pipeline.analysis`).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adamergex.errors import AdamergexError
from adamergex.files import atomic_directory
from adamergex.pipeline.analysis import Analysis, Comparison, LabelShift, ScoreRow, analyse
from adamergex.pipeline.methods import BASELINE, METHODS, VERSUS
from adamergex.pipeline.predictions import Scored, read_csv, to_csv
from adamergex.pipeline.training_summary import plot_training_curves, trained_adapters, training_markdown

PREDICTIONS = "predictions.csv"
RECORDS = "records.json"
RUN = "run.json"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.1f}".replace("-", "−")


def _p(p: float | None) -> str:
    if p is None:
        return ""
    return " p<0.001" if p < 0.001 else f" p={p:.3f}"


def _score_cell(row: ScoreRow) -> str:
    spread = f" ± {_pct(row.seed_sd)}" if row.seed_sd is not None else ""
    return f"{_pct(row.value)}{spread} [{_pct(row.low)}, {_pct(row.high)}]"


def _by_table(rows: Sequence[Any]) -> dict[tuple[str, str, str], list[Any]]:
    groups: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row.task, row.adapter, row.metric)].append(row)
    return groups


def score_table(rows: Sequence[ScoreRow], source: str) -> list[str]:
    """Methods × languages for one (task, adapter, metric); best target-language score in bold."""
    langs = sorted({r.lang for r in rows} - {source, "pooled"})
    has_source = any(r.lang == source for r in rows)
    variants = list(dict.fromkeys(r.variant for r in rows))
    cell = {(r.variant, r.lang): r for r in rows}
    best = {lang: max(r.value for r in rows if r.lang == lang) for lang in [*langs, "pooled"] if cell_any(rows, lang)}
    seeds = sorted({s for r in rows for s in r.seeds})
    n_values = sorted({r.n for r in rows if r.lang not in ("pooled", source)})
    spread = "mean ± SD across seeds " if len(seeds) > 1 else ""
    resampled = "items and seeds" if len(seeds) > 1 else "items"
    out = [
        f"#### Scores: {rows[0].metric} (%, {spread}[95% CI resampling {resampled}]; n = "
        f"{', '.join(map(str, n_values))} per language; seeds {', '.join(map(str, seeds))})\n"
    ]
    columns = ([f"{source} (source)"] if has_source else []) + langs + (["mean"] if len(langs) > 1 else [])
    out.append("| method | " + " | ".join(columns) + " |")
    out.append("|---" * (len(columns) + 1) + "|")
    for variant in variants:
        cells = []
        for lang in ([source] if has_source else []) + langs + (["pooled"] if len(langs) > 1 else []):
            row = cell.get((variant, lang))
            if row is None:
                cells.append("–")
                continue
            text = _score_cell(row)
            cells.append(f"**{text}**" if lang in best and row.value == best[lang] and lang != source else text)
        out.append(f"| {variant} | " + " | ".join(cells) + " |")
    return out


def cell_any(rows: Sequence[ScoreRow], lang: str) -> bool:
    return any(r.lang == lang for r in rows)


def comparison_table(comparisons: Sequence[Comparison], gaps: Sequence[Comparison], title: str) -> list[str]:
    """Variants × languages of ``difference [95% CI] p``, with the share of the transfer gap closed."""
    langs = sorted({c.lang for c in comparisons} - {"pooled"})
    pooled = any(c.lang == "pooled" for c in comparisons)
    columns = langs + (["pooled"] if pooled else [])
    gap = {g.lang: g.difference for g in gaps}
    gap_column = bool(gaps) and all(lang in gap for lang in columns) and gap_resolved(gaps, columns[-1])
    cell = {(c.variant, c.lang): c for c in comparisons}
    out = [f"#### {title}\n", "| method | " + " | ".join(columns) + (" | gap closed |" if gap_column else " |")]
    out.append("|---" * (len(columns) + 1 + gap_column) + "|")
    for variant in dict.fromkeys(c.variant for c in comparisons):
        cells = []
        for lang in columns:
            c = cell.get((variant, lang))
            cells.append(
                "–" if c is None else f"{_signed(c.difference)} [{_signed(c.low)}, {_signed(c.high)}]{_p(c.p_value)}"
            )
        if gap_column:
            last = cell.get((variant, columns[-1]))
            share = last.difference / gap[columns[-1]] if last and gap[columns[-1]] else None
            cells.append("–" if share is None else f"{100 * share:.0f}%")
        out.append(f"| {variant} | " + " | ".join(cells) + " |")
    return out


def gap_resolved(gaps: Sequence[Comparison], lang: str) -> bool:
    """Whether Eng-FT's transfer gap in ``lang`` (or ``pooled``) is positive with its interval above 0: a share
    of a gap that may be zero or negative is noise, not a result."""
    g = next((g for g in gaps if g.lang == lang), None)
    return g is not None and g.difference > 0 and (g.low is None or g.low > 0)


def gap_line(gaps: Sequence[Comparison], source: str) -> str:
    parts = []
    for g in gaps:
        interval = "" if g.low is None else f" [{_signed(g.low)}, {_signed(g.high)}]"
        parts.append(f"{g.lang} {_signed(g.difference)}{interval}")
    last = "pooled" if any(g.lang == "pooled" for g in gaps) else gaps[-1].lang
    baseline = METHODS[BASELINE].display
    reading = (
        f". *gap closed* = the method's difference to {baseline} divided by this gap (last column's languages)."
        if gap_resolved(gaps, last)
        else f". No *gap closed* column: the {last} gap's interval reaches 0 or below, so a share of it is not "
        "resolved."
    )
    return (
        f"Transfer gap of {baseline} ({source} − target, points, paired by translated item): "
        + "; ".join(parts)
        + reading
    )


def chosen_t_table(chosen: Sequence[dict[str, Any]]) -> list[str]:
    langs = sorted({c["lang"] for c in chosen})
    cells: dict[tuple[str, str], list[str]] = defaultdict(list)
    for c in sorted(chosen, key=lambda c: c["seed"]):
        cells[(c["variant"], c["lang"])].append(f"{c['t']:g} (seed {c['seed']})")
    out = ["#### t chosen per language and seed\n", "| method | " + " | ".join(langs) + " |"]
    out.append("|---" * (len(langs) + 1) + "|")
    for variant in dict.fromkeys(c["variant"] for c in chosen):
        out.append(
            f"| {variant} | " + " | ".join(", ".join(cells.get((variant, lang), ["–"])) for lang in langs) + " |"
        )
    return out


def label_shift_table(shifts: Sequence[LabelShift], labels: Sequence[str], source: str) -> list[str]:
    """Variants × languages of the predicted-vs-gold total-variation distance, with the most over-predicted
    label and its excess share."""
    langs = sorted({x.lang for x in shifts}, key=lambda lang: (lang != source, lang))
    cell = {(x.variant, x.lang): x for x in shifts}
    out = [
        "#### Predicted labels vs gold: total-variation distance (%, counts pooled over seeds) and the most "
        "over-predicted label (its predicted − gold share, points)\n",
        "| method | " + " | ".join(f"{lang} (source)" if lang == source else lang for lang in langs) + " |",
        "|---" * (len(langs) + 1) + "|",
    ]
    for variant in dict.fromkeys(x.variant for x in shifts):
        cells = []
        for lang in langs:
            x = cell.get((variant, lang))
            if x is None:
                cells.append("–")
                continue
            excess = [p / sum(x.predicted) - g / sum(x.gold) for p, g in zip(x.predicted, x.gold, strict=True)]
            top = max(range(len(excess)), key=lambda i: excess[i])
            name = labels[top] if top < len(labels) else str(top)
            cells.append(f"{100 * x.distance:.1f} ({name} {_signed(excess[top])})")
        out.append(f"| {variant} | " + " | ".join(cells) + " |")
    return out


def label_table(counts: dict[str, list[int]], labels: Sequence[str], majority: dict[str, Any]) -> list[str]:
    width = max([len(labels), *(len(c) for c in counts.values())])
    names = [labels[i] if i < len(labels) else str(i) for i in range(width)]
    out = [
        "#### Test-set labels (% of items) and the majority class\n",
        "| language | n | " + " | ".join(names) + " |",
        "|---" * (width + 2) + "|",
    ]
    for lang, row in counts.items():
        row = row + [0] * (width - len(row))
        total = sum(row)
        out.append(f"| {lang} | {total} | " + " | ".join(f"{100 * c / total:.1f}" for c in row) + " |")
    for key, value in sorted(majority.items()):
        label = value["label"]
        name = names[label] if label < len(names) else str(label)
        out.append(
            f"\nMajority class of the training split ({key}): **{name}** "
            f"({value['count']} of {value['n']} training items)."
        )
    return out


def _cosine(value: float) -> str:
    """A cosine with the digits that matter: random directions in 640 × 2048 matrices give ~10⁻³."""
    return f"{value:.3f}" if abs(value) >= 0.01 else f"{value:.1e}"


def diagnostics_markdown(diagnostics: dict[str, dict[str, Any]]) -> str:
    """The assumption check with its null: random directions, and the replicate (noise-floor) cosine."""
    alignment = {k: v for k, v in diagnostics.items() if v.get("type", "alignment") == "alignment" and v}
    stability = {k: v for k, v in diagnostics.items() if v.get("type") == "reference_stability"}
    task_stability = {k: v for k, v in diagnostics.items() if v.get("type") == "task_stability"}
    cross = {k: v for k, v in diagnostics.items() if v.get("type") == "cross"}
    lines: list[str] = []
    if alignment:
        lines += [
            "### Language-gap alignment: gap(task) = target-ft − T vs gap(ref) = Rt − Rs, cosine per module\n",
            "| adapter · language · seed | modules | cosine mean | random-direction null (mean ± 2 SD) | "
            "replicate cosine of gap(ref) | replicate cosine of gap(task) | norm ratio median | reading |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key, s in sorted(alignment.items()):
            adapter, lang = s.get("adapter", key.split("/")[1]), s.get("lang", key.split("/")[2])
            ref = _replicate(stability, adapter, lang)
            task = _replicate(task_stability, adapter, lang, s.get("task"))
            null = s.get("null_sd_of_mean")
            null_text = f"0 ± {_cosine(2 * null)}" if null is not None else "–"
            reading = _reading(s["cosine_mean"], null, ref, task)
            lines.append(
                f"| {key} | {s['modules']} | {_cosine(s['cosine_mean'])} | {null_text} | {_fmt(ref)} | "
                f"{_fmt(task)} | {s['norm_ratio_median']:.3f} | {reading} |"
            )
        lines.append("")
    if stability and not alignment:
        lines += [
            "### Reference-gap stability across seeds (cosine of Rt − Rs, per module)\n",
            "| adapter · language | seeds | modules | cosine mean | random-direction null (± 2 SD) |",
            "|---|---|---|---|---|",
        ]
        for s in stability.values():
            lines.append(
                f"| {s['adapter']} · {s['lang']} | {s['seeds']} | {s['modules']} | {_cosine(s['cosine_mean'])} | "
                f"0 ± {_cosine(2 * s['null_sd_of_mean'])} |"
            )
        lines.append("")
    if cross:
        lines += [
            "### LoRA cross merge vs the additive rule: ‖ΔW_cross − ΔW_additive‖ / ‖ΔW_additive‖ per module\n",
            "| task · language · seed · t | modules | median | max |",
            "|---|---|---|---|",
        ]
        for key, s in sorted(cross.items()):
            lines.append(
                f"| {key.removeprefix('cross/')} | {s['modules']} | {s['relative_difference_median']:.3g} | "
                f"{s['relative_difference_max']:.3g} |"
            )
        lines.append("")
    return "\n".join(lines)


def _replicate(stability: dict[str, dict[str, Any]], adapter: str, lang: str, task: str | None = None) -> float | None:
    values = [
        s["cosine_mean"]
        for s in stability.values()
        if s["adapter"] == adapter and s["lang"] == lang and (task is None or s.get("task") == task)
    ]
    return sum(values) / len(values) if values else None


def _fmt(value: float | None) -> str:
    return "–" if value is None else _cosine(value)


def _reading(cosine: float, null_sd: float | None, reference: float | None, task: float | None) -> str:
    """Read the cosine only against its null: random directions, then what replicates reach."""
    if null_sd is not None and abs(cosine) <= 2 * null_sd:
        return "within the random-direction null"
    if reference is None or task is None or reference <= 0 or task <= 0:
        return "above random; no replicate cosine to compare with"
    ceiling = (reference * task) ** 0.5
    return f"{100 * cosine / ceiling:.0f}% of the replicate ceiling √(ref · task) = {ceiling:.3f}"


def _wall_time_line(facts: dict[str, Any]) -> str:
    """The run's wall time; when it found steps in the cache, says so: their compute is not in that time."""
    minutes = facts["wall_time_s"] / 60
    log = facts.get("log") or {}
    executed, cached = len(log.get("executed", [])), len(log.get("cached", []))
    if not cached:
        return f"Wall time of this run: {minutes:.1f} min.\n"
    return (
        f"Wall time of this run: {minutes:.1f} min, computing {executed} steps and finding {cached} in the step "
        "cache (earlier runs' compute, not in that time).\n"
    )


def render_markdown(analysis: Analysis, records: dict[str, Any], facts: dict[str, Any] | None = None) -> str:
    """``results.md`` from an :class:`Analysis`, the run's records (header, notes, diagnostics) and its
    ``run.json`` facts (wall time, training times), where known."""
    info, facts = records["info"], facts or {}
    source = info["source_lang"]
    out = [f"# Results: {info.get('name', 'experiment')}\n"]
    if info.get("header"):
        out.append(info["header"] + "\n")
    if facts.get("wall_time_s") is not None:
        out.append(_wall_time_line(facts))
    learned = training_markdown(trained_adapters(records.get("training", {}), facts.get("training_time_s", {})))
    if learned:
        out.append(learned)
    scores, comparisons, gaps = _by_table(analysis.scores), _by_table(analysis.comparisons), _by_table(analysis.gaps)
    for task, adapter in dict.fromkeys((t, a) for t, a, _ in scores):
        out.append(f"## {task} · {adapter}\n")
        metrics = info["tasks"][task]["metrics"]
        for metric in metrics:
            out += [*score_table(scores[(task, adapter, metric)], source), ""]
        for metric in metrics:
            rows = [c for c in comparisons.get((task, adapter, metric), []) if c.reference == BASELINE]
            if rows:
                what = "exact McNemar p" if rows[0].discordant is not None else "no McNemar test: not right/wrong"
                title = f"vs {METHODS[BASELINE].display}: {metric} difference (points; paired 95% CI; {what})"
                out += [*comparison_table(rows, gaps.get((task, adapter, metric), []), title), ""]
                if gaps.get((task, adapter, metric)):
                    out += [gap_line(gaps[(task, adapter, metric)], source), ""]
        for metric, other in itertools.product(metrics[:1], VERSUS):
            rows = [c for c in comparisons.get((task, adapter, metric), []) if c.reference.startswith(other)]
            if rows:
                title = f"vs {METHODS[other].display}: {metric} difference (points; paired 95% CI; exact McNemar p)"
                out += [*comparison_table(rows, [], title), ""]
        for metric in metrics[:1]:
            rows = [
                c
                for c in comparisons.get((task, adapter, metric), [])
                if c.reference != BASELINE and not c.reference.startswith(VERSUS)
            ]
            for reference in dict.fromkeys(c.reference for c in rows):
                title = (
                    f"Reference-domain ablation vs {reference} (the same merge on the run's own reference "
                    f"adapters): {metric} difference (points; paired 95% CI; exact McNemar p)"
                )
                out += [*comparison_table([c for c in rows if c.reference == reference], [], title), ""]
        shifts = [x for x in analysis.label_shift if x.task == task and x.adapter == adapter]
        if shifts:
            out += [*label_shift_table(shifts, info["tasks"][task].get("labels", []), source), ""]
        chosen = [c for c in analysis.chosen_t if c["task"] == task and c["adapter"] == adapter]
        if chosen:
            out += [*chosen_t_table(chosen), ""]
    for task, counts in analysis.label_counts.items():
        majority = {k: v for k, v in info.get("majority", {}).items() if k.startswith(f"{task}/")}
        out += [f"## {task}: labels\n", *label_table(counts, info["tasks"][task].get("labels", []), majority), ""]
    diagnostics = diagnostics_markdown(records.get("diagnostics", {}))
    if diagnostics:
        out += ["## The assumption behind the method\n", diagnostics]
    notes = [*info.get("selections", {}).values(), *dict.fromkeys(records.get("notes", []))]
    if notes:
        out += ["Notes:\n", *(f"- {n}" for n in notes), ""]
    return "\n".join(out)


def _scores_csv(rows: Sequence[ScoreRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(ScoreRow.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(asdict(row))
    return buffer.getvalue()


def load_run(folder: Path) -> tuple[list[Scored], dict[str, Any]]:
    """The per-item predictions and the records of a finished run (or of a published results folder)."""
    records_path, predictions_path = folder / RECORDS, folder / PREDICTIONS
    for path in (records_path, predictions_path):
        if not path.is_file():
            raise AdamergexError(f"{folder} has no {path.name} (expected the folder of a finished `adamergex run`)")
    try:
        records = json.loads(records_path.read_text())
        info = records["info"]
        kinds = {task: value["task_kind"] for task, value in info["tasks"].items()}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise AdamergexError(f"{records_path} is not a records file of this version ({error})") from None
    return read_csv(predictions_path, kinds), records


def load_facts(folder: Path, records: dict[str, Any]) -> dict[str, Any]:
    """The run's ``run.json`` (wall time, training times, steps); ``{}`` when absent. A records.json written
    before run.json existed holds the times itself, and they are read from there."""
    path = folder / RUN
    if path.is_file():
        try:
            facts: dict[str, Any] = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise AdamergexError(f"{path} is not JSON ({error})") from None
        return facts
    times = {name: v["wall_time_s"] for name, v in records.get("training", {}).items() if "wall_time_s" in v}
    return {"wall_time_s": records.get("wall_time_s"), "training_time_s": times}


def write_report(folder: Path, out: Path | None = None, *, force: bool = True) -> Path:
    """Rebuild the report of the run in ``folder`` into ``out`` (default ``folder/results``), atomically."""
    scored, records = load_run(folder)
    facts = load_facts(folder, records)
    analysis = analyse(scored, records["info"])
    out = out or folder / "results"
    with atomic_directory(out, force=force) as target:
        (target / "results.md").write_text(render_markdown(analysis, records, facts))
        (target / "results.csv").write_text(_scores_csv(analysis.scores))
        payload = {
            "info": records["info"],
            "scores": [asdict(r) for r in analysis.scores],
            "comparisons": [asdict(c) for c in analysis.comparisons],
            "transfer_gap": [asdict(g) for g in analysis.gaps],
            "label_counts": analysis.label_counts,
            "label_shift": [asdict(x) for x in analysis.label_shift],
            "chosen_t": analysis.chosen_t,
            "curves": records.get("curves", {}),
        }
        (target / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False))
        (target / "diagnostics.json").write_text(json.dumps(records.get("diagnostics", {}), indent=2))
        (target / PREDICTIONS).write_bytes(to_csv(scored).encode("utf-8"))
        (target / RECORDS).write_text(json.dumps(records, indent=2, ensure_ascii=False))
        if (folder / RUN).is_file():
            shutil.copyfile(folder / RUN, target / RUN)
        write_plots(analysis, records, target)
    return out


def write_plots(analysis: Analysis, records: dict[str, Any], folder: Path) -> None:
    """Method bars, differences vs Eng-FT with intervals, dev curves of t and test scores against t."""
    from adamergex.pipeline import plots

    source = records["info"]["source_lang"]
    for (task, adapter, metric), rows in _by_table(analysis.scores).items():
        plots.method_bars(
            [r for r in rows if r.lang != "pooled"],
            folder / f"methods_{task}_{adapter}_{metric}.png",
            title=f"{task} · {adapter} · {metric}",
            source=source,
        )
        fixed = [r for r in rows if r.selection == "fixed" and r.lang not in ("pooled",)]
        if len({r.t for r in fixed}) > 1:
            plots.t_sensitivity(
                fixed,
                folder / f"t_test_{task}_{adapter}_{metric}.png",
                title=f"test {metric} against t · {task} · {adapter}",
            )
    for (task, adapter, metric), rows in _by_table(analysis.comparisons).items():
        versus = [c for c in rows if c.reference == BASELINE]
        if versus:
            plots.differences(
                versus,
                folder / f"vs_{BASELINE.replace('-', '')}_{task}_{adapter}_{metric}.png",
                title=f"{metric}: method − {METHODS[BASELINE].display} · {task} · {adapter}",
            )
    for key, curves in records.get("curves", {}).items():
        plots.t_curves(curves, folder / f"t_curve_{key.replace('/', '_')}.png", title=f"t selection · {key}")
    training = records.get("training", {})
    for adapter in sorted({value["adapter"] for value in training.values()}):
        logs = {name: value.get("curve", []) for name, value in training.items() if value["adapter"] == adapter}
        if any(logs.values()):
            plot_training_curves(
                logs, folder / f"training_{adapter}.png", title=f"training and held-out loss · {adapter}"
            )
