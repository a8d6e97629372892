"""Data-parallel evaluation steps: ``executor.resources.eval.processes`` > 1 computes an evaluation step in
processes launched for it (``accelerate launch``, here two CPU processes over gloo), which seal the result
one process would seal.

On the tiny pipeline with one method (Eng-FT, t fixed): the launch seals an evaluation whose result.json
equals the in-process run's, refuses an evaluation whose adapter is not sealed with the worker's one-line
error, and leaves a sealed step alone; a Ray run whose evaluations each run in two processes writes the
in-process run's predictions.csv and records.json.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from adamergex.errors import AdamergexError
from adamergex.evaluation.sharding import SINGLE_PROCESS
from adamergex.pipeline.cache import JOURNAL, StepCache
from adamergex.pipeline.config import ExecutorSpec, StepResources, load_config
from adamergex.pipeline.executors import RayExecutor, execute
from adamergex.pipeline.runner import Pipeline, run_experiment
from adamergex.pipeline.sharded_step import ShardedComputer, compute, launch
from adamergex.pipeline.steps import Step

KINDS = ("reference", "task", "merge", "eval")
#: What differs between two computations of one evaluation (timing, clock, the adapter folder's path).
CIRCUMSTANCES = ("seconds", "items_per_second", "created", "adapter")


def _quiet() -> Console:
    return Console(file=io.StringIO())


def _small(experiment: Any, output: Path, **overrides: Any) -> Path:
    return experiment(output, methods=["eng-ft"], t=1.0, **overrides)


def _journal(output: Path) -> Counter[str]:
    lines = (output / "cache" / JOURNAL).read_text().splitlines()
    return Counter(json.loads(line)["key"] for line in lines)


def _result(output: Path, key: str) -> dict[str, Any]:
    record = json.loads((StepCache(output / "cache").path("eval", key) / "result.json").read_text())
    return {name: value for name, value in record.items() if name not in CIRCUMSTANCES}


@pytest.fixture(scope="module")
def in_process(experiment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the small experiment run in this process."""
    output = tmp_path_factory.mktemp("local") / "run"
    run_experiment(load_config(_small(experiment, output)), progress=False, console=_quiet())
    return output


def _evaluations(plan: dict[str, Step]) -> list[Step]:
    return sorted((step for step in plan.values() if step.kind == "eval"), key=lambda step: step.name)


def test_a_launched_evaluation_seals_the_one_process_result(experiment, in_process, tmp_path: Path) -> None:
    output = tmp_path / "run"
    config = load_config(_small(experiment, output))
    config_json = config.model_dump_json()
    planner = Pipeline(config, frontier=True, progress=False, console=_quiet())
    worker = Pipeline(config, progress=False, console=_quiet())
    [task] = [step for step in planner.plan().values() if step.kind == "task"]
    [target] = [
        step for step in _evaluations(Pipeline(config, dry_run=True, console=_quiet()).plan()) if "/de" in step.name
    ]

    with pytest.raises(AdamergexError, match=rf"^no sealed adapter {task.key[:16]} in "):
        launch(config_json, target, 2, gpus=False)  # its adapter is not trained yet: the launch's own error

    worker.run_step(task)
    assert target.key in planner.plan()
    [timing] = launch(config_json, target, 2, gpus=False)

    assert (timing.kind, timing.key, timing.name) == ("eval", target.key, target.name)
    assert timing.worker.endswith("(2 processes)")
    assert _result(output, target.key) == _result(in_process, target.key)
    assert _journal(output)[target.key] == 1
    assert StepCache(output / "cache").verify_all()[1] == []
    one_process = ShardedComputer(config, SINGLE_PROCESS, progress=False, console=_quiet())
    assert compute(one_process, target) == []  # sealed: taken as it is, not computed again
    assert _journal(output)[target.key] == 1


def test_ray_evaluations_in_two_processes_write_the_in_process_results(experiment, in_process, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="the Ray executor needs the ray extra: pip install 'adamergex[ray]'")
    resources: dict[str, Any] = {kind: {"num_gpus": 0} for kind in KINDS}
    resources["eval"]["processes"] = 2
    output = tmp_path / "run"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        execute(
            load_config(_small(experiment, output, executor={"name": "ray", "resources": resources})), console=_quiet()
        )
    finally:
        ray.shutdown()

    for name in ("predictions.csv", "records.json"):
        assert (output / name).read_text() == (in_process / name).read_text(), name
    assert _journal(output) == _journal(in_process)
    steps = json.loads((output / "run.json").read_text())["log"]["timings"]
    evaluations = [step for step in steps if step["kind"] == "eval"]
    assert len(evaluations) == 2 and all(step["worker"].endswith("(2 processes)") for step in evaluations)
    assert not any(step["worker"].endswith("processes)") for step in steps if step["kind"] != "eval")


def test_processes_default_to_the_gpus_of_an_evaluation() -> None:
    assert StepResources(num_gpus=4).processes_for("eval") == 4
    assert StepResources(num_gpus=4).processes_for("task") == 1  # training runs in one process
    assert StepResources(num_gpus=0.5).processes_for("eval") == 1
    assert StepResources().processes_for("eval") == 1
    assert StepResources(num_gpus=0, processes=3).processes_for("eval") == 3


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"task": {"processes": 2}}, "resources.task.processes: only eval steps run data-parallel"),
        ({"eval": {"num_gpus": 1, "processes": 2}}, "each process needs a GPU of its own (num_gpus 2) or none"),
    ],
)
def test_processes_that_cannot_run_are_refused(resources: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ExecutorSpec(name="ray", resources=resources)


def test_a_data_parallel_evaluation_reserves_a_gpu_per_process(experiment, tmp_path: Path) -> None:
    config = load_config(
        _small(experiment, tmp_path / "run", executor={"name": "ray", "resources": {"eval": {"processes": 2}}})
    )
    executor = RayExecutor(config, _quiet())
    [step, *_] = _evaluations(Pipeline(config, dry_run=True, console=_quiet()).plan())
    assert executor._processes(step) == 2
    assert executor._options(step, True, 2)["num_gpus"] == 2
    assert executor._options(step, False, 2)["num_gpus"] == 0


def test_training_on_several_gpus_is_noted_as_one_process(experiment, tmp_path: Path) -> None:
    resources = {"task": {"num_gpus": 2}, "reference": {"num_gpus": 1}}
    config = load_config(_small(experiment, tmp_path / "run", executor={"name": "ray", "resources": resources}))
    console = Console(file=io.StringIO(), width=200)
    RayExecutor(config, console)._note_single_process_training()
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines == [
        "note: task steps reserve 2 GPUs each but train in one process (only evaluation steps run data-parallel)"
    ]
