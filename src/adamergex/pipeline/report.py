"""Results of a run: a markdown table (methods × languages), CSV and JSON, and PNG plots."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ResultRow:
    """One score: a method's metric on one task and target language, with its 95% bootstrap interval."""

    task: str
    adapter: str
    method: str
    lang: str
    metric: str
    value: float
    low: float
    high: float
    n: int
    t: float | None = None
    t_chosen_on: str | None = None
    seed: int = 0
    protocol: str = "harness"
    split: str = "test"


def _cell(value: float, low: float, high: float) -> str:
    return f"{100 * value:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def group_rows(rows: Sequence[ResultRow]) -> dict[tuple[str, str, str], list[ResultRow]]:
    """Rows by (task, adapter kind, metric): one table and one bar plot each."""
    groups: dict[tuple[str, str, str], list[ResultRow]] = defaultdict(list)
    for row in rows:
        groups[(row.task, row.adapter, row.metric)].append(row)
    return groups


def markdown_tables(rows: Sequence[ResultRow], method_order: Sequence[str]) -> str:
    """One table per (task, adapter kind, metric): methods × languages, ``score [95% CI]`` in percent.

    The best score in each language column is bold; the last column is the unweighted mean over languages.
    """
    out: list[str] = []
    for (task, adapter, metric), group in sorted(group_rows(rows).items()):
        langs = sorted({r.lang for r in group})
        by_key = {(r.method, r.lang): r for r in group}
        methods = [m for m in method_order if any(r.method == m for r in group)]
        best = {lang: max((r.value for r in group if r.lang == lang), default=None) for lang in langs}
        means = {m: [by_key[(m, lang)].value for lang in langs if (m, lang) in by_key] for m in methods}
        best_mean = max((sum(v) / len(v) for v in means.values() if len(v) == len(langs)), default=None)
        n_values = sorted({r.n for r in group})
        out.append(f"### {task} · {adapter} · {metric} (%, 95% bootstrap CI; n = {', '.join(map(str, n_values))})\n")
        out.append("| method | " + " | ".join(langs) + " | mean |")
        out.append("|---" * (len(langs) + 2) + "|")
        for method in methods:
            cells = []
            for lang in langs:
                row = by_key.get((method, lang))
                if row is None:
                    cells.append("–")
                    continue
                text = _cell(row.value, row.low, row.high)
                cells.append(f"**{text}**" if row.value == best[lang] else text)
            values = means[method]
            if len(values) == len(langs):
                mean = sum(values) / len(values)
                mean_text = f"{100 * mean:.1f}"
                cells.append(f"**{mean_text}**" if mean == best_mean else mean_text)
            else:
                cells.append("–")
            label = method
            ts = sorted({r.t for r in group if r.method == method and r.t is not None})
            if ts:
                label += f" (t = {', '.join(f'{t:g}' for t in ts)})"
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def write_tables(rows: Sequence[ResultRow], folder: Path, method_order: Sequence[str]) -> dict[str, Path]:
    """Write results.md, results.csv and results.json into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"md": folder / "results.md", "csv": folder / "results.csv", "json": folder / "results.json"}
    paths["md"].write_text(markdown_tables(rows, method_order))
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(ResultRow.__dataclass_fields__))
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
    paths["json"].write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return paths


def plot_t_curves(curves: dict[str, list[tuple[float, float]]], path: Path, *, title: str, ylabel: str) -> Path:
    """Score against t, one line per language (points sorted by t)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for lang, points in sorted(curves.items()):
        ordered = sorted(points)
        axis.plot([t for t, _ in ordered], [100 * s for _, s in ordered], marker="o", label=lang)
    axis.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    axis.set_xlabel("t")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_method_bars(rows: Sequence[ResultRow], path: Path, method_order: Sequence[str], *, title: str) -> Path:
    """Grouped bars: one group per language, one bar per method, with 95% interval whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = sorted({r.lang for r in rows})
    methods = [m for m in method_order if any(r.method == m for r in rows)]
    by_key = {(r.method, r.lang): r for r in rows}
    width = 0.8 / max(len(methods), 1)
    figure, axis = plt.subplots(figsize=(max(6, 1.6 * len(langs) + 2), 4))
    for i, method in enumerate(methods):
        xs, heights, errors = [], [], [[], []]
        for j, lang in enumerate(langs):
            row = by_key.get((method, lang))
            if row is None:
                continue
            xs.append(j + (i - (len(methods) - 1) / 2) * width)
            heights.append(100 * row.value)
            errors[0].append(100 * (row.value - row.low))
            errors[1].append(100 * (row.high - row.value))
        axis.bar(xs, heights, width=width, yerr=errors, capsize=2, label=method)
    axis.set_xticks(range(len(langs)), langs)
    axis.set_ylabel(f"{rows[0].metric} (%)" if rows else "score")
    axis.set_title(title)
    axis.legend(fontsize=8, ncol=min(len(methods), 4))
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def diagnostics_markdown(summaries: dict[str, dict[str, Any]]) -> str:
    """The assumption check per target language: cosine and norm ratio of the two language gaps."""
    if not summaries:
        return ""
    lines = [
        "### Language-gap alignment (ΔW(task, tgt) − ΔW(task, src) vs ΔW(Rt) − ΔW(Rs), per module)\n",
        "| language | modules | cosine mean | cosine median | norm ratio median |",
        "|---|---|---|---|---|",
    ]
    for lang, s in sorted(summaries.items()):
        lines.append(
            f"| {lang} | {s['modules']} | {s['cosine_mean']:.3f} | {s['cosine_median']:.3f} | "
            f"{s['norm_ratio_median']:.3f} |"
        )
    return "\n".join(lines) + "\n"
