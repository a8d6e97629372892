"""A run's records do not depend on the thread setting of the process that runs it.

float32 training is not bit-identical across thread counts (a reduction adds one partial result per thread), so a
run fixes the intra-op thread count of every step (``executor.threads``, by default the CPUs the process may use);
the records and predictions of the same config are then byte-identical whatever ``torch.set_num_threads`` said
before the run, and an explicit ``executor.threads`` is what the steps compute with.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

from adamergex.pipeline.config import load_config
from adamergex.pipeline.runner import run_experiment
from adamergex.threads import available_cpus, torch_threads


def _run(config: Path) -> tuple[str, str, dict[str, Any]]:
    pipeline, _, _ = run_experiment(load_config(config), progress=False, console=Console(file=io.StringIO()))
    output = pipeline.config.output
    run = json.loads((output / "run.json").read_text())
    return (output / "records.json").read_text(), (output / "predictions.csv").read_text(), run


def test_records_are_the_same_whatever_the_process_thread_setting(experiment, tmp_path: Path) -> None:
    results = []
    previous = torch.get_num_threads()
    try:
        for ambient in (1, 2):
            torch.set_num_threads(ambient)
            results.append(_run(experiment(tmp_path / f"ambient{ambient}")))
            assert torch.get_num_threads() == ambient  # restored after the run
    finally:
        torch.set_num_threads(previous)
    (records_1, predictions_1, run_1), (records_2, predictions_2, run_2) = results
    assert json.loads(records_1)["diagnostics"]  # the numbers that used to move are there ...
    assert records_1 == records_2  # ... and byte-identical
    assert predictions_1 == predictions_2
    assert run_1["threads"] == run_2["threads"] == available_cpus()


def test_an_explicit_thread_count_is_what_the_steps_compute_with(experiment, tmp_path: Path, monkeypatch) -> None:
    from adamergex.pipeline import runner

    seen: list[int] = []
    original = runner.Pipeline.run

    def spy(self: runner.Pipeline) -> Any:
        seen.append(torch.get_num_threads())
        return original(self)

    monkeypatch.setattr(runner.Pipeline, "run", spy)
    config = experiment(tmp_path / "one", executor={"name": "local", "threads": 1}, methods=["eng-ft"], t=0.0)
    with torch_threads(2):
        _, _, run = _run(config)
    assert seen == [1]
    assert run["threads"] == 1


def test_a_thread_count_below_one_is_refused(experiment, tmp_path: Path) -> None:
    from adamergex.errors import AdamergexError

    with pytest.raises((AdamergexError, ValueError), match="threads"):
        load_config(experiment(tmp_path / "bad", executor={"name": "local", "threads": 0}))
