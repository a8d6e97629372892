"""The pipeline's steps as values: one small frozen class per kind of step, and the registry of kinds.

A step is its kind, a label and its **inputs**, the settings its cache key hashes (with the keys of the steps it
reads); ``key`` is the sha256 of kind and inputs (:func:`~adamergex.pipeline.cache.step_key`), so a step is the
same step wherever it is built: by the graph (:mod:`adamergex.pipeline.graph`), or from its JSON on a worker. A
step knows the steps it reads (``upstream``), how to compute its output into a folder and read it back, and the
facts an executor or an estimate needs of its kind (submission priority, GPU by default, data parallelism, cost
class and size). Where the output goes, and whether the step is computed at all, is the resolver's business
(:mod:`adamergex.pipeline.resolver`).

Adding a kind of step is one class here and one entry in :data:`STEP_KINDS`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from adamergex.errors import AdamergexError
from adamergex.pipeline.cache import step_key

if TYPE_CHECKING:
    from adamergex.evaluation.sharding import Shard
    from adamergex.pipeline.config import ExperimentConfig, ReferenceSpec, TaskSpec

#: The settings of an ``adamergex train`` call that say where it writes, not what it trains (never hashed).
_WHERE = frozenset({"out", "checkpoint_dir", "resume", "force"})


class Undecided(Exception):
    """A value a choice depends on is not available yet (a frontier plan's t search reached an unsealed score)."""


class StepEnv(Protocol):
    """What a step computes with: the base model, the folders of sealed upstream adapters, the run's folder and
    the settings that do not change a step's output (evaluation batch size, progress bars)."""

    @property
    def base(self) -> Any: ...

    @property
    def output(self) -> Path: ...

    @property
    def batch_size(self) -> int | str: ...

    @property
    def progress(self) -> bool: ...

    def adapter(self, key: str) -> Path:
        """The adapter folder of the sealed step ``key``."""
        ...

    def say(self, line: str) -> None: ...


@dataclass(frozen=True, eq=False)
class Step:
    """A step: ``name`` labels it in logs, ``inputs`` determine it (two steps with equal inputs are one step).

    Class facts: ``kind`` (its cache folder and registry name), ``priority`` (executors submit lower first),
    ``gpu`` (reserves a GPU by default where the cluster has them), ``data_parallel`` (may run in several
    processes), ``makes_adapter`` (its folder holds an ``adapter`` another step reads).
    """

    kind: ClassVar[str]
    priority: ClassVar[int]
    gpu: ClassVar[bool] = True
    data_parallel: ClassVar[bool] = False
    makes_adapter: ClassVar[bool] = False

    name: str
    inputs: Mapping[str, Any]

    @cached_property
    def key(self) -> str:
        return step_key(self.kind, dict(self.inputs))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Step) and (other.kind, other.key) == (self.kind, self.key)

    def __hash__(self) -> int:
        return hash((self.kind, self.key))

    def upstream(self) -> tuple[str, ...]:
        """The keys of the steps this one reads (sealed before it may start)."""
        return ()

    def cost_class(self) -> str:
        """The calibration entry whose cost applies to this step."""
        raise NotImplementedError

    def units(self) -> float | None:
        """Its size in the units of its cost class; None where the inputs do not say."""
        return 0.0

    def compute(self, env: StepEnv, folder: Path) -> None:
        """Write the step's output into ``folder`` (a temporary folder the resolver seals)."""
        raise NotImplementedError

    def sealed(self, env: StepEnv) -> None:
        """After the step's folder is sealed (e.g. drop what resuming it needed)."""

    def result(self, env: StepEnv, shard: Shard | None = None) -> Any:
        """A data-parallel step's output, computed (with ``shard``, as this process's share of it), for
        :meth:`write`."""
        raise AdamergexError(f"{self.kind} step {self.name}: only evaluation steps run data-parallel")

    def write(self, folder: Path, result: Any) -> None:
        """Write a data-parallel step's output (from :meth:`result`) into ``folder``."""
        raise NotImplementedError

    def read(self, folder: Path) -> Any:
        """The output of the sealed step in ``folder``: an adapter folder, or a result record."""
        return folder / "adapter"

    @staticmethod
    def recorded_seconds(folder: Path) -> float | None:
        """The compute time the sealed step in ``folder`` recorded, if its kind records one."""
        return None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, **asdict(self)}

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (for a Ray task) as its JSON, so the receiving side hashes the inputs again."""
        return step_from_json, (self.to_json(),)


def _seconds_in(path: Path, name: str) -> float | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(name)
    except (OSError, ValueError) as error:
        raise AdamergexError(f"{path} is not readable JSON ({error})") from None
    return float(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True, eq=False)
class Training(Step):
    """An adapter trained by ``adamergex train`` with ``inputs`` as its settings; ``role`` is what the report
    calls it (reference, task, target-ft)."""

    priority: ClassVar[int] = 1
    makes_adapter: ClassVar[bool] = True

    role: str = ""

    def cost_class(self) -> str:
        return f"{self.kind}/{self.adapter_kind}"

    def units(self) -> float | None:
        steps = self.inputs.get("max_steps")
        return float(steps) if steps is not None else None

    @property
    def lang(self) -> str:
        return str(self.inputs["lang"])

    @property
    def adapter_kind(self) -> str:
        return str(self.inputs["adapter"])

    def checkpoints(self, env: StepEnv) -> Path:
        return env.output / "checkpoints" / f"{self.kind}-{self.key[:16]}"

    def compute(self, env: StepEnv, folder: Path) -> None:
        from adamergex.training.config import TrainingConfig
        from adamergex.training.trainer import train_adapter

        checkpoints = self.checkpoints(env)
        resume = checkpoints.is_dir() and any(p.name.startswith("step-") for p in checkpoints.iterdir())
        env.say(f"[bold]train[/] {self.kind} {self.name}" + (" (resuming)" if resume else ""))
        settings = TrainingConfig.build(
            {**self.inputs, "out": folder / "adapter", "checkpoint_dir": checkpoints, "resume": resume}
        )
        result = train_adapter(settings, base=env.base, progress=env.progress)
        summary = {
            "steps": result.steps,
            "train_loss": result.train_loss,
            "initial_validation_loss": result.initial_validation_loss,
            "validation_loss": result.validation_loss,
            "wall_time_s": result.wall_time_s,
        }
        (folder / "training.json").write_text(json.dumps(summary, indent=2))

    def sealed(self, env: StepEnv) -> None:
        shutil.rmtree(self.checkpoints(env), ignore_errors=True)

    @staticmethod
    def recorded_seconds(folder: Path) -> float | None:
        return _seconds_in(folder / "training.json", "wall_time_s")

    @staticmethod
    def settings(config: ExperimentConfig, adapter: str, seed: int) -> dict[str, Any]:
        return {"base": config.base_model, "adapter": adapter, "seed": seed}


@dataclass(frozen=True, eq=False)
class ReferenceTraining(Training):
    """A reference adapter Rs / Rt: causal LM on plain text of one language."""

    kind: ClassVar[str] = "reference"

    @classmethod
    def of(
        cls, config: ExperimentConfig, adapter: str, lang: str, seed: int, reference: ReferenceSpec | None = None
    ) -> ReferenceTraining:
        """The reference adapter of ``lang`` on the run's reference source (or on ``reference``, an ablation's)."""
        main = reference is None
        reference = reference or config.reference
        inputs = {
            **cls.settings(config, adapter, seed),
            **config.training.settings("reference", adapter),
            "data": f"reference:{reference.source}",
            "lang": lang,
            "data_options": dict(reference.options),
        }
        name = f"{adapter}/{lang}/seed{seed}" + ("" if main else f" ({reference.source})")
        return cls(name, inputs, role="reference")


@dataclass(frozen=True, eq=False)
class TaskTraining(Training):
    """A task adapter: T in the source language, or a target-ft adapter in a target language."""

    kind: ClassVar[str] = "task"
    priority: ClassVar[int] = 0  # the longest chains start with it

    @classmethod
    def of(cls, config: ExperimentConfig, adapter: str, task: TaskSpec, lang: str, seed: int) -> TaskTraining:
        source = lang == config.source_lang
        inputs = {
            **cls.settings(config, adapter, seed),
            **config.training.settings("task", adapter),
            **({} if source else config.training.settings("target_ft", adapter)),
            "data": f"task:{task.name}",
            "lang": lang,
            "limit": task.train_size,
            "task_split": task.train_split,
            "protocol": config.protocol,
            "max_text_tokens": task.max_text_tokens,
            "data_options": dict(task.options),
        }
        name = f"{task.name}/{adapter}/{lang}/seed{seed}"
        return cls(name, inputs, role="task" if source else "target-ft")


@dataclass(frozen=True, eq=False)
class Merge(Step):
    """A merged adapter: the method's table entry builds it from the adapters ``parts`` names (role → key)."""

    kind: ClassVar[str] = "merge"
    priority: ClassVar[int] = 2
    gpu: ClassVar[bool] = False
    makes_adapter: ClassVar[bool] = True

    @classmethod
    def of(
        cls, config: ExperimentConfig, method: str, adapter: str, parts: dict[str, str], t: float, name: str
    ) -> Merge:
        inputs = {
            "method": method,
            "adapter": adapter,
            "t": t,
            "mode": config.merge_mode,
            "rank": config.merge_rank,
            "parts": dict(parts),
        }
        return cls(name, inputs)

    def upstream(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.inputs["parts"].values()))

    def cost_class(self) -> str:
        return self.cost_class_of(str(self.inputs["adapter"]))

    @classmethod
    def cost_class_of(cls, adapter: str) -> str:
        return f"{cls.kind}/{adapter}"

    def compute(self, env: StepEnv, folder: Path) -> None:
        from adamergex.pipeline.methods import METHODS, MergeJob

        spec = METHODS[self.inputs["method"]]
        if spec.build is None:
            merges = ", ".join(name for name, entry in METHODS.items() if entry.build is not None)
            raise AdamergexError(f"method {spec.name!r} is not a merge; expected one of {merges}")
        job = MergeJob(
            kind=self.inputs["adapter"],
            parts={role: env.adapter(key) for role, key in self.inputs["parts"].items()},
            t=float(self.inputs["t"]),
            out=folder / "adapter",
            lora_mode=self.inputs["mode"],
            rank=self.inputs["rank"],
            base_weights=lambda names: _base_weights(env, names),
        )
        spec.build(job)


