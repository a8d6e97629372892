"""Report tables and plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from adamergex.pipeline.report import ResultRow, markdown_tables, plot_method_bars, plot_t_curves, write_tables


def _rows() -> list[ResultRow]:
    values = {("base", "de"): 0.30, ("base", "fr"): 0.35, ("adamergex", "de"): 0.80, ("adamergex", "fr"): 0.70,
              ("eng-ft", "de"): 0.78, ("eng-ft", "fr"): 0.75}  # fmt: skip
    return [
        ResultRow(
            "multiemo", "lora", m, lang, "accuracy", v, v - 0.05, v + 0.05, 200, t=0.5 if m == "adamergex" else None
        )
        for (m, lang), v in values.items()
    ]


def test_markdown_marks_best_per_column_and_mean() -> None:
    text = markdown_tables(_rows(), ["base", "eng-ft", "adamergex"])
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[0] == "| method | de | fr | mean |"
    assert lines[1].startswith("| base | 30.0 [25.0, 35.0] | 35.0")
    eng, ada = lines[2], lines[3]
    assert "**75.0 [70.0, 80.0]**" in eng and "**80.0 [75.0, 85.0]**" in ada  # best fr, best de
    assert ada.startswith("| adamergex (t = 0.5) |") and ada.endswith("| 75.0 |")
    assert eng.endswith("| **76.5** |")  # mean (78 + 75) / 2 beats (80 + 70) / 2


def test_write_tables_and_plots(tmp_path: Path) -> None:
    paths = write_tables(_rows(), tmp_path, ["base", "eng-ft", "adamergex"])
    assert len(list(csv.DictReader(paths["csv"].read_text().splitlines()))) == 6
    assert json.loads(paths["json"].read_text())[0]["task"] == "multiemo"
    png = plot_method_bars(_rows(), tmp_path / "bars.png", ["base", "eng-ft", "adamergex"], title="x")
    curve = plot_t_curves({"de": [(0.0, 0.7), (1.0, 0.8)]}, tmp_path / "t.png", title="t", ylabel="acc")
    for path in (png, curve):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
