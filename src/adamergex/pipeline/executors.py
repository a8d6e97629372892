"""Where a run's steps are computed: in this process one after another (``local``, the reference), or as Ray
tasks across a machine or a cluster (``ray``).

The step cache is the only state either executor keeps: a step is a function of the keys of its inputs, is
computed under its lock and appears sealed or not at all (:mod:`adamergex.pipeline.cache`). So the Ray driver
schedules nothing itself; it repeats

    plan (a frontier dry run: the steps not sealed whose existence is decided)
    → submit each planned step whose inputs are sealed and that is not running, as a Ray task with the
      resources of its kind (Ray starts it where they are free)
    → wait for a task to finish → plan again

until a plan is empty. The in-process pass then assembles ``records.json`` from the cache, every step a hit,
so both executors write the same records for the same config, and a run stopped under one executor resumes
under the other, reusing every sealed step.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from adamergex.errors import AdamergexError
from adamergex.pipeline.config import ExperimentConfig
from adamergex.pipeline.runner import Pipeline, RunRecords, StepTiming, run_experiment
from adamergex.pipeline.steps import STEP_KINDS, Step, Training
from adamergex.threads import torch_threads


def execute(
    config: ExperimentConfig, *, dry_run: bool = False, progress: bool = True, console: Console | None = None
) -> tuple[Pipeline, RunRecords, Path | None]:
    """Run ``config`` with its executor (a dry run always plans in this process)."""
    if dry_run or config.executor.name == "local":
        return run_experiment(config, dry_run=dry_run, progress=progress, console=console)
    started = time.perf_counter()
    executed = RayExecutor(config, console or Console(stderr=True)).run()
    return run_experiment(
        config, progress=progress, console=console, executor="ray", executed=executed, started=started
    )


def ready_steps(plan: dict[str, Step], running: set[str]) -> list[Step]:
    """The planned steps that may start now, in their kinds' priority (trainings, the long steps that start
    every chain, first; Ray starts queued tasks of one resource shape roughly in the order they were submitted):
    not running, and no input among the steps still planned (a planning pass lists every step not sealed, so an
    input outside the plan is sealed)."""
    ready = [step for key, step in plan.items() if key not in running and not set(step.upstream()) & plan.keys()]
    return sorted(ready, key=lambda step: step.priority)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise AdamergexError("the ray executor needs Ray; install it with: pip install 'adamergex[ray]'") from None
    return ray


class RayExecutor:
    """Computes every step of ``config`` as Ray tasks; returns their timings (see the module docstring).

    Joins the Ray instance this process has already started (``ray.init``), else the cluster at
    ``executor.address``, else starts a local one for the duration of the run.
    """

    def __init__(self, config: ExperimentConfig, console: Console) -> None:
        self.config = config
        self.console = console
        # Workers read the cache at the absolute path of the output folder (step keys do not depend on it).
        # ... and compute with the driver's thread count, as the in-process run would (see adamergex.threads).
        executor = config.executor.model_copy(update={"threads": config.executor.threads_or_default()})
        self.worker_config = config.model_copy(
            update={"output": config.output.resolve(), "executor": executor}
        ).model_dump_json()
        self.planner = Pipeline(config, frontier=True, progress=False, console=Console(file=io.StringIO()))

    def run(self) -> list[StepTiming]:
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(address=self.config.executor.address, include_dashboard=False)
        try:
            return self._drive(ray)
        finally:
            if started_here:
                ray.shutdown()

    def _drive(self, ray: Any) -> list[StepTiming]:
        self._prepare_cache()
        self._note_single_process_training()
        # A CPU worker keeps its process (and model) between steps; a GPU worker exits after one (see below).
        remotes = {False: ray.remote(compute_step), True: ray.remote(max_calls=1)(compute_step_on_gpu)}
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        running: dict[Any, Step] = {}
        finished: set[str] = set()
        timings: list[StepTiming] = []
        try:
            while True:
                plan = self.planner.plan()
                returned = finished & plan.keys()
                if returned:
                    raise self._not_shared(plan[next(iter(returned))])
                for step in ready_steps(plan, {s.key for s in running.values()}):
                    processes = self._processes(step)
                    options = self._options(step, has_gpus, processes)
                    on_gpus = options["num_gpus"] > 0
                    remote = remotes[on_gpus].options(**options)
                    running[remote.remote(self.worker_config, step, processes, on_gpus)] = step
                    self.console.print(f"[dim]   start[/] {step.kind} {escape(step.name)}")
                if not running:
                    if plan:
                        names = ", ".join(f"{s.kind} {s.name}" for s in list(plan.values())[:3])
                        raise AdamergexError(f"steps planned but none can start (inputs never sealed): {names}")
                    return timings
                done, _ = ray.wait(list(running), num_returns=1)
                done, _ = ray.wait(list(running), num_returns=len(running), timeout=0)  # and any finished since
                for ref in done:
                    step = running.pop(ref)
                    timings += self._collect(ray, ref, step)
                    finished.add(step.key)
        finally:
            for ref in running:  # stopped early (an error, an interrupt): the steps already running are dropped
                ray.cancel(ref)

    def _prepare_cache(self) -> None:
        """Create the cache (refusing an unwritable one) and sweep leftovers of killed runs, once, here."""
        from adamergex.pipeline.cache import StepCache

        def report(line: str) -> None:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

        StepCache(self.config.output / "cache", report=report).prepare()

    def _note_single_process_training(self) -> None:
        """Say so where a training kind reserves several GPUs: its steps train in one process on one of them."""
        for kind, step_class in STEP_KINDS.items():
            if not issubclass(step_class, Training):
                continue
            gpus = self.config.executor.resources_for(kind).num_gpus
            if gpus is not None and gpus > 1:
                self.console.print(
                    f"note: {kind} steps reserve {gpus:g} GPUs each but train in one process "
                    "(only evaluation steps run data-parallel)",
                    markup=False,
                    highlight=False,
                )

    def _processes(self, step: Step) -> int:
        """How many data-parallel processes compute ``step`` (its kind's ``processes``; 1 but for evaluations)."""
        return self.config.executor.resources_for(step.kind).processes_for(step.kind)

    def _options(self, step: Step, has_gpus: bool, processes: int) -> dict[str, Any]:
        """Ray task options of ``step``: its kind's configured resources, GPUs by default where there are (one
        per process of a data-parallel step)."""
        wanted = self.config.executor.resources_for(step.kind)
        default_gpus = float(processes) if has_gpus and step.gpu else 0.0
        gpus = wanted.num_gpus if wanted.num_gpus is not None else default_gpus
        options: dict[str, Any] = {"num_cpus": wanted.num_cpus, "num_gpus": gpus, "name": f"{step.kind}:{step.name}"}
        if wanted.memory_gib is not None:
            options["memory"] = int(wanted.memory_gib * 2**30)
        return options

    def _collect(self, ray: Any, ref: Any, step: Step) -> list[StepTiming]:
        """A finished task's timings; a failed step stops the run with the worker's error."""
        try:
            timings: list[StepTiming] = ray.get(ref)
        except ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, AdamergexError):  # a user error: its one line, naming the step
                cause.args = (f"{step.kind} step {step.name} (on a Ray worker): {cause}",)
                raise cause from None
            raise
        except ray.exceptions.RayError as error:  # the worker died (out of memory, a lost node) after retries
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise AdamergexError(f"{step.kind} step {step.name} failed on Ray: {reason}") from None
        for timing in timings:
            where = f"{timing.seconds:.1f} s, {timing.worker}"
            self.console.print(f"[dim]    done[/] {timing.kind} {escape(timing.name)} ({where})")
        return timings

    def _not_shared(self, step: Step) -> AdamergexError:
        return AdamergexError(
            f"{step.kind} step {step.name} finished on a Ray worker but is not sealed in {self.config.output}: "
            "the output folder must be on a filesystem every Ray node shares, at the same path"
        )