def _base_weights(env: StepEnv, names: set[str]) -> dict[str, Any]:
    """The base model's weight (float32, CPU) of each named module."""
    modules = env.base.model.named_modules()
    return {name: module.weight.detach().float().cpu() for name, module in modules if name in names}


@dataclass(frozen=True, eq=False)
class Evaluation(Step):
    """Scores of the base model with the adapter ``inputs["adapter"]`` names (None: no adapter) on one split of a
    task in one language. ``purpose`` (test, or dev for a t search), ``method``, the ``target`` language its adapter
    is for and ``t`` say what it is for (the first step planned with a key names it, as its label does)."""

    kind: ClassVar[str] = "eval"
    priority: ClassVar[int] = 3
    data_parallel: ClassVar[bool] = True

    purpose: str = "test"
    method: str = ""
    target: str = ""
    t: float | None = None

    @classmethod
    def of(
        cls,
        config: ExperimentConfig,
        adapter: str | None,
        task: TaskSpec,
        lang: str,
        split: str,
        limit: int | None,
        name: str,
        **about: Any,
    ) -> Evaluation:
        inputs = {
            "base": config.base_model,
            "adapter": adapter,
            "task": task.name,
            "options": task.options,
            "max_text_tokens": task.max_text_tokens,
            "lang": lang,
            "split": split,
            "limit": limit,
            "protocol": config.protocol,
        }
        return cls(name, inputs, **about)

    @property
    def task(self) -> str:
        return str(self.inputs["task"])

    @property
    def lang(self) -> str:
        return str(self.inputs["lang"])

    @property
    def split(self) -> str:
        return str(self.inputs["split"])

    @property
    def limit(self) -> int | None:
        limit = self.inputs.get("limit")
        return None if limit is None else int(limit)

    def upstream(self) -> tuple[str, ...]:
        adapter = self.inputs["adapter"]
        return () if adapter is None else (adapter,)

    def cost_class(self) -> str:
        return self.cost_class_of(with_adapter=self.inputs.get("adapter") is not None)

    @classmethod
    def cost_class_of(cls, *, with_adapter: bool) -> str:
        return f"{cls.kind}/{'adapter' if with_adapter else 'base'}"

    def units(self) -> float | None:
        return float(self.limit) if self.limit is not None else None

    def result(self, env: StepEnv, shard: Shard | None = None) -> dict[str, Any]:
        """The step's result record, computed; with ``shard``, this process's share of a data-parallel
        evaluation, whose whole result every process receives."""
        from adamergex.evaluation.adapter import evaluate_adapter
        from adamergex.evaluation.sharding import SINGLE_PROCESS

        inputs = self.inputs
        adapter = inputs["adapter"]
        [result] = evaluate_adapter(
            env.base,
            None if adapter is None else env.adapter(adapter),
            inputs["task"],
            [inputs["lang"]],
            options=inputs["options"],
            max_text_tokens=inputs["max_text_tokens"],
            model_name=inputs["base"],
            split=inputs["split"],
            limit=inputs["limit"],
            protocol=inputs["protocol"],
            batch_size=env.batch_size,
            progress=env.progress,
            shard=shard or SINGLE_PROCESS,
        )
        return result.to_json()

    def compute(self, env: StepEnv, folder: Path) -> None:
        self.write(folder, self.result(env))

    def write(self, folder: Path, result: Any) -> None:
        (folder / "result.json").write_text(json.dumps(result, indent=2))

    def read(self, folder: Path) -> Any:
        return json.loads((folder / "result.json").read_text())

    @staticmethod
    def recorded_seconds(folder: Path) -> float | None:
        return _seconds_in(folder / "result.json", "seconds")


