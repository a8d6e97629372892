"""``adamergex run``: the experiment graph from text to a results table, every step cached by its inputs.

The pieces: the steps (:mod:`~adamergex.pipeline.steps`, one class per kind), the graph that says which steps a
config asks for (:mod:`~adamergex.pipeline.graph`), the resolver that plans or computes each one through the
cache (:mod:`~adamergex.pipeline.resolver`) and the records assembled from what the graph emits
(:mod:`~adamergex.pipeline.records`). :class:`Pipeline` puts them together for one config; :func:`run_experiment`
runs it and writes the run's files.

Each step's folder is keyed by the hash of its settings and of the keys of the steps it reads, so a rerun skips
finished steps, a changed setting reruns exactly what depends on it, and a killed training step resumes from its
last checkpoint (checkpoints live outside the step folder until the step is sealed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from adamergex.files import atomic_write_text
from adamergex.pipeline.config import ExperimentConfig
from adamergex.pipeline.graph import ExperimentGraph
from adamergex.pipeline.predictions import to_csv
from adamergex.pipeline.records import RunRecords
from adamergex.pipeline.report import PREDICTIONS, RECORDS, RUN, write_report
from adamergex.pipeline.resolver import StepLog, StepTiming, make_resolver
from adamergex.pipeline.steps import Step
from adamergex.threads import torch_threads

__all__ = ["Pipeline", "RunRecords", "StepTiming", "run_experiment"]


class Pipeline:
    """Runs one :class:`ExperimentConfig`; ``dry_run`` lists the steps and whether each is cached, ``frontier``
    only the steps whose existence is decided (see :class:`~adamergex.pipeline.resolver.Planner`)."""

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        dry_run: bool = False,
        console: Console | None = None,
        progress: bool = True,
        frontier: bool = False,
        device: str | None = None,
    ) -> None:
        self.config = config
        self.console = console or Console(stderr=True)
        self.resolver = make_resolver(
            config, dry_run=dry_run, frontier=frontier, console=self.console, progress=progress, device=device
        )
        self.training: dict[str, dict[str, Any]] = {}
        self.training_times: dict[str, float] = {}

    @property
    def log(self) -> StepLog:
        return self.resolver.log

    @property
    def cache(self) -> Any:
        return self.resolver.cache

    @property
    def base(self) -> Any:
        """The base model, loaded once per run on first use."""
        return self.resolver.env.base

    def run(self) -> RunRecords:
        """Run (or, in a dry run, plan) every step and return the records for the report."""
        graph = ExperimentGraph(self.config)  # validates the tasks' languages and splits before any work
        self.resolver.cache.prepare()
        sink = self.resolver.records()
        graph.walk(self.resolver, sink)
        self.training, self.training_times = sink.training, sink.training_times
        return sink.finish()

    def plan(self) -> dict[str, Step]:
        """A fresh planning pass over the graph (``dry_run`` or ``frontier``): the steps not sealed yet, by key."""
        self.resolver.log = StepLog()
        self.run()
        return dict(self.log.plan)

    def run_step(self, step: Step) -> None:
        """Compute one planned step through the path a whole run uses (the step's lock, lookup, production and
        seal), its inputs taken from the cache; a step sealed meanwhile by someone else is left as it is."""
        self.resolver.compute(step)


def run_experiment(
    config: ExperimentConfig,
    *,
    dry_run: bool = False,
    progress: bool = True,
    console: Console | None = None,
    executor: str = "local",
    executed: Sequence[StepTiming] = (),
    started: float | None = None,
) -> tuple[Pipeline, RunRecords, Path | None]:
    """Run ``config`` end to end; write predictions.csv, records.json, run.json, the config and the report.

    ``records.json`` holds what the config determines (identical however the steps were executed); ``run.json``
    what this run did: the executor, the wall time since ``started``, the steps computed (``executed``: by the
    executor's workers before this pass, which then finds them in the cache) with their times, and the training
    time of each adapter.
    """
    started = time.perf_counter() if started is None else started
    threads = config.executor.threads_or_default()
    pipeline = Pipeline(config, dry_run=dry_run, progress=progress, console=console)
    with torch_threads(threads):
        records = pipeline.run()
    if dry_run:
        return pipeline, records, None
    pipeline.log.absorb(executed)
    run_dir = config.output
    atomic_write_text(run_dir / "config.json", config.model_dump_json(indent=2), force=True)
    atomic_write_text(run_dir / PREDICTIONS, to_csv(records.scored), force=True)
    atomic_write_text(run_dir / RECORDS, json.dumps(records.to_json(), indent=2, ensure_ascii=False), force=True)
    facts = {
        "executor": executor,
        "threads": threads,
        "wall_time_s": time.perf_counter() - started,
        "training_time_s": pipeline.training_times,
        "log": pipeline.log.to_json(),
    }
    atomic_write_text(run_dir / RUN, json.dumps(facts, indent=2, ensure_ascii=False), force=True)
    return pipeline, records, write_report(run_dir)