#: This worker process's pipeline (config JSON, Pipeline): a worker that computes several steps of one run
#: loads the base model once (Ray reuses a worker process for CPU tasks).
_worker: tuple[str, Pipeline] | None = None


def compute_step(config_json: str, step: Step, processes: int = 1, on_gpus: bool = False) -> Sequence[StepTiming]:
    """A Ray task: compute ``step`` of the run ``config_json`` describes, as the in-process run would; with
    several ``processes``, data-parallel in processes launched for it (one per GPU Ray reserved when
    ``on_gpus``, else on CPUs: :mod:`adamergex.pipeline.sharded_step`)."""
    global _worker
    if processes > 1:
        from adamergex.pipeline.sharded_step import launch

        return launch(config_json, step, processes, gpus=on_gpus)
    if _worker is None or _worker[0] != config_json:
        config = ExperimentConfig.model_validate_json(config_json)
        _worker = (config_json, Pipeline(config, progress=False, console=Console(stderr=True)))
    pipeline = _worker[1]
    before = len(pipeline.log.timings)
    with torch_threads(pipeline.config.executor.threads_or_default()):
        pipeline.run_step(step)
    return pipeline.log.timings[before:]


def compute_step_on_gpu(config_json: str, step: Step, processes: int = 1, on_gpus: bool = True) -> Sequence[StepTiming]:
    """:func:`compute_step` in a worker that exits after it (``max_calls=1``, Ray's own default for GPU tasks):
    Ray may hand a reused worker another GPU than the one its CUDA context and loaded model live on."""
    return compute_step(config_json, step, processes, on_gpus)
