"""The published results cannot drift from their data: each folder under docs/results that holds a
predictions.csv (the demo's, the MultiEmo benchmark's) rebuilds byte-identically from the predictions.csv and
records.json committed beside it, and its accuracies and McNemar tests are recomputed here independently of the
report code, from the CSV alone."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from math import comb
from pathlib import Path

import pytest

from adamergex.pipeline.report import write_report

RESULTS = Path(__file__).resolve().parents[3] / "docs" / "results"
PUBLISHED = sorted({path.parent for path in RESULTS.rglob("predictions.csv")})


def test_the_demo_and_the_benchmark_are_published() -> None:
    assert RESULTS in PUBLISHED and RESULTS / "multiemo" in PUBLISHED


@pytest.fixture(params=PUBLISHED, ids=lambda path: str(path.relative_to(RESULTS.parent)))
def published(request: pytest.FixtureRequest) -> Path:
    return request.param


def test_published_tables_are_recomputed_from_the_committed_predictions(published: Path, tmp_path: Path) -> None:
    rebuilt = write_report(published, tmp_path / "rebuilt")
    for name in ("results.md", "results.csv", "results.json"):
        assert (rebuilt / name).read_text() == (published / name).read_text(), name


def _cells(folder: Path) -> dict[tuple, dict[str, bool]]:
    """(task, kind, method, lang, seed, t, selection) → item id → right (multiple-choice rows only)."""
    cells: dict[tuple, dict[str, bool]] = defaultdict(dict)
    with open(folder / "predictions.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if not row["gold"].lstrip("-").isdigit():
                continue  # a generation task: exact match is not recomputed here
            key = (row["task"], row["kind"], row["method"], row["lang"], int(row["seed"]), row["t"], row["t_selection"])
            cells[key][row["item_id"]] = row["gold"] == row["prediction"]
    return cells


def _matching(cells: dict[tuple, dict[str, bool]], task: str, kind: str, variant: dict, lang: str) -> dict[int, dict]:
    """The seeds' items of a report row's variant: its method and selection (and t, for a fixed t)."""
    out = {}
    for (c_task, c_kind, method, c_lang, seed, t, selection), items in cells.items():
        if (c_task, c_kind, method, c_lang) != (task, kind, variant["method"], lang):
            continue
        if selection != variant["selection"]:
            continue
        if selection == "fixed" and float(t) != variant["t"]:
            continue
        out[seed] = items
    return out


def _variants(results: dict) -> dict[tuple, dict]:
    return {
        (row["task"], row["adapter"], row["variant"]): {
            "method": row["method"],
            "selection": row["selection"],
            "t": row["t"],
        }
        for row in results["scores"]
    }


def test_every_published_accuracy_is_the_mean_over_seeds_of_right_answers(published: Path) -> None:
    results = json.loads((published / "results.json").read_text())
    cells = _cells(published)
    checked = 0
    for row in results["scores"]:
        if row["metric"] != "accuracy" or row["lang"] == "pooled":
            continue
        variant = {"method": row["method"], "selection": row["selection"], "t": row["t"]}
        seeds = _matching(cells, row["task"], row["adapter"], variant, row["lang"])
        assert sorted(seeds) == row["seeds"], row["variant"]
        per_seed = [sum(items.values()) / len(items) for _, items in sorted(seeds.items())]
        assert row["value"] == pytest.approx(sum(per_seed) / len(per_seed), abs=1e-12), (row["variant"], row["lang"])
        assert row["n"] == len(next(iter(seeds.values())))
        checked += 1
    assert checked > 0


def test_every_published_mcnemar_test_is_recounted_from_the_items(published: Path) -> None:
    results = json.loads((published / "results.json").read_text())
    cells, variants = _cells(published), _variants(results)
    checked = 0
    for comparison in results["comparisons"]:
        if comparison["metric"] != "accuracy" or comparison["discordant"] is None:
            continue
        task, kind = comparison["task"], comparison["adapter"]
        first, second = variants[task, kind, comparison["variant"]], variants[task, kind, comparison["reference"]]
        if comparison["lang"] == "pooled":
            langs = sorted(
                {c["lang"] for c in results["comparisons"] if c["lang"] != "pooled" and _same(c, comparison)}
            )
        else:
            langs = [comparison["lang"]]
        b = c = 0
        for lang in langs:
            ours, theirs = _matching(cells, task, kind, first, lang), _matching(cells, task, kind, second, lang)
            for seed in sorted(set(ours) & set(theirs)):
                for item, right in ours[seed].items():
                    other = theirs[seed][item]
                    b, c = b + (right and not other), c + (other and not right)
        assert [b, c] == comparison["discordant"], (comparison["variant"], comparison["reference"], comparison["lang"])
        n = b + c
        p = 1.0 if n == 0 else min(1.0, 2 * sum(comb(n, i) for i in range(min(b, c) + 1)) / 2**n)
        assert comparison["p_value"] == pytest.approx(p, rel=1e-12)
        checked += 1
    assert checked > 0


def _same(a: dict, b: dict) -> bool:
    return all(a[key] == b[key] for key in ("task", "adapter", "metric", "variant", "reference"))
