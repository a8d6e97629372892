"""PNG plots of a run: scores per method, paired differences with intervals, and t curves."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adamergex.pipeline.analysis import Comparison, ScoreRow


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    _pyplot().close(figure)
    return path


def method_bars(rows: Sequence[ScoreRow], path: Path, *, title: str, source: str | None = None) -> Path:
    """Grouped bars: one group per language (source first), one bar per variant, 95% interval whiskers."""
    plt = _pyplot()
    langs = sorted({r.lang for r in rows}, key=lambda lang: (lang != source, lang))
    variants = list(dict.fromkeys(r.variant for r in rows))
    by_key = {(r.variant, r.lang): r for r in rows}
    width = 0.8 / max(len(variants), 1)
    figure, axis = plt.subplots(figsize=(max(6, 1.8 * len(langs) + 2), 4))
    for i, variant in enumerate(variants):
        xs: list[float] = []
        heights: list[float] = []
        errors: list[list[float]] = [[], []]
        for j, lang in enumerate(langs):
            row = by_key.get((variant, lang))
            if row is None:
                continue
            xs.append(j + (i - (len(variants) - 1) / 2) * width)
            heights.append(100 * row.value)
            errors[0].append(100 * (row.value - row.low))
            errors[1].append(100 * (row.high - row.value))
        axis.bar(xs, heights, width=width, yerr=errors, capsize=2, label=variant)
    axis.set_xticks(range(len(langs)), [f"{lang} (source)" if lang == source else lang for lang in langs])
    axis.set_ylabel(f"{rows[0].metric} (%)" if rows else "score")
    axis.set_title(title)
    axis.legend(fontsize=7, ncol=min(len(variants), 4))
    axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def differences(comparisons: Sequence[Comparison], path: Path, *, title: str) -> Path:
    """Each variant's difference to the reference per language and pooled, with its paired 95% interval."""
    plt = _pyplot()
    langs = sorted({c.lang for c in comparisons} - {"pooled"}) + (
        ["pooled"] if any(c.lang == "pooled" for c in comparisons) else []
    )
    variants = list(dict.fromkeys(c.variant for c in comparisons))
    by_key = {(c.variant, c.lang): c for c in comparisons}
    height = 0.8 / max(len(langs), 1)
    figure, axis = plt.subplots(figsize=(7, max(3, 0.5 * len(variants) * max(len(langs), 1) + 1)))
    for j, lang in enumerate(langs):
        ys: list[float] = []
        xs: list[float] = []
        errors: list[list[float]] = [[], []]
        for i, variant in enumerate(variants):
            c = by_key.get((variant, lang))
            if c is None or c.low is None or c.high is None:
                continue
            ys.append(i + (j - (len(langs) - 1) / 2) * height)
            xs.append(100 * c.difference)
            errors[0].append(100 * (c.difference - c.low))
            errors[1].append(100 * (c.high - c.difference))
        axis.errorbar(xs, ys, xerr=errors, fmt="o", capsize=3, label=lang)
    axis.axvline(0.0, color="black", linewidth=0.8)
    axis.set_yticks(range(len(variants)), variants)
    axis.invert_yaxis()
    axis.set_xlabel("difference (points, paired 95% CI)")
    axis.set_title(title)
    axis.legend(fontsize=8)
    axis.grid(axis="x", alpha=0.3)
    return _save(figure, path)


def t_sensitivity(rows: Sequence[ScoreRow], path: Path, *, title: str) -> Path:
    """Test score against a fixed t, one line per method and language, with 95% intervals."""
    plt = _pyplot()
    lines: dict[tuple[str, str], list[ScoreRow]] = defaultdict(list)
    for row in rows:
        lines[(row.method, row.lang)].append(row)
    figure, axis = plt.subplots(figsize=(6, 4))
    for (method, lang), points in sorted(lines.items()):
        points = sorted(points, key=lambda r: r.t or 0.0)
        axis.errorbar(
            [r.t for r in points],
            [100 * r.value for r in points],
            yerr=[[100 * (r.value - r.low) for r in points], [100 * (r.high - r.value) for r in points]],
            marker="o",
            capsize=2,
            label=f"{method} · {lang}",
        )
    axis.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    axis.set_xlabel("t")
    axis.set_ylabel(f"{rows[0].metric} (%)")
    axis.set_title(title)
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return _save(figure, path)


def t_curves(
    curves: dict[str, list[tuple[float, float]]], path: Path, *, title: str, ylabel: str = "selection objective"
) -> Path:
    """The selection objective against t, one line per language (every evaluated point)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4))
    for lang, points in sorted(curves.items()):
        ordered = sorted(points)
        axis.plot([t for t, _ in ordered], [s for _, s in ordered], marker="o", label=lang)
    axis.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    axis.set_xlabel("t")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    return _save(figure, path)
