"""``adamergex run``: the experiment graph from text to a results table, every step cached by its inputs.

    reference corpus ─► train Rs, Rt (one per language, shared by every task)
    task data (src) ──► train T; (target data ─► train target-ft, where requested)
    T, Rt, Rs ────────► merge per method (and per t while tuning) ─► evaluate ─► report

Each step's folder is keyed by the hash of its settings and of the keys of the steps it reads, so a rerun skips
finished steps, a changed setting reruns exactly what depends on it, and a killed training step resumes from its
last checkpoint (checkpoints live outside the step folder until the step is sealed).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import socket
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from adamergex.adapters.types import KIND_NAMES
from adamergex.errors import AdamergexError
from adamergex.files import atomic_write_text
from adamergex.pipeline.analysis import ScoreRow, analyse
from adamergex.pipeline.cache import StepCache, step_key
from adamergex.pipeline.config import SMALL_DEV, ExperimentConfig, ReferenceAblationSpec, ReferenceSpec, TaskSpec
from adamergex.pipeline.methods import METHODS, MergeJob, MethodSpec
from adamergex.pipeline.predictions import Scored, from_eval_record, to_csv
from adamergex.pipeline.report import PREDICTIONS, RECORDS, RUN, write_report
from adamergex.pipeline.tuning import information_maximisation, search_t

if TYPE_CHECKING:
    from adamergex.evaluation.sharding import Shard

SELECTIONS = {"source": "source-dev", "target": "target-dev", "unlabelled": "unlabelled"}
#: The step kinds whose folder holds an ``adapter`` another step reads (by key).
ADAPTER_STEPS = ("reference", "task", "merge")


@dataclass(frozen=True)
class PlannedStep:
    """A step a dry run would execute: its kind (reference, task, merge, eval), cache key, label and the settings
    its key hashes (what an estimate of its cost, or an executor, reads)."""

    kind: str
    key: str
    name: str
    inputs: dict[str, Any]


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
    """What a run did: step names executed, found in the cache, or (dry run) planned, with the planned steps'
    settings in ``plan`` (each step once, however many methods read it), and the time of each computed step."""

    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    plan: dict[str, PlannedStep] = field(default_factory=dict)
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

    def note(self, kind: str, key: str, name: str, state: str) -> bool:
        """Record that step ``key`` was executed or found in the cache; False when this run has noted it already
        (a step read by several methods, or computed and then read again, counts once)."""
        if key in self._noted:
            return False
        self._noted.add(key)
        getattr(self, state).append(f"{kind}:{name}")
        return True

    def add_planned(self, step: PlannedStep) -> bool:
        """Record ``step``; False when a step with its key is planned already."""
        if step.key in self.plan:
            return False
        self.plan[step.key] = step
        self.planned.append(f"{step.kind}:{step.name}")
        return True


@dataclass
class RunRecords:
    """Everything the report is built from: per-item predictions (``predictions.csv``) and the rest
    (``records.json``: t curves, diagnostics, notes, and ``info`` — tasks, labels, majority class, settings)."""

    scored: list[Scored] = field(default_factory=list)
    curves: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    training: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "info": self.info,
            "curves": self.curves,
            "diagnostics": self.diagnostics,
            "notes": self.notes,
            "training": self.training,
        }

    @property
    def rows(self) -> list[ScoreRow]:
        """Scores per method and language, pooled over seeds (as in the report)."""
        return analyse(self.scored, self.info, resamples=200).scores if self.scored else []


_TASK_KIND_NAMES = {"multiple_choice": "classification", "generation": "generation"}


class _Undecided(Exception):
    """A frontier plan's t search reached a dev score that is not sealed yet."""


@dataclass
class _TaskRun:
    """One task for one adapter kind and seed: what its methods share while they are scored."""

    records: RunRecords
    adapter: str
    seed: int
    task: TaskSpec
    references: dict[str, tuple[str, Path]]
    task_adapter: tuple[str, Path] | None
    trained: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.trained = {"task": self.task_adapter, "target-ft": {}}

    def add(
        self, method: str, lang: str, result: dict[str, Any] | None, t: float | None = None, selection: str = ""
    ) -> None:
        """Record a result's per-item predictions (nothing in a dry run, where ``result`` is None)."""
        if result is not None:
            scored = from_eval_record(
                result,
                task=self.task.name,
                kind=self.adapter,
                method=method,
                lang=lang,
                seed=self.seed,
                t=t,
                selection=selection,
            )
            self.records.scored.append(scored)


