"""Two ``adamergex run`` processes on one run folder: both succeed, each step is computed and sealed once, and
the results are those of a single run.

The processes are real (``python -m adamergex run``), started together or one after the other has sealed its
first step; a third, in-process run afterwards must find every step cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from adamergex.pipeline.cache import JOURNAL, MANIFEST
from adamergex.pipeline.config import load_config
from adamergex.pipeline.runner import run_experiment


def _start(config: Path) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "adamergex", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _table(stdout: str) -> list[str]:
    """The printed results, without what differs between runs by design (wall time, steps run or cached)."""
    return [line for line in stdout.splitlines() if "Wall time" not in line and "step(s) run" not in line]


@pytest.mark.parametrize("start", ["simultaneous", "staggered"])
def test_two_runs_share_one_folder(experiment, tmp_path: Path, start: str) -> None:
    output = tmp_path / "run"
    config = experiment(output, methods=["eng-ft", "adamergex"])
    first = _start(config)
    if start == "staggered":
        journal = output / "cache" / JOURNAL
        while first.poll() is None and not journal.is_file():  # until the first run has sealed a step
            time.sleep(0.05)
    second = _start(config)
    results = [process.communicate() for process in (first, second)]
    for process, (_, stderr) in zip((first, second), results, strict=True):
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
    assert _table(results[0][0]) == _table(results[1][0])

    sealed = [json.loads(line) for line in (output / "cache" / JOURNAL).read_text().splitlines()]
    counts = Counter((entry["step"], entry["key"]) for entry in sealed)
    assert counts and set(counts.values()) == {1}, counts  # each step sealed exactly once
    on_disk = {json.loads(m.read_text())["key"] for m in (output / "cache").glob(f"*/*/{MANIFEST}")}
    assert on_disk == {key for _, key in counts}
    assert {entry["pid"] for entry in sealed} <= {first.pid, second.pid}

    concurrent = _deterministic_records(output)
    pipeline, _, _ = run_experiment(load_config(config), progress=False)
    assert pipeline.log.executed == []
    assert _deterministic_records(output) == concurrent


def _deterministic_records(output: Path) -> dict[str, object]:
    """records.json without the wall time and the step log, plus the per-item predictions when written."""
    records = json.loads((output / "records.json").read_text())
    kept: dict[str, object] = {k: v for k, v in records.items() if k not in {"wall_time_s", "log"}}
    predictions = output / "predictions.csv"
    kept["predictions"] = predictions.read_text() if predictions.is_file() else None
    return kept