#: Every kind of step, by name: its cache folder, its ``executor.resources`` key and its class.
STEP_KINDS: dict[str, type[Step]] = {cls.kind: cls for cls in (ReferenceTraining, TaskTraining, Merge, Evaluation)}
#: The kinds whose folder holds an adapter another step reads (by key).
ADAPTER_KINDS: tuple[str, ...] = tuple(kind for kind, cls in STEP_KINDS.items() if cls.makes_adapter)
if TYPE_CHECKING:
    StepKind = str
else:  # the registry's names (the config's executor.resources keys), so that a new kind is one entry there
    StepKind = Literal[tuple(STEP_KINDS)]


def step_class(kind: str) -> type[Step]:
    """The class of ``kind``; an unknown kind is refused with the registered ones."""
    if kind not in STEP_KINDS:
        raise AdamergexError(f"unknown step kind {kind!r}; expected one of {', '.join(STEP_KINDS)}")
    return STEP_KINDS[kind]


def step_from_json(data: Mapping[str, Any]) -> Step:
    """A step from :meth:`Step.to_json`; refused when it hashes to another key here than where it was written."""
    values = dict(data)
    kind, key = values.pop("kind"), values.pop("key", None)
    step = step_class(kind)(**values)
    if key is not None and step.key != key:
        raise AdamergexError(
            f"{kind} step {step.name} hashes to another key here than where it was planned "
            "(a different adamergex version?)"
        )
    return step
