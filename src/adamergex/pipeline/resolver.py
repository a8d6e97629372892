"""Resolving a step: claim it in the cache → a hit is read back; a miss is planned (a dry run) or computed and
sealed → logged. The sequence is :meth:`Resolver.resolve`, once; a :class:`Planner` (read-only; with
``frontier``, only what is decided) and a :class:`Computer` differ in what a miss does, in how a t that depends on
unsealed dev scores is chosen, and in whether the records are assembled.

The cache is the only state: a planner run after a computer (or beside one, on another machine) sees exactly
the steps sealed so far.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console

from adamergex.errors import AdamergexError
from adamergex.pipeline.cache import StepCache
from adamergex.pipeline.config import ExperimentConfig
from adamergex.pipeline.records import Records, RecordSink
from adamergex.pipeline.steps import ADAPTER_KINDS, Step, Undecided


@dataclass(frozen=True)
class StepTiming:
    """A step this run computed: how long it took and in which process (``pid@host``)."""

    kind: str
    key: str
    name: str
    seconds: float
    worker: str


@dataclass
class StepLog:
    """What a run did: step names executed, found in the cache, or (dry run) planned, with the planned steps in
    ``plan`` (each step once, however many methods read it), and the time of each computed step."""

    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    plan: dict[str, Step] = field(default_factory=dict)
    timings: list[StepTiming] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._noted: set[str] = set()  # not a field: run.json holds the lists above

    def absorb(self, timings: Sequence[StepTiming]) -> None:
        """Count steps an executor's workers computed for this run as executed here, not as cache hits."""
        names = [f"{t.kind}:{t.name}" for t in timings]
        elsewhere = set(names)
        self.cached = [name for name in self.cached if name not in elsewhere]
        self.executed = [*names, *self.executed]
        self.timings = [*timings, *self.timings]

    def note(self, step: Step, state: str) -> bool:
        """Record that ``step`` was executed or found in the cache; False when this run has noted it already
        (a step read by several methods, or computed and then read again, counts once)."""
        if step.key in self._noted:
            return False
        self._noted.add(step.key)
        getattr(self, state).append(f"{step.kind}:{step.name}")
        return True

    def add_planned(self, step: Step) -> bool:
        """Record ``step``; False when a step with its key is planned already."""
        if step.key in self.plan:
            return False
        self.plan[step.key] = step
        self.planned.append(f"{step.kind}:{step.name}")
        return True

    def to_json(self) -> dict[str, Any]:
        """What ``run.json`` keeps of the log (each planned step as its JSON)."""
        return {
            "executed": self.executed,
            "cached": self.cached,
            "planned": self.planned,
            "plan": {key: step.to_json() for key, step in self.plan.items()},
            "timings": [vars(timing) for timing in self.timings],
        }


class Environment:
    """What steps compute with (:class:`~adamergex.pipeline.steps.StepEnv`): the base model, loaded once on
    first use, the sealed adapters of the cache, the run's folder and settings, the console."""

    def __init__(
        self, config: ExperimentConfig, cache: StepCache, console: Console, progress: bool, device: str | None
    ) -> None:
        self.config, self.cache, self.console = config, cache, console
        self.progress, self.device = progress, device
        self._base: Any = None

    @property
    def base(self) -> Any:
        if self._base is None:
            from adamergex.models import load_base_model

            self.console.print(f"loading base model {self.config.base_model} …")
            self._base = load_base_model(self.config.base_model, device=self.device)
        return self._base

    @property
    def output(self) -> Path:
        return self.config.output

    @property
    def batch_size(self) -> int | str:
        return self.config.evaluation.batch_size

    def adapter(self, key: str) -> Path:
        for kind in ADAPTER_KINDS:
            found = self.cache.lookup(kind, key)
            if found is not None:
                return found / "adapter"
        raise AdamergexError(
            f"no sealed adapter {key[:16]} in {self.cache.root}: a step was started before its inputs were sealed"
        )

    def say(self, line: str) -> None:
        self.console.print(line)


