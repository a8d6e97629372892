"""Recorded step times of a run's cache beside the calibration's estimate for the same steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adamergex.errors import AdamergexError
from adamergex.pipeline.estimate import Calibration, Cost, format_measured, measured_steps

CALIBRATION = Calibration(
    {"reference/lora": Cost(2.0, 10.0), "eval/adapter": Cost(0.5, 1.0), "eval/base": Cost(0.25, 0.0)}, "settings"
)


def _seal(root: Path, kind: str, key: str, inputs: dict, files: dict[str, dict]) -> None:
    folder = root / kind / key[:16]
    folder.mkdir(parents=True)
    (folder / "step.json").write_text(json.dumps({"key": key, "inputs": inputs, "format": 2, "files": {}}))
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content))


def test_recorded_and_estimated_seconds_per_step(tmp_path: Path) -> None:
    _seal(
        tmp_path,
        "reference",
        "a" * 64,
        {"adapter": "lora", "lang": "de", "max_steps": 5},
        {"training.json": {"wall_time_s": 30.0}},
    )
    _seal(
        tmp_path, "eval", "b" * 64, {"adapter": "c" * 64, "lang": "de", "limit": 10}, {"result.json": {"seconds": 4.0}}
    )
    _seal(tmp_path, "eval", "d" * 64, {"adapter": None, "lang": "de", "limit": 8}, {"result.json": {"seconds": 3.0}})
    _seal(tmp_path, "merge", "e" * 64, {"adapter": "lora"}, {})
    (tmp_path / "eval" / ".tmp-x").mkdir()  # unsealed scratch is not a step
    steps = {s.key[0]: s for s in measured_steps(tmp_path, CALIBRATION, "en")}
    assert set(steps) == {"a", "b", "d", "e"}
    assert (steps["a"].cls, steps["a"].estimated_s, steps["a"].measured_s) == ("reference/lora", 20.0, 30.0)
    assert (steps["b"].cls, steps["b"].estimated_s, steps["b"].measured_s) == ("eval/adapter", 6.0, 4.0)
    assert (steps["d"].cls, steps["d"].estimated_s, steps["d"].measured_s) == ("eval/base", 2.0, 3.0)
    assert steps["e"].measured_s is None and steps["e"].estimated_s is None  # merge/lora not calibrated here
    lines = format_measured(list(steps.values()))
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[1] == "4"
    assert f" {37 / 28:.2f} " in total  # 30 + 4 + 3 recorded over 20 + 6 + 2 estimated
    assert total.endswith("(1 without a record)")  # the merge


def test_a_broken_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "eval" / "0123").mkdir(parents=True)
    (tmp_path / "eval" / "0123" / "step.json").write_text("{not json")
    with pytest.raises(AdamergexError, match="is not a step manifest"):
        measured_steps(tmp_path, CALIBRATION, "en")