class Pipeline:
    """Runs one :class:`ExperimentConfig`; ``dry_run`` lists the steps and whether each is cached.

    A dry run plans what a whole run would compute, assuming the costliest outcome where a choice depends on
    results not computed yet (t tuned on dev scores). With ``frontier`` it plans only what is decided: a t search
    uses the dev scores already sealed and plans the next evaluations it needs, and nothing downstream of a t
    not chosen yet — the steps an executor may start (each once its inputs are sealed).
    """

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
        self.device = device
        self.dry_run = dry_run or frontier
        self.frontier = frontier
        self.console = console or Console(stderr=True)
        self.progress = progress
        self.cache = StepCache(config.output / "cache", read_only=self.dry_run, report=self._report)
        self.log = StepLog()
        self.training: dict[str, dict[str, Any]] = {}
        self.training_times: dict[str, float] = {}
        self._base: Any = None

    # -- shared resources -------------------------------------------------------------------------------------
    @property
    def base(self) -> Any:
        """The base model, loaded once per run on first use."""
        if self._base is None:
            from adamergex.models import load_base_model

            self.console.print(f"loading base model {self.config.base_model} …")
            self._base = load_base_model(self.config.base_model, device=self.device)
        return self._base

    def _report(self, line: str) -> None:
        """One unwrapped console line from the cache (a damaged entry, a wait for another run)."""
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _note(self, kind: str, key: str, name: str, state: str) -> None:
        if self.log.note(kind, key, name, state) and state != "executed":
            self.console.print(f"[dim]{state:>8}[/] {kind} {name}")

    def _plan(self, kind: str, key: str, name: str, inputs: dict[str, Any]) -> None:
        """A dry run's step: listed once, however many methods read it."""
        if self.log.add_planned(PlannedStep(kind, key, name, inputs)):
            self.console.print(f"[dim] planned[/] {kind} {name}")

    @contextlib.contextmanager
    def _timed(self, kind: str, key: str, name: str) -> Iterator[None]:
        """Record how long the step computed in the block took (only when it succeeds)."""
        started = time.perf_counter()
        yield
        worker = f"{os.getpid()}@{socket.gethostname()}"
        self.log.timings.append(StepTiming(kind, key, name, time.perf_counter() - started, worker))

    # -- training ---------------------------------------------------------------------------------------------
    def _train(self, kind: str, name: str, values: dict[str, Any]) -> tuple[str, Path]:
        """Train one adapter as a cached step; returns (key, adapter folder)."""
        inputs = {k: v for k, v in values.items() if k not in {"out", "checkpoint_dir", "resume", "force"}}
        key = step_key(kind, inputs)
        with self.cache.claim(kind, key, name) as found:
            if found is not None:
                self._note(kind, key, name, "cached")
                self._record_training(kind, values, found)
                return key, found / "adapter"
            if self.dry_run:
                self._plan(kind, key, name, inputs)
                return key, self.cache.path(kind, key) / "adapter"
            with self._timed(kind, key, name):
                self._train_step(kind, name, key, inputs, values)
        self._note(kind, key, name, "executed")
        self._record_training(kind, values, self.cache.path(kind, key))
        return key, self.cache.path(kind, key) / "adapter"

    def _record_training(self, kind: str, values: dict[str, Any], folder: Path) -> None:
        """Keep what the report shows of a trained adapter: losses before and after, and its loss curve (in the
        records), and its training time (a fact of the machine that trained it: in ``run.json``)."""
        from adamergex.training.log import LOG_FILE, read_training_log

        summary = json.loads((folder / "training.json").read_text())
        log_path = folder / "adapter" / LOG_FILE
        curve = [
            {k: r[k] for k in ("step", "loss", "validation_loss") if r.get(k) is not None}
            for r in (read_training_log(log_path) if log_path.is_file() else [])
        ]
        role = (
            "reference"
            if kind == "reference"
            else ("task" if values["lang"] == self.config.source_lang else "target-ft")
        )
        name = f"{role}/{values['adapter']}/{values['lang']}/seed{values['seed']}"
        self.training_times[name] = summary.pop("wall_time_s")
        self.training[name] = {
            "role": role,
            "adapter": values["adapter"],
            "lang": values["lang"],
            "seed": values["seed"],
            "data": values["data"],
            **summary,
            "curve": curve,
        }

    def _train_step(self, kind: str, name: str, key: str, inputs: dict[str, Any], values: dict[str, Any]) -> None:
        from adamergex.training.config import TrainingConfig
        from adamergex.training.trainer import train_adapter

        checkpoints = self.config.output / "checkpoints" / f"{kind}-{key[:16]}"
        resume = checkpoints.is_dir() and any(p.name.startswith("step-") for p in checkpoints.iterdir())
        self.console.print(f"[bold]train[/] {kind} {name}" + (" (resuming)" if resume else ""))
        with self.cache.produce(kind, key, inputs) as folder:
            settings = TrainingConfig.build(
                {**values, "out": folder / "adapter", "checkpoint_dir": checkpoints, "resume": resume}
            )
            result = train_adapter(settings, base=self.base, progress=self.progress)
            summary = {
                "steps": result.steps,
                "train_loss": result.train_loss,
                "initial_validation_loss": result.initial_validation_loss,
                "validation_loss": result.validation_loss,
                "wall_time_s": result.wall_time_s,
            }
            (folder / "training.json").write_text(json.dumps(summary, indent=2))
        shutil.rmtree(checkpoints, ignore_errors=True)

    def _training_values(self, adapter: str, seed: int) -> dict[str, Any]:
        return {"base": self.config.base_model, "adapter": adapter, "seed": seed}

    def reference_adapter(
        self, adapter: str, lang: str, seed: int, reference: ReferenceSpec | None = None
    ) -> tuple[str, Path]:
        """The reference adapter of ``lang`` on the run's reference source (or on ``reference``, an ablation's)."""
        main = reference is None
        reference = reference or self.config.reference
        values = {
            **self._training_values(adapter, seed),
            **self.config.training.settings("reference", adapter),
            "data": f"reference:{reference.source}",
            "lang": lang,
            "data_options": dict(reference.options),
        }
        name = f"{adapter}/{lang}/seed{seed}" + ("" if main else f" ({reference.source})")
        return self._train("reference", name, values)

    def task_adapter(self, adapter: str, task: TaskSpec, lang: str, seed: int) -> tuple[str, Path]:
        values = {
            **self._training_values(adapter, seed),
            **self.config.training.settings("task", adapter),
            **(self.config.training.settings("target_ft", adapter) if lang != self.config.source_lang else {}),
            "data": f"task:{task.name}",
            "lang": lang,
            "limit": task.train_size,
            "task_split": task.train_split,
            "protocol": self.config.protocol,
            "max_text_tokens": task.max_text_tokens,
            "data_options": dict(task.options),
        }
        return self._train("task", f"{task.name}/{adapter}/{lang}/seed{seed}", values)

    # -- merging ----------------------------------------------------------------------------------------------
    def merged_adapter(
        self, method: str, adapter: str, parts: dict[str, tuple[str, Path]], t: float, label: str
    ) -> tuple[str, Path]:
        """A cached merge of the trained adapters for ``method`` (and ``t``), built by the method's table entry.

        At t = 0 every method with a t gives back the task adapter (ΔW_T, l_T), so its folder is reused.
        """
        spec = METHODS[method]
        if spec.takes_t and t == 0.0:
            return parts["task"]
        inputs = self._merge_inputs(method, adapter, parts, t)
        key = step_key("merge", inputs)
        with self.cache.claim("merge", key, label) as found:
            if found is not None:
                self._note("merge", key, label, "cached")
                return key, found / "adapter"
            if self.dry_run:
                self._plan("merge", key, label, inputs)
                return key, self.cache.path("merge", key) / "adapter"
            with self._timed("merge", key, label):
                self._merge_step(spec, adapter, parts, t, key, inputs)
        self._note("merge", key, label, "executed")
        return key, self.cache.path("merge", key) / "adapter"

    def _merge_inputs(self, method: str, adapter: str, parts: dict[str, tuple[str, Path]], t: float) -> dict[str, Any]:
        return {
            "method": method,
            "adapter": adapter,
            "t": t,
            "mode": self.config.merge_mode,
            "rank": self.config.merge_rank,
            "parts": {role: key for role, (key, _) in parts.items()},
        }

    def _merge_step(
        self,
        spec: MethodSpec,
        adapter: str,
        parts: dict[str, tuple[str, Path]],
        t: float,
        key: str,
        inputs: dict[str, Any],
    ) -> None:
        if spec.build is None:
            merges = ", ".join(name for name, entry in METHODS.items() if entry.build is not None)
            raise AdamergexError(f"method {spec.name!r} is not a merge; expected one of {merges}")
        with self.cache.produce("merge", key, inputs) as folder:
            job = MergeJob(
                kind=adapter,
                parts={role: path for role, (_, path) in parts.items()},
                t=float(t),
                out=folder / "adapter",
                lora_mode=self.config.merge_mode,
                rank=self.config.merge_rank,
                base_weights=self._base_weights,
            )
            spec.build(job)

    def _base_weights(self, names: set[str]) -> dict[str, Any]:
        """The base model's weight (float32, CPU) of each named module."""
        modules = self.base.model.named_modules()
        return {name: module.weight.detach().float().cpu() for name, module in modules if name in names}

    # -- evaluation -------------------------------------------------------------------------------------------
    def evaluate(
        self, adapter: tuple[str, Path] | None, task: TaskSpec, lang: str, split: str, limit: int | None, label: str
    ) -> dict[str, Any] | None:
        """A cached evaluation; returns the result record (None in a dry run before it exists)."""
        inputs = self._eval_inputs(adapter[0] if adapter else None, task, lang, split, limit)
        key = step_key("eval", inputs)
        with self.cache.claim("eval", key, label) as found:
            if found is not None:
                self._note("eval", key, label, "cached")
                return json.loads((found / "result.json").read_text())
            if self.dry_run:
                self._plan("eval", key, label, inputs)
                return None
            with self._timed("eval", key, label):
                return self._evaluate_step(adapter, task, lang, split, limit, label, key, inputs)

    def _eval_inputs(
        self, adapter: str | None, task: TaskSpec, lang: str, split: str, limit: int | None
    ) -> dict[str, Any]:
        return {
            "base": self.config.base_model,
            "adapter": adapter,
            "task": task.name,
            "options": task.options,
            "max_text_tokens": task.max_text_tokens,
            "lang": lang,
            "split": split,
            "limit": limit,
            "protocol": self.config.protocol,
        }

    def _evaluate_step(
        self,
        adapter: tuple[str, Path] | None,
        task: TaskSpec,
        lang: str,
        split: str,
        limit: int | None,
        label: str,
        key: str,
        inputs: dict[str, Any],
    ) -> dict[str, Any]:
        result = self.eval_result(adapter, task, lang, split, limit)
        self.seal_eval(key, inputs, result, label)
        return result

    def eval_result(
        self,
        adapter: tuple[str, Path] | None,
        task: TaskSpec,
        lang: str,
        split: str,
        limit: int | None,
        shard: Shard | None = None,
    ) -> dict[str, Any]:
        """An evaluation step's result record, computed (not cached); with ``shard``, this process's share of
        a data-parallel evaluation, whose whole result every process receives."""
        from adamergex.evaluation.adapter import evaluate_adapter
        from adamergex.evaluation.sharding import SINGLE_PROCESS

        [result] = evaluate_adapter(
            self.base,
            adapter[1] if adapter else None,
            task.name,
            [lang],
            options=task.options,
            max_text_tokens=task.max_text_tokens,
            model_name=self.config.base_model,
            split=split,
            limit=limit,
            protocol=self.config.protocol,
            batch_size=self.config.evaluation.batch_size,
            progress=self.progress,
            shard=shard or SINGLE_PROCESS,
        )
        return result.to_json()

    def seal_eval(self, key: str, inputs: dict[str, Any], result: dict[str, Any], label: str) -> None:
        """Write an evaluation step's ``result.json`` and seal it (inside the step's claim)."""
        with self.cache.produce("eval", key, inputs) as folder:
            (folder / "result.json").write_text(json.dumps(result, indent=2))
        self._note("eval", key, label, "executed")

    # -- one step at a time (what an executor's worker runs) ----------------------------------------------------
    def plan(self) -> dict[str, PlannedStep]:
        """A fresh planning pass over the graph (``dry_run`` or ``frontier``): the steps not sealed yet, by key."""
        self.log, self.training, self.training_times = StepLog(), {}, {}
        self.run()
        return dict(self.log.plan)

    def run_step(self, step: PlannedStep) -> None:
        """Compute one planned step through the code a whole run uses (the step's lock, lookup, production and
        seal), its inputs taken from the cache; a step sealed meanwhile by someone else is left as it is.

        The step is rebuilt from its settings and must hash to its planned key: a worker whose adamergex or
        config differs from the planner's is refused before it computes anything.
        """
        self.check_step(step)
        rebuild = {"reference": self._rebuild_training, "task": self._rebuild_training}
        rebuild |= {"merge": self._rebuild_merge, "eval": self._rebuild_eval}
        rebuild[step.kind](step)

    def check_step(self, step: PlannedStep) -> None:
        """Refuse a step this pipeline cannot compute: in a dry run, of an unknown kind, or hashing to another
        key than its planned one."""
        if self.dry_run:
            raise AdamergexError("a dry run computes no step")
        if step.kind not in {*ADAPTER_STEPS, "eval"}:
            raise AdamergexError(f"unknown step kind {step.kind!r}; expected one of reference, task, merge, eval")
        if step_key(step.kind, step.inputs) != step.key:
            raise AdamergexError(
                f"{step.kind} step {step.name} hashes to another key here than where it was planned "
                "(a different adamergex version?)"
            )

    def _rebuild_training(self, step: PlannedStep) -> None:
        self._train(step.kind, step.name, dict(step.inputs))

    def _rebuild_merge(self, step: PlannedStep) -> None:
        inputs = step.inputs
        parts = {role: self._sealed_adapter(key) for role, key in inputs["parts"].items()}
        if self._merge_inputs(inputs["method"], inputs["adapter"], parts, inputs["t"]) != inputs:
            raise self._not_rebuilt(step)
        self.merged_adapter(inputs["method"], inputs["adapter"], parts, inputs["t"], step.name)

    def _rebuild_eval(self, step: PlannedStep) -> None:
        adapter, task, lang, split, limit = self.eval_arguments(step)
        self.evaluate(adapter, task, lang, split, limit, step.name)

    def eval_arguments(self, step: PlannedStep) -> tuple[tuple[str, Path] | None, TaskSpec, str, str, int | None]:
        """The (adapter, task, lang, split, limit) of a planned evaluation step, its adapter taken from the cache."""
        inputs = step.inputs
        adapter = None if inputs["adapter"] is None else self._sealed_adapter(inputs["adapter"])
        where = (inputs["lang"], inputs["split"], inputs["limit"])
        tasks = [task for task in self.config.tasks if self._eval_inputs(inputs["adapter"], task, *where) == inputs]
        if not tasks:
            raise self._not_rebuilt(step)
        return adapter, tasks[0], *where

    @staticmethod
    def _not_rebuilt(step: PlannedStep) -> AdamergexError:
        return AdamergexError(
            f"{step.kind} step {step.name} cannot be rebuilt from this config: no setting of it gives the planned "
            "inputs (a different config or adamergex version?)"
        )

    def _sealed_adapter(self, key: str) -> tuple[str, Path]:
        """(key, adapter folder) of the sealed step ``key`` (a trained or merged adapter)."""
        for kind in ADAPTER_STEPS:
            found = self.cache.lookup(kind, key)
            if found is not None:
                return key, found / "adapter"
        raise AdamergexError(
            f"no sealed adapter {key[:16]} in {self.cache.root}: a step was started before its inputs were sealed"
        )

    # -- the graph --------------------------------------------------------------------------------------------
    def _t_values(self) -> list[float] | None:
        t = self.config.t
        if t == "tune":
            return None
        return [float(x) for x in (t if isinstance(t, list) else [t])]

    def run(self) -> RunRecords:
        """Run (or, in a dry run, plan) every step and return the records for the report."""
        config = self.config
        self._validate()
        self.cache.prepare()
        records = RunRecords(info=self._info())
        targets = [lang for task in config.tasks for lang in config.task_languages(task)]
        langs = list(dict.fromkeys([config.source_lang, *targets]))
        methods = list(config.methods)
        for adapter in config.adapters:
            trained: dict[int, dict[str, Any]] = {}
            for seed in config.seeds:
                references = {lang: self.reference_adapter(adapter, lang, seed) for lang in langs}
                trained[seed] = {"references": references, "tasks": {}}
                for task in config.tasks:
                    trained[seed]["tasks"][task.name] = self._run_task(
                        records, adapter, seed, task, references, methods
                    )
            self._noise_floor(records, adapter, langs, trained)
        records.training = dict(self.training)
        return records

    def _info(self) -> dict[str, Any]:
        """What the report needs besides the predictions: tasks, labels, settings, majority classes."""
        from adamergex.data.tasks import get_task

        config = self.config
        headline = SELECTIONS[config.tuning.dev] if config.t == "tune" else "fixed"
        tasks: dict[str, Any] = {}
        for spec in config.tasks:
            task = get_task(spec.name)
            tasks[spec.name] = {
                "task_kind": task.kind,
                "metrics": list(task.metrics),
                "labels": list(getattr(task, "labels", None) or ()),
            }
        header = (
            f"Base model `{config.base_model}`, source language `{config.source_lang}`, protocol "
            f"`{config.protocol}`, seeds {config.seeds}, merge mode `{config.merge_mode}`."
        )
        return {
            "name": config.name,
            "header": header,
            "source_lang": config.source_lang,
            "headline": headline,
            "methods": self._report_methods(),
            "tasks": tasks,
            "selections": self._selection_notes(),
            "majority": {},
        }

    def _report_methods(self) -> list[str]:
        """The report's row order: the method table, each reference ablation right after its method."""
        ablations = self.config.reference_ablations
        return [
            name
            for method in METHODS
            for name in [method, *(f"{method}@{a.source}" for a in ablations if method in a.methods)]
        ]

    def _selection_notes(self) -> dict[str, str]:
        config, tuning = self.config, self.config.tuning
        if config.t != "tune":
            return {"fixed": f"t fixed at {', '.join(f'{t:g}' for t in self._t_values() or [])} (no selection)."}
        notes = {}
        for spec in config.tasks:
            settings = [tuning.dev, *(s for s in tuning.compare if s != tuning.dev)]
            for setting in settings:
                role = "the headline" if setting == tuning.dev else "a comparison"
                chosen_on = self._chosen_on(spec, setting)
                notes[f"{spec.name}/{SELECTIONS[setting]}"] = f"{spec.name}: t {chosen_on}; {role}."
        fixed = [t for spec in tuning.fixed_sets() for t in spec.t]
        if fixed:
            values = ", ".join(f"{t:g}" for t in sorted(set(fixed)))
            notes["fixed"] = (
                f"Rows marked (t = …) evaluate a fixed t on the test set ({values}): t = 1 is the "
                "method's own value, with no selection at all."
            )
        return notes

    def _chosen_on(self, task: TaskSpec, setting: str, lang: str = "target") -> str:
        source = self.config.source_lang
        if setting == "source":
            return (
                f"chosen on the {source} dev split (n={task.dev_size}), the merge scored in the source "
                "language: strict zero-shot (no target-language data); this objective favours small t"
            )
        if setting == "unlabelled":
            return (
                f"chosen label-free on {lang} dev inputs (n={task.dev_size}; labels unused) by information "
                "maximisation H(mean p) − mean H(p)"
            )
        return (
            f"chosen on a labelled {lang}-language dev split (n={task.dev_size}): few-shot, uses target-language labels"
        )

    def _validate(self) -> None:
        """Refuse, before any work, a task that lacks one of the languages or splits the run needs."""
        from adamergex.data.tasks import get_task

        self.splits: dict[str, dict[str, str]] = {}
        tuning = self.config.tuning
        for spec in self.config.tasks:
            task = get_task(spec.name)
            for lang in (self.config.source_lang, *self.config.task_languages(spec)):
                task.check_language(lang)
            try:
                splits = {
                    "train": spec.train_split,
                    "dev": spec.resolve_split("dev", task.splits),
                    "test": spec.resolve_split("test", task.splits),
                }
            except ValueError as error:
                raise AdamergexError(str(error)) from None
            for split in splits.values():
                task.check_split(split)
            self.splits[spec.name] = splits
            if "unlabelled" in (tuning.dev, *tuning.compare) and task.kind != "multiple_choice":
                raise AdamergexError(
                    f"tuning.dev unlabelled needs a multiple-choice task (choice likelihoods); "
                    f"{spec.name} is {task.kind}"
                )

    def _run_task(
        self,
        records: RunRecords,
        adapter: str,
        seed: int,
        task: TaskSpec,
        references: dict[str, tuple[str, Path]],
        methods: list[str],
    ) -> dict[str, Any]:
        """Every method on every target language of ``task`` for one adapter kind and seed (and on the source
        language for the methods scored there); returns the task adapters trained (``task`` and ``target-ft`` per
        language) for the diagnostics."""
        source = self.config.source_lang
        chosen = [spec for name, spec in METHODS.items() if name in methods]
        needs_task = any("task" in spec.needs for spec in chosen)
        task_adapter = self.task_adapter(adapter, task, source, seed) if needs_task else None
        run = _TaskRun(records, adapter, seed, task, references, task_adapter)
        applicable = [spec for spec in chosen if self._applies(records, spec, adapter, task)]
        for spec in applicable:
            if spec.in_source:
                self._score(run, spec, source)
        for lang in self.config.task_languages(task):
            for spec in applicable:
                if self._in_scope(spec.name, lang, seed, adapter):
                    self._score(run, spec, lang)
        for ablation in self.config.reference_ablations:
            self._score_ablation(run, ablation)
        return run.trained

    def _in_scope(self, method: str, lang: str, seed: int, adapter: str) -> bool:
        scope = self.config.scope.get(method)
        return scope is None or scope.covers(lang, seed, adapter)

    def _score_ablation(self, run: _TaskRun, ablation: ReferenceAblationSpec) -> None:
        """The ablation's merges, with reference adapters trained on its own text source, as ``method@source``."""
        langs = [lang for lang in self.config.task_languages(run.task) if ablation.covers(lang, run.seed, run.adapter)]
        if not langs or run.task_adapter is None:
            return
        source = self.config.source_lang
        references = {
            lang: self.reference_adapter(run.adapter, lang, run.seed, ablation.reference) for lang in [source, *langs]
        }
        for method in ablation.methods:
            spec = METHODS[method]
            if run.adapter not in spec.adapter_kinds:
                continue
            for lang in langs:
                self._score_merges(run, spec, lang, references, f"{method}@{ablation.source}")

    def _applies(self, records: RunRecords, spec: MethodSpec, adapter: str, task: TaskSpec) -> bool:
        """Whether ``spec`` applies to this adapter kind and task; a note says why not."""
        from adamergex.data.tasks import get_task

        if adapter not in spec.adapter_kinds:
            kinds = " and ".join(KIND_NAMES[kind] for kind in spec.adapter_kinds)
            records.notes.append(f"{spec.name} applies to {kinds} adapters only; skipped for {KIND_NAMES[adapter]}")
            return False
        task_kind = get_task(task.name).kind
        if task_kind not in spec.task_kinds:
            kinds = " and ".join(_TASK_KIND_NAMES[kind] for kind in spec.task_kinds)
            records.notes.append(f"{spec.name} applies to {kinds} tasks only; skipped for {task.name}")
            return False
        return True

    def _score(self, run: _TaskRun, spec: MethodSpec, lang: str) -> None:
        """Score ``spec`` in ``lang``: evaluate what its table entry says it scores."""
        scorers = {
            "base model": self._score_base,
            "majority label": self._score_majority,
            "task adapter": self._score_task_adapter,
            "target task adapter": self._score_target_ft,
            "merge": self._score_merges,
        }
        scorers[spec.scores](run, spec, lang)

    def _test(self, run: _TaskRun, adapter: tuple[str, Path] | None, lang: str, label: str) -> dict[str, Any] | None:
        task = run.task
        return self.evaluate(adapter, task, lang, self.splits[task.name]["test"], task.test_size, label)

    def _score_base(self, run: _TaskRun, spec: MethodSpec, lang: str) -> None:
        run.add(spec.name, lang, self._test(run, None, lang, f"{spec.name}/{lang}"))

    def _score_task_adapter(self, run: _TaskRun, spec: MethodSpec, lang: str) -> None:
        run.add(spec.name, lang, self._test(run, run.task_adapter, lang, f"{spec.name}/{lang}"))

    def _score_majority(self, run: _TaskRun, spec: MethodSpec, lang: str) -> None:
        run.add(spec.name, lang, self._majority(run.records, run.task, lang, run.seed))

    def _score_merges(
        self,
        run: _TaskRun,
        spec: MethodSpec,
        lang: str,
        references: dict[str, tuple[str, Path]] | None = None,
        name: str | None = None,
    ) -> None:
        """The merge at each t to report (fixed, or chosen per selection setting); ``references`` and ``name``
        replace the run's reference adapters and the method's name in a reference ablation."""
        task, source = run.task, self.config.source_lang
        references = references or run.references
        name = name or spec.name
        assert run.task_adapter is not None  # every merge needs the task adapter
        parts = {
            "task": run.task_adapter,
            "reference_target": references[lang],
            "reference_source": references[source],
        }
        for t, selection in self._choose_t(run.records, spec.name, run.adapter, run.seed, task, lang, parts, name):
            merged = self.merged_adapter(spec.name, run.adapter, parts, t, f"{name}/{lang}/t={t:g}")
            run.add(name, lang, self._test(run, merged, lang, f"{name}/{lang}/t={t:g}"), t, selection)
            if name == spec.name:
                self._record_cross(run.records, merged[1], f"cross/{task.name}/{lang}/seed{run.seed}/t={t:g}")

    def _score_target_ft(self, run: _TaskRun, spec: MethodSpec, lang: str) -> None:
        """Train the task adapter on target-language data, score it, and diagnose the gap assumption with it."""
        task, adapter, source = run.task, run.adapter, self.config.source_lang
        target_ft = self.task_adapter(adapter, task, lang, run.seed)
        run.trained["target-ft"][lang] = target_ft
        run.add(spec.name, lang, self._test(run, target_ft, lang, f"{spec.name}/{lang}"))
        if not self.dry_run and run.task_adapter is not None:
            summary = self._diagnose(
                run.task_adapter[1], target_ft[1], run.references[lang][1], run.references[source][1]
            )
            run.records.diagnostics[f"{task.name}/{adapter}/{lang}/seed{run.seed}"] = {
                "type": "alignment",
                "task": task.name,
                "adapter": adapter,
                "lang": lang,
                "seed": run.seed,
                **summary,
            }

    def _majority(self, records: RunRecords, task: TaskSpec, lang: str, seed: int) -> dict[str, Any] | None:
        """The majority-class "method": the training split's most frequent label predicted for every test item."""
        from adamergex.data.tasks import get_task

        spec = get_task(task.name)
        if self.dry_run:
            return None
        protocol, options = self.config.protocol, dict(task.options)
        key = f"{task.name}/seed{seed}"
        if key not in records.info["majority"]:
            train = spec.load(self.config.source_lang, task.train_split, limit=task.train_size, seed=seed, **options)
            golds = [spec.render(item, protocol).choice_index for item in train]
            counts = Counter(golds)
            label = min(counts, key=lambda value: (-counts[value], value))  # ties: the smallest label index
            records.info["majority"][key] = {"label": label, "count": golds.count(label), "n": len(golds)}
        label = records.info["majority"][key]["label"]
        items = spec.load(lang, self.splits[task.name]["test"], limit=task.test_size, **options)
        golds = [spec.render(item, protocol).choice_index for item in items]
        return {
            "predictions": [
                {"id": item.id, "prediction": label, "gold": gold} for item, gold in zip(items, golds, strict=True)
            ]
        }

    def _record_cross(self, records: RunRecords, merged: Path, key: str) -> None:
        path = merged.parent / "cross_vs_additive.json"
        if self.dry_run or not path.is_file():
            return
        values = list(json.loads(path.read_text()).values())
        records.diagnostics[key] = {
            "type": "cross",
            "modules": len(values),
            "relative_difference_median": statistics.median(values),
            "relative_difference_max": max(values),
        }

    def _choose_t(
        self,
        records: RunRecords,
        method: str,
        adapter: str,
        seed: int,
        task: TaskSpec,
        lang: str,
        parts: dict[str, tuple[str, Path]],
        name: str,
    ) -> list[tuple[float, str]]:
        """The (t, selection) pairs to report for ``method`` (reported as ``name``): fixed ones, or one per
        selection setting, plus the fixed t values of ``tuning.fixed_sets()`` that cover it."""
        fixed = self._t_values()
        if fixed is not None:
            return [(t, "fixed") for t in fixed]
        tuning = self.config.tuning
        chosen = []
        for setting in dict.fromkeys([tuning.dev, *tuning.compare]):
            t = self._tune(records, method, adapter, seed, task, lang, parts, setting, name)
            if t is not None:
                chosen.append((t, SELECTIONS[setting]))
        fixed_t = [t for spec in tuning.fixed_sets() if spec.covers(lang, name, adapter) for t in spec.t]
        chosen += [(float(t), "fixed") for t in dict.fromkeys(fixed_t)]
        return chosen

    def _tune(
        self,
        records: RunRecords,
        method: str,
        adapter: str,
        seed: int,
        task: TaskSpec,
        lang: str,
        parts: dict[str, tuple[str, Path]],
        setting: str,
        name: str,
    ) -> float | None:
        """t chosen for ``method`` (reported as ``name``) on ``lang`` in one selection setting (source, target or
        unlabelled dev); None in a frontier plan while the dev scores the choice needs are not all sealed."""
        tuning = self.config.tuning
        dev_lang = self.config.source_lang if setting == "source" else lang
        dev = self.splits[task.name]["dev"]
        if self.dry_run:  # plan every grid point; assume the costliest choice (a t ≠ 0 merge is scored on test)
            scored = [
                self.evaluate(
                    self.merged_adapter(method, adapter, parts, float(t), f"{name}/{lang}/t={t:g}"),
                    task,
                    dev_lang,
                    dev,
                    task.dev_size,
                    f"tune/{name}/{lang}/t={t:g}",
                )
                for t in tuning.grid
            ]
            if not self.frontier:
                return float(max(tuning.grid, key=abs))
            if any(result is None for result in scored):
                return None

        def objective(t: float) -> float:
            merged = self.merged_adapter(method, adapter, parts, t, f"{name}/{lang}/t={t:g}")
            result = self.evaluate(merged, task, dev_lang, dev, task.dev_size, f"tune/{name}/{lang}/t={t:g}")
            if result is None:  # a frontier plan: the search needs a dev score not sealed yet (now planned)
                raise _Undecided
            if setting == "target" and result["n"] < SMALL_DEV and not tuning.force_small_dev:
                raise AdamergexError(
                    f"the {dev_lang} dev split of {task.name} has {result['n']} items; tuning "
                    f"on fewer than {SMALL_DEV} selects t on noise (set "
                    "tuning.force_small_dev)"
                )
            if setting == "unlabelled":
                return information_maximisation([p["loglikelihoods"] for p in result["predictions"]])
            return float(next(iter(result["metrics"].values()))["value"])

        try:
            search = search_t(objective, tuning.grid, refine_rounds=tuning.refine_rounds, budget=tuning.budget)
        except _Undecided:
            return None
        key = f"{task.name}/{adapter}/{name}/{SELECTIONS[setting]}/seed{seed}"
        records.curves.setdefault(key, {})[lang] = search.sorted_curve()
        chosen = f"{search.best_t:g} (objective {search.best_score:.3f})"
        self.console.print(f"t for {name}/{lang} ({setting} dev): {chosen}")
        return search.best_t

    def _diagnose(self, task: Path, target_ft: Path, reference_target: Path, reference_source: Path) -> dict[str, Any]:
        from adamergex.adapters.io import read_adapter
        from adamergex.pipeline.diagnostics import gap_alignment, summarize

        adapters = [read_adapter(p) for p in (task, target_ft, reference_target, reference_source)]
        return summarize(gap_alignment(*adapters))

    def _noise_floor(
        self, records: RunRecords, adapter: str, langs: list[str], trained: dict[int, dict[str, Any]]
    ) -> None:
        """Replicate cosines: the reference gap Rt − Rs (and the task gap, where target-ft exists) across seeds.

        With one seed and ``diagnostics.noise_floor: replicate``, the reference adapters of one more seed are
        trained for the purpose (they are what a second seed would train, so a later two-seed run reuses them).
        """
        mode = self.config.diagnostics.noise_floor
        seeds = sorted(trained)
        if mode == "off" or (len(seeds) < 2 and mode == "auto"):
            if mode == "auto" and any(d.get("type") == "alignment" for d in records.diagnostics.values()):
                records.notes.append(
                    "no noise floor for the diagnostic: one seed (set diagnostics.noise_floor: "
                    "replicate, or run two seeds)"
                )
            return
        if len(seeds) < 2:
            extra = max(seeds) + 1
            trained[extra] = {
                "references": {lang: self.reference_adapter(adapter, lang, extra) for lang in langs},
                "tasks": {},
            }
            seeds.append(extra)
        if self.dry_run:
            return
        source = self.config.source_lang
        for first, second in itertools.pairwise(seeds):
            a, b = trained[first], trained[second]
            for lang in langs[1:]:
                summary = self._diagnose(
                    a["references"][source][1],
                    a["references"][lang][1],
                    b["references"][lang][1],
                    b["references"][source][1],
                )
                records.diagnostics[f"reference-gap/{adapter}/{lang}/seeds{first}-{second}"] = {
                    "type": "reference_stability",
                    "adapter": adapter,
                    "lang": lang,
                    "seeds": [first, second],
                    **summary,
                }
            for task_name, task_a in a["tasks"].items():
                task_b = b["tasks"].get(task_name)
                if not task_b or task_a["task"] is None:
                    continue
                for lang, target_a in task_a["target-ft"].items():
                    target_b = task_b["target-ft"].get(lang)
                    if target_b is None:
                        continue
                    summary = self._diagnose(task_a["task"][1], target_a[1], target_b[1], task_b["task"][1])
                    records.diagnostics[f"task-gap/{task_name}/{adapter}/{lang}/seeds{first}-{second}"] = {
                        "type": "task_stability",
                        "task": task_name,
                        "adapter": adapter,
                        "lang": lang,
                        "seeds": [first, second],
                        **summary,
                    }


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
    pipeline = Pipeline(config, dry_run=dry_run, progress=progress, console=console)
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
        "wall_time_s": time.perf_counter() - started,
        "training_time_s": pipeline.training_times,
        "log": asdict(pipeline.log),
    }
    atomic_write_text(run_dir / RUN, json.dumps(facts, indent=2, ensure_ascii=False), force=True)
    return pipeline, records, write_report(run_dir)
