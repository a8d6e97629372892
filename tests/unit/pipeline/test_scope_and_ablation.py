"""Where each method is scored (``scope``), reference-source ablations, the t curve's methods, per-kind training
settings, and the dry run's plan with estimated times — on the tiny-model pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from adamergex.cli import main
from adamergex.errors import AdamergexError
from adamergex.pipeline.analysis import analyse
from adamergex.pipeline.config import load_config
from adamergex.pipeline.estimate import (
    CALIBRATION_FILE,
    Calibration,
    Cost,
    estimate_plan,
    read_calibration,
)
from adamergex.pipeline.records import run_info
from adamergex.pipeline.runner import Pipeline, run_experiment
from adamergex.pipeline.steps import TaskTraining

TINY_TRAINING = {
    "reference": {"max_steps": 2, "batch_size": 2, "max_length": 32, "save_steps": 1},
    "task": {"max_steps": 2, "batch_size": 4, "max_length": 64, "save_steps": 1},
}


def _settings(experiment, tmp_path: Path, **overrides) -> dict:
    path = experiment(tmp_path / "run", **overrides)
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def scoped_run(experiment, multiemo_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    output = tmp_path_factory.mktemp("runs") / "scoped"
    path = experiment(
        output,
        adapters=["lora", "ia3"],
        seeds=[0, 1],
        methods=["eng-ft", "adamergex", "adamergex-cross", "target-ft"],
        scope={"adamergex-cross": {"adapters": ["lora"], "seeds": [0]}, "target-ft": {"seeds": [1]}},
        reference_ablations=[
            {
                "source": "task-text",
                "options": {"task": "multiemo", "archive": str(multiemo_dir)},
                "adapters": ["lora"],
                "seeds": [0],
            }
        ],
        tuning={"dev": "source", "grid": [0.0, 1.0], "refine_rounds": 0, "compare_t": [2.0]},
        training={**TINY_TRAINING, "by_kind": {"ia3": {"task": {"learning_rate": 0.05}}}},
    )
    pipeline, records, results = run_experiment(load_config(path), progress=False)
    return pipeline, records, results


def test_scope_limits_where_a_method_is_scored(scoped_run) -> None:
    _, records, _ = scoped_run
    cells = {(s.kind, s.method, s.seed) for s in records.scored if s.lang == "de"}
    assert {(kind, seed) for kind, method, seed in cells if method == "adamergex-cross"} == {("lora", 0)}
    assert {(kind, seed) for kind, method, seed in cells if method == "target-ft"} == {("lora", 1), ("ia3", 1)}
    assert {(kind, seed) for kind, method, seed in cells if method == "adamergex"} == {
        (kind, seed) for kind in ("lora", "ia3") for seed in (0, 1)
    }


def test_reference_ablation_uses_its_own_reference_adapters(scoped_run) -> None:
    pipeline, records, results = scoped_run
    ablated = [s for s in records.scored if s.method == "adamergex@task-text"]
    assert {(s.kind, s.seed, s.lang) for s in ablated} >= {("lora", 0, "de")}
    references = {name: entry["data"] for name, entry in pipeline.training.items() if entry["role"] == "reference"}
    assert "reference:task-text" in references.values() and "reference:udhr" in references.values()
    assert records.info["methods"].index("adamergex@task-text") == records.info["methods"].index("adamergex") + 1
    analysis = analyse(records.scored, records.info, resamples=50)
    versus = {(c.variant, c.reference) for c in analysis.comparisons}
    assert ("adamergex@task-text", "adamergex") in versus  # paired against the main reference source
    assert "adamergex@task-text" in (results / "results.md").read_text()


def test_compare_t_only_for_compare_methods(scoped_run, experiment, tmp_path: Path) -> None:
    _, records, _ = scoped_run
    fixed = {(s.method, s.t) for s in records.scored if s.selection == "fixed"}
    assert ("adamergex", 2.0) in fixed and ("adamergex-cross", 2.0) in fixed  # default: every method with a t
    config = load_config(
        experiment(
            tmp_path / "narrow",
            methods=["eng-ft", "adamergex", "arimerge"],
            tuning={"dev": "source", "grid": [0.0], "compare_t": [2.0], "compare_methods": ["adamergex"]},
            training=TINY_TRAINING,
        )
    )
    pipeline = Pipeline(config, dry_run=True)
    pipeline.run()
    planned_merges = [step.name for step in pipeline.log.plan.values() if step.kind == "merge"]
    assert planned_merges == ["adamergex/de/t=2"]


def test_compare_fixed_adds_t_values_on_its_own_languages_and_methods(experiment, tmp_path: Path) -> None:
    config = load_config(
        experiment(
            tmp_path / "sets",
            methods=["eng-ft", "adamergex", "arimerge"],
            adapters=["lora", "ia3"],
            tuning={
                "dev": "source",
                "grid": [0.0],
                "compare_t": [1.0],
                "compare_methods": ["adamergex"],
                "compare_fixed": [
                    {"t": [1.0, 3.0], "methods": ["arimerge"], "langs": ["de"]},
                    {"t": [4.0], "methods": ["adamergex"], "adapters": ["ia3"]},
                ],
            },
            training=TINY_TRAINING,
        )
    )
    pipeline = Pipeline(config, dry_run=True)
    pipeline.run()
    planned = sorted((step.inputs["adapter"], step.name) for step in pipeline.log.plan.values() if step.kind == "merge")
    per_kind = ["adamergex/de/t=1", "arimerge/de/t=1", "arimerge/de/t=3"]
    assert planned == sorted(
        [("lora", name) for name in per_kind] + [("ia3", name) for name in per_kind] + [("ia3", "adamergex/de/t=4")]
    )
    assert "1, 3" in run_info(config)["selections"]["fixed"]


def test_by_kind_training_settings_reach_only_that_kind(scoped_run) -> None:
    pipeline, _, _ = scoped_run
    task = pipeline.config.tasks[0]
    inputs = {}
    for kind in ("lora", "ia3"):
        for lang in ("en", "de"):
            step = TaskTraining.of(pipeline.config, kind, task, lang, 1)  # cached: the run trained them
            manifest = json.loads((pipeline.cache.path(step.kind, step.key) / "step.json").read_text())
            inputs[kind, lang] = manifest["inputs"]
    assert inputs["ia3", "en"]["learning_rate"] == 0.05 and inputs["ia3", "de"]["learning_rate"] == 0.05
    assert "learning_rate" not in inputs["lora", "en"] and "learning_rate" not in inputs["lora", "de"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"scope": {"adamergex": {"langs": ["fr"]}}}, r"scope\.adamergex\.langs: \['fr'\] not in"),
        ({"scope": {"factor": {"seeds": [0]}}}, r"scope\.factor: method 'factor' is not in methods"),
        ({"scope": {"eng-ft": {"seeds": [7]}}}, r"scope\.eng-ft\.seeds: \[7\] not in"),
        ({"reference_ablations": [{"source": "udhr", "options": "UDHR"}]}, r"is the main reference source"),
        (
            {"reference_ablations": [{"source": "task-text", "options": {"task": "multiemo"}, "methods": ["eng-ft"]}]},
            r"are not merges",
        ),
        ({"reference_ablations": [{"source": "task-text"}]}, r"task-text needs options\.task"),
        ({"reference_ablations": [{"source": "nonsense"}]}, r"nonsense"),
        ({"tuning": {"compare_methods": ["eng-ft"]}}, r"'eng-ft' has no t"),
        ({"tuning": {"compare_langs": ["xx"]}}, r"compare_langs: \['xx'\] not in"),
        ({"tuning": {"compare_fixed": [{"t": [2], "langs": ["xx"]}]}}, r"compare_fixed\[0\]\.langs: \['xx'\]"),
        ({"tuning": {"compare_fixed": [{"t": [2], "methods": ["base"]}]}}, r"compare_fixed\[0\]\.methods: 'base'"),
        ({"tuning": {"compare_fixed": [{"t": []}]}}, r"compare_fixed\.0\.t"),
        ({"tuning": {"compare_fixed": [{"t": [2], "adapters": ["ia3"]}]}}, r"compare_fixed\[0\]\.adapters: \['ia3'\]"),
        ({"training": {"by_kind": {"ia3": {"task": {"learning_rat": 1}}}}}, r"unknown training setting"),
        ({"training": {"by_kind": {"gru": {}}}}, r"training\.by_kind"),
    ],
)
def test_bad_scopes_and_ablations_are_refused_before_work(
    experiment, udhr_dir: Path, tmp_path: Path, overrides, message
) -> None:
    for ablation in overrides.get("reference_ablations", []):
        if ablation.get("options") == "UDHR":  # the main reference source's own options
            ablation["options"] = {"archive": str(udhr_dir)}
    settings = {"methods": ["eng-ft", "adamergex", "arimerge", "target-ft"], **overrides}
    with pytest.raises(AdamergexError, match=message):
        load_config(experiment(tmp_path / "bad", **settings))
    assert not (tmp_path / "bad").exists()


def test_dry_run_plans_tuning_evaluations_once_each(experiment, tmp_path: Path) -> None:
    config = load_config(
        experiment(
            tmp_path / "plan",
            adapters=["lora"],
            seeds=[0, 1],
            methods=["base", "eng-ft", "adamergex"],
            tuning={"dev": "source", "grid": [0.0, 1.0], "refine_rounds": 0},
            training=TINY_TRAINING,
        )
    )
    pipeline = Pipeline(config, dry_run=True)
    pipeline.run()
    plan = list(pipeline.log.plan.values())
    assert len({step.key for step in plan}) == len(plan)
    names = [step.name for step in plan if step.kind == "eval"]
    assert names.count("base/de") == 1  # one base evaluation, whatever the seeds
    assert "tune/adamergex/de/t=1" in names and "tune/adamergex/de/t=0" in names
    assert "adamergex/de/t=1" in names  # the costliest choice of t is planned
    assert not (tmp_path / "plan" / "cache" / "eval").exists()


def test_estimate_multiplies_measured_costs_by_the_plan(experiment, tmp_path: Path) -> None:
    config = load_config(experiment(tmp_path / "est", methods=["eng-ft", "adamergex"], t=1.0, training=TINY_TRAINING))
    pipeline = Pipeline(config, dry_run=True)
    pipeline.run()
    plan = list(pipeline.log.plan.values())
    costs = {
        "reference/lora": Cost(2.0, 10.0),
        "task/lora": Cost(1.0, 5.0),
        "eval/base": Cost(0.5, 1.0),
        "eval/adapter": Cost(0.25, 3.0),
        "merge/lora": Cost(0.0, 0.5),
    }
    estimates = estimate_plan(plan, Calibration(costs, "x"), "en")
    by_name = {(e.kind, e.name): e.seconds for e in estimates}
    assert by_name[("reference", "lora/en/seed0")] == 10.0 + 2 * 2.0  # overhead + max_steps · per step
    assert by_name[("task", "multiemo/lora/en/seed0")] == 5.0 + 2 * 1.0
    assert by_name[("eval", "eng-ft/de")] == 3.0 + 12 * 0.25  # test_size items
    assert by_name[("merge", "adamergex/de/t=1")] == 0.5
    assert TaskTraining("by epochs", {"max_steps": None}).units() is None


def test_calibrate_measures_this_machine_and_is_reused(experiment, tmp_path: Path) -> None:
    path = experiment(tmp_path / "cal", methods=["eng-ft", "adamergex"], t=1.0, training=TINY_TRAINING)
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run", "--calibrate"])
    assert result.exit_code == 0, result.output
    calibration = read_calibration(tmp_path / "cal")
    assert calibration is not None
    assert {"reference/lora", "task/lora", "eval/base", "eval/adapter", "merge/lora"} <= set(calibration.costs)
    assert all(cost.unit_s >= 0 and cost.overhead_s >= 0 for cost in calibration.costs.values())
    assert calibration.costs["task/lora"].unit_s > 0 and calibration.costs["eval/adapter"].unit_s > 0
    assert "total" in result.output and "eval adamergex/de/t=1" in " ".join(result.output.split())
    assert not (tmp_path / "cal" / "cache").exists() or not any((tmp_path / "cal" / "cache").rglob("step.json"))
    again = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    assert again.exit_code == 0 and "total" in again.output and "rerun with --calibrate" not in again.output
    longer = {**TINY_TRAINING, "task": {**TINY_TRAINING["task"], "max_steps": 3, "learning_rate": 0.01}}
    counts = experiment(tmp_path / "cal", methods=["eng-ft", "adamergex"], t=1.0, training=longer)
    same_costs = CliRunner().invoke(main, ["run", str(counts), "--dry-run"])
    assert same_costs.exit_code == 0 and "rerun with --calibrate" not in same_costs.output  # more steps, same cost
    wider = {**TINY_TRAINING, "task": {**TINY_TRAINING["task"], "max_length": 48}}
    changed = experiment(tmp_path / "cal", methods=["eng-ft", "adamergex"], t=1.0, training=wider)
    stale = CliRunner().invoke(main, ["run", str(changed), "--dry-run"])
    assert stale.exit_code == 0 and "rerun with --calibrate" in stale.output
    (tmp_path / "cal" / CALIBRATION_FILE).write_text("{")
    broken = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    assert broken.exit_code != 0 and "not a calibration file" in broken.output


def test_calibrate_without_dry_run_is_a_usage_error(experiment, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(experiment(tmp_path / "x")), "--calibrate"])
    assert result.exit_code == 2 and "--calibrate goes with --dry-run" in result.output