class Resolver:
    """The one path of a step through the cache; subclasses say what a miss does."""

    read_only: ClassVar[bool]

    def __init__(
        self, config: ExperimentConfig, *, console: Console, progress: bool = True, device: str | None = None
    ) -> None:
        self.config, self.console = config, console
        self.cache = StepCache(config.output / "cache", read_only=self.read_only, report=self._report)
        self.env = Environment(config, self.cache, console, progress, device)
        self.log = StepLog()

    def _report(self, line: str) -> None:
        """One unwrapped console line from the cache (a damaged entry, a wait for another run)."""
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def resolve(self, step: Step) -> Any:
        """The output of ``step``: read back from the cache, or what a miss gives (see the subclasses)."""
        with self.claim(step) as found:
            if found is not None:
                self.note(step, "cached")
                return step.read(found)
            return self.miss(step)

    def claim(self, step: Step) -> contextlib.AbstractContextManager[Path | None]:
        return self.cache.claim(step.kind, step.key, step.name)

    def note(self, step: Step, state: str) -> None:
        if self.log.note(step, state) and state != "executed":
            self.console.print(f"[dim]{state:>8}[/] {step.kind} {step.name}")

    def say(self, line: str) -> None:
        self.console.print(line)

    def miss(self, step: Step) -> Any:
        raise NotImplementedError

    def choose(self, search: Callable[[], float], *, survey: Callable[[], None], costliest: float) -> float | None:
        raise NotImplementedError

    def records(self) -> RecordSink:
        """Where the graph's records go."""
        raise NotImplementedError

    def compute(self, step: Step) -> None:
        """Compute one step (an executor's worker), its inputs taken from the cache; a step sealed meanwhile by
        someone else is left as it is."""
        raise NotImplementedError


class Planner(Resolver):
    """Plans every step not sealed, touching nothing (a dry run).

    Where a choice depends on results not computed yet (t tuned on dev scores), it assumes the costliest outcome;
    with ``frontier`` it plans only what is decided: a t search uses the dev scores already sealed and plans the
    next evaluations it needs, and nothing downstream of a t not chosen yet — the steps an executor may start
    (each once its inputs are sealed).
    """

    read_only = True

    def __init__(self, config: ExperimentConfig, *, frontier: bool = False, **options: Any) -> None:
        super().__init__(config, **options)
        self.frontier = frontier

    def miss(self, step: Step) -> None:
        if self.log.add_planned(step):
            self.console.print(f"[dim] planned[/] {step.kind} {step.name}")

    def choose(self, search: Callable[[], float], *, survey: Callable[[], None], costliest: float) -> float | None:
        survey()  # every grid point's merge and dev evaluation
        if not self.frontier:
            return costliest
        try:
            return search()
        except Undecided:
            return None

    def records(self) -> RecordSink:
        return RecordSink(self.config)

    def compute(self, step: Step) -> None:
        raise AdamergexError("a dry run computes no step")


class Computer(Resolver):
    """Computes every step not sealed, under its lock, and seals it."""

    read_only = False

    def miss(self, step: Step, produce: Callable[[Path], None] | None = None, *, started: float | None = None) -> Any:
        """Compute ``step`` into a temporary folder (``produce``, by default the step's own computation), seal
        it, time it (from ``started``, by default now); returns its output as read back from the cache."""
        started = time.perf_counter() if started is None else started
        with self.cache.produce(step.kind, step.key, dict(step.inputs)) as folder:
            (produce or (lambda into: step.compute(self.env, into)))(folder)
        step.sealed(self.env)
        self.log.timings.append(StepTiming(step.kind, step.key, step.name, time.perf_counter() - started, self.worker))
        self.note(step, "executed")
        return step.read(self.cache.path(step.kind, step.key))

    @property
    def worker(self) -> str:
        return f"{os.getpid()}@{socket.gethostname()}"

    def choose(self, search: Callable[[], float], *, survey: Callable[[], None], costliest: float) -> float | None:
        return search()

    def records(self) -> RecordSink:
        return Records(self.config)

    def compute(self, step: Step) -> None:
        self.resolve(step)


def make_resolver(
    config: ExperimentConfig,
    *,
    dry_run: bool = False,
    frontier: bool = False,
    console: Console,
    progress: bool = True,
    device: str | None = None,
) -> Resolver:
    """A :class:`Planner` for a dry run (``frontier``: only what is decided), else a :class:`Computer`."""
    options: dict[str, Any] = {"console": console, "progress": progress, "device": device}
    if dry_run or frontier:
        return Planner(config, frontier=frontier, **options)
    return Computer(config, **options)
