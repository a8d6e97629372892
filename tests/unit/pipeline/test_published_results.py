"""The published demo results cannot drift from their data: docs/results rebuilds byte-identically from the
predictions.csv and records.json committed beside it."""

from __future__ import annotations

from pathlib import Path

from adamergex.pipeline.report import write_report

PUBLISHED = Path(__file__).resolve().parents[3] / "docs" / "results"


def test_published_demo_tables_are_recomputed_from_the_committed_predictions(tmp_path: Path) -> None:
    rebuilt = write_report(PUBLISHED, tmp_path / "rebuilt")
    for name in ("results.md", "results.csv", "results.json"):
        assert (rebuilt / name).read_text() == (PUBLISHED / name).read_text(), name
