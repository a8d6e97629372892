"""The whole pipeline on a tiny model: runs end to end, caches, invalidates, resumes, refuses bad input.

Three real runs share the work: one complete run (reused for the cache, report and invalidation tests), one
killed mid-training and resumed, and one with a changed setting on a copy of the first run's folder.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import adamergex.training.trainer as trainer_module
from adamergex.cli import main
from adamergex.errors import AdamergexError
from adamergex.pipeline.config import load_config
from adamergex.pipeline.methods import METHOD_NAMES
from adamergex.pipeline.runner import run_experiment


def _run(path: Path):
    return run_experiment(load_config(path), progress=False)


def _scores(records) -> dict[tuple, tuple]:
    return {(s.method, s.lang, s.seed, s.t, s.selection): s.prediction for s in records.scored}


@pytest.fixture(scope="module")
def first_run(experiment, tmp_path_factory: pytest.TempPathFactory):
    output = tmp_path_factory.mktemp("runs") / "first"
    config = experiment(output)
    pipeline, records, results = _run(config)
    return config, output, pipeline, records, results


def test_end_to_end(first_run) -> None:
    _, _, pipeline, records, results = first_run
    assert {s.method for s in records.scored} == set(METHOD_NAMES)
    assert {(s.method, s.lang) for s in records.scored if s.lang == "en"} == {("eng-ft", "en"), ("majority", "en")}
    assert all(s.n == 12 for s in records.scored)
    table = (results / "results.md").read_text()
    for method in METHOD_NAMES:
        assert f"| {method}" in table
    assert "t chosen on a labelled target-language dev split (n=8): few-shot" in table
    assert "vs Eng-FT: accuracy difference" in table and "Test-set labels" in table
    assert "random-direction null" in table and "| en (source) |" in table
    assert list(results.glob("t_curve_*.png")) and list(results.glob("methods_*.png"))
    assert list(results.glob("vs_engft_*.png"))
    curve = records.curves["multiemo/lora/adamergex/target-dev/seed0"]["de"]
    assert {0.0, 0.5, 1.0} <= {t for t, _ in curve} and len(curve) in (4, 5)  # grid, then 1 refinement round
    assert records.diagnostics["multiemo/lora/de/seed0"]["modules"] > 0
    trained = [s for s in pipeline.log.executed if s.startswith(("reference:", "task:"))]
    assert len(trained) == 4  # Rs (en), Rt (de), T (en), target-ft (de)


def test_report_shows_what_each_adapter_learned(first_run) -> None:
    """The held-out loss before and after training of every adapter, as the trainer logged it, and the curves."""
    _, output, _, records, results = first_run
    assert set(records.training) == {
        "reference/lora/en/seed0",
        "reference/lora/de/seed0",
        "task/lora/en/seed0",
        "target-ft/lora/de/seed0",
    }
    table = (results / "results.md").read_text()
    assert "Did each adapter learn?" in table
    summaries = {path.parent: json.loads(path.read_text()) for path in (output / "cache").glob("*/*/training.json")}
    times = json.loads((output / "run.json").read_text())["training_time_s"]  # run-specific: not in records.json
    for name, value in records.training.items():
        assert "wall_time_s" not in value
        seen = {**value, "wall_time_s": times[name]}
        folder = next(f for f, summary in summaries.items() if summary == {k: seen[k] for k in summary})
        assert f"| {times[name] / 60:.1f} |" in table
        log = [json.loads(line) for line in (folder / "adapter" / "training_log.jsonl").read_text().splitlines()]
        assert log[0]["step"] == 0 and log[0]["validation_loss"] == value["initial_validation_loss"]
        assert log[-1]["validation_loss"] == value["validation_loss"], name
        assert f"{value['initial_validation_loss']:.3f}" in table and f"{value['validation_loss']:.3f}" in table
        assert [r["step"] for r in value["curve"]] == [r["step"] for r in log]
    assert (results / "training_lora.png").is_file()


def test_second_run_is_fully_cached(first_run) -> None:
    config, output, first, records, _ = first_run
    again, records_again, _ = _run(config)
    assert again.log.executed == []
    assert _scores(records_again) == _scores(records)
    # every step the first run computed is counted once as a hit, merges and evaluations as well as trainings
    sealed = len(list((output / "cache").glob("*/*/step.json")))
    assert len(first.log.executed) == sealed
    assert sorted(again.log.cached) == sorted(first.log.executed)
    facts = json.loads((output / "run.json").read_text())
    assert len(facts["log"]["cached"]) == sealed and facts["log"]["executed"] == []


def test_report_rebuilds_results_from_predictions(first_run, tmp_path: Path) -> None:
    _, output, _, _, results = first_run
    before = (results / "results.md").read_text()
    shutil.rmtree(results)
    result = CliRunner().invoke(main, ["report", str(output)])
    assert result.exit_code == 0, result.output
    assert (results / "results.md").read_text() == before
    # the published folder alone (its predictions.csv and records.json) rebuilds the same tables
    result = CliRunner().invoke(main, ["report", str(results), "--out", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again" / "results.md").read_text() == before
    result = CliRunner().invoke(main, ["report", str(results), "--out", str(tmp_path / "again")])
    assert result.exit_code == 2 and "--force" in result.output


def test_scores_match_the_evaluation_records(first_run) -> None:
    """Every accuracy in results.json equals the mean of gold == prediction in predictions.csv, computed here
    with the csv module, and every test-split evaluation in the cache appears among them."""
    _, output, _, _, results = first_run
    correct: dict[tuple[str, str], list[bool]] = {}
    with open(results / "predictions.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            correct.setdefault((row["method"], row["lang"]), []).append(row["gold"] == row["prediction"])
    scores = json.loads((results / "results.json").read_text())["scores"]
    accuracy = {(r["method"], r["lang"]): r["value"] for r in scores if r["metric"] == "accuracy"}
    assert accuracy.keys() == correct.keys()
    for key, values in correct.items():
        assert accuracy[key] == pytest.approx(sum(values) / len(values))
    for path in (output / "cache" / "eval").glob("*/result.json"):
        record = json.loads(path.read_text())
        if record["split"] == "test":
            value = record["metrics"]["accuracy"]["value"]
            assert any(v == pytest.approx(value) for (_, lang), v in accuracy.items() if lang == record["language"])


def test_changed_setting_invalidates_only_downstream(first_run, experiment, tmp_path: Path) -> None:
    output = tmp_path / "changed"
    shutil.copytree(first_run[1], output)
    changed = experiment(
        output,
        training={
            "reference": {"max_steps": 2, "batch_size": 2, "max_length": 32, "save_steps": 1},
            "task": {"max_steps": 3, "batch_size": 4, "max_length": 64, "save_steps": 1},
        },
    )
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
    assert _scores(resumed) == _scores(first_run[3])


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


def test_two_seeds_ia3_label_free_selection_and_noise_floor(experiment, tmp_path: Path) -> None:
    config = experiment(
        tmp_path / "seeds",
        adapters=["ia3"],
        seeds=[0, 1],
        methods=["majority", "eng-ft", "arimerge", "adamergex", "target-ft"],
        tuning={"dev": "unlabelled", "compare": ["source"], "compare_t": [1.0], "grid": [0.0, 1.0], "refine_rounds": 0},
    )
    _, records, results = _run(config)
    selections = {(s.method, s.selection) for s in records.scored if s.method == "adamergex"}
    assert selections == {("adamergex", "unlabelled"), ("adamergex", "source-dev"), ("adamergex", "fixed")}
    assert {s.seed for s in records.scored} == {0, 1}
    types = {d["type"] for d in records.diagnostics.values()}
    assert {"alignment", "reference_stability", "task_stability"} <= types
    table = (results / "results.md").read_text()
    assert "| adamergex (t: source dev) |" in table and "| adamergex (t = 1) |" in table
    assert "mean ± SD across seeds" in table and "resampling items and seeds" in table
    assert "label-free on target dev inputs" in table
    rows = [r for r in records.rows if r.variant == "adamergex" and r.lang == "de" and r.metric == "accuracy"]
    assert len(rows) == 1 and rows[0].seeds == (0, 1)  # one row, whatever t each seed chose
