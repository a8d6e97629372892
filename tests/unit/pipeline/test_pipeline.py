"""The whole pipeline on a tiny model: runs end to end, caches, invalidates, resumes, refuses bad input.

Three real runs share the work: one complete run (reused for the cache, report and invalidation tests), one
killed mid-training and resumed, and one with a changed setting on a copy of the first run's folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import adamergex.training.trainer as trainer_module
from adamergex.cli import main
from adamergex.errors import AdamergexError
from adamergex.pipeline.config import METHODS, load_config
from adamergex.pipeline.runner import run_experiment


def _run(path: Path):
    return run_experiment(load_config(path), progress=False)


def _scores(records) -> dict[tuple, float]:
    return {(r.method, r.lang, r.metric, r.t): r.value for r in records.rows}


@pytest.fixture(scope="module")
def first_run(experiment, tmp_path_factory: pytest.TempPathFactory):
    output = tmp_path_factory.mktemp("runs") / "first"
    config = experiment(output)
    pipeline, records, results = _run(config)
    return config, output, pipeline, records, results


def test_end_to_end(first_run) -> None:
    _, _, pipeline, records, results = first_run
    assert {r.method for r in records.rows} == set(METHODS)
    assert {r.lang for r in records.rows} == {"de"} and all(r.n == 12 for r in records.rows)
    table = (results / "results.md").read_text()
    for method in METHODS:
        assert f"| {method}" in table
    assert "t chosen on de dev (n=8)" in table
    assert list(results.glob("t_curve_*.png")) and list(results.glob("methods_*.png"))
    curve = records.curves["multiemo/lora/adamergex/seed0"]["de"]
    assert {0.0, 0.5, 1.0} <= {t for t, _ in curve} and len(curve) in (4, 5)  # grid, then 1 refinement round
    assert records.diagnostics["multiemo/lora/de/seed0"]["modules"] > 0
    trained = [s for s in pipeline.log.executed if s.startswith(("reference:", "task:"))]
    assert len(trained) == 4  # Rs (en), Rt (de), T (en), target-ft (de)


def test_second_run_is_fully_cached(first_run) -> None:
    config, _, _, records, _ = first_run
    again, records_again, _ = _run(config)
    assert again.log.executed == []
    assert _scores(records_again) == _scores(records)


def test_report_rebuilds_results(first_run) -> None:
    _, output, _, _, results = first_run
    before = (results / "results.md").read_text()
    (results / "results.md").unlink()
    result = CliRunner().invoke(main, ["report", str(output)])
    assert result.exit_code == 0, result.output
    assert (results / "results.md").read_text() == before
    assert json.loads((results / "results.json").read_text())


def test_changed_setting_invalidates_only_downstream(first_run, experiment, tmp_path: Path) -> None:
    output = tmp_path / "changed"
    shutil.copytree(first_run[1], output)
    changed = experiment(output, training={
        "reference": {"max_steps": 2, "batch_size": 2, "max_length": 32, "save_steps": 1},
        "task": {"max_steps": 3, "batch_size": 4, "max_length": 64, "save_steps": 1},
    })  # fmt: skip
    pipeline, _, _ = _run(changed)
    executed = pipeline.log.executed
    assert not any(s.startswith("reference:") for s in executed)  # reference adapters untouched
    assert sum(s.startswith("task:") for s in executed) == 2  # T and target-ft retrained
    assert "eval:base/de" not in executed  # the base model's score does not depend on training
    assert any(s.startswith("eval:eng-ft") for s in executed)


def test_killed_training_resumes_with_identical_results(first_run, experiment, tmp_path: Path, monkeypatch) -> None:
    original = trainer_module.train_adapter
    state = {"killed": False}

    def kill_after_first_step(step: int, record: dict) -> None:
        if not state["killed"] and step >= 1:
            state["killed"] = True
            raise KeyboardInterrupt

    def interrupted(config, **kwargs):
        if config.data.startswith("task:") and not state["killed"]:
            kwargs["callbacks"] = (*kwargs.get("callbacks", ()), kill_after_first_step)
        return original(config, **kwargs)

    monkeypatch.setattr(trainer_module, "train_adapter", interrupted)
    config = experiment(tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        _run(config)
    assert list((tmp_path / "killed" / "checkpoints").glob("task-*/step-*")), "the killed step kept its checkpoint"
    assert not list((tmp_path / "killed" / "cache").glob("task/*/adapter"))  # no half-written step
    monkeypatch.setattr(trainer_module, "train_adapter", original)
    pipeline, resumed, _ = _run(config)
    assert any(s.startswith("reference:") for s in pipeline.log.cached)  # finished before the kill
    assert _scores(resumed) == pytest.approx(_scores(first_run[3]))


def test_dry_run_plans_without_running(experiment, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(experiment(tmp_path / "dry")), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "step(s) to run, 0 cached" in result.output
    assert not (tmp_path / "dry" / "cache" / "task").exists()


def test_invalid_config_names_field_and_allowed_values(experiment, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(experiment(tmp_path / "bad", methods=["base", "magic"]))])
    assert result.exit_code == 2
    assert "methods.1" in result.output and "'adamergex'" in result.output and "magic" in result.output


def test_target_language_the_task_lacks(experiment, tmp_path: Path) -> None:
    with pytest.raises(AdamergexError, match=r"sw.*expected one of"):
        _run(experiment(tmp_path / "sw", target_langs=["sw"]))
    assert not (tmp_path / "sw" / "cache" / "reference").exists()
