"""How long a run will take: step costs measured by a short calibration on this machine, times a dry run's plan.

``adamergex run CONFIG --dry-run --calibrate`` trains each kind of adapter the run trains (reference, task; each
adapter kind) for a few optimizer steps with the run's own settings, scores a few test items with and without an
adapter, and times one merge per adapter kind. From that:

    training step  ≈ overhead (data, validation before and after, saving) + max_steps · seconds per step
    evaluation     ≈ overhead (data, attaching the adapter) + items · seconds per item
    merge          ≈ the measured merge

The calibration is written to ``OUTPUT/calibration.json`` (with the machine it was measured on and the settings
it measured) and reused by later dry runs; a changed setting makes it stale, which the estimate says.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from adamergex.errors import AdamergexError
from adamergex.files import atomic_write_text
from adamergex.pipeline.steps import Evaluation, Merge, ReferenceTraining, Step, TaskTraining, Training, step_class

CALIBRATION_FILE = "calibration.json"
CALIBRATION_STEPS = 3
CALIBRATION_ITEMS = 32
#: Training settings that change how many steps run, or their values, but not what one step costs.
_COUNT_ONLY = frozenset(
    {"max_steps", "epochs", "save_steps", "learning_rate", "lr_scheduler", "warmup_ratio", "weight_decay", "seed"}
)


@dataclass(frozen=True)
class Cost:
    """``overhead_s + units · unit_s`` seconds: units are optimizer steps (training) or items (evaluation)."""

    unit_s: float
    overhead_s: float

    def seconds(self, units: float) -> float:
        return self.overhead_s + units * self.unit_s


@dataclass
class Calibration:
    """Measured costs by step class (``reference/lora``, ``task/ia3``, ``eval/base``, ``eval/lora``,
    ``merge/lora`` …), the machine they were measured on and a hash of the settings that determine them."""

    costs: dict[str, Cost]
    settings: str
    machine: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "costs": {name: asdict(cost) for name, cost in self.costs.items()},
            "settings": self.settings,
            "machine": self.machine,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        costs = {name: Cost(**values) for name, values in data["costs"].items()}
        return cls(costs, data["settings"], data.get("machine", {}), data.get("created", ""))


def machine_description() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def cost_settings(config: Any) -> str:
    """sha256 of what the per-step costs depend on: the model, the adapters, training and evaluation settings
    and the tasks' text lengths (not steps, seeds, languages or methods, which only change the counts)."""
    training = {
        role: {name: value for name, value in settings.items() if name not in _COUNT_ONLY}
        for role, settings in config.training.model_dump().items()
        if isinstance(settings, dict) and role != "by_kind"
    }
    training["by_kind"] = {
        kind: {role: {k: v for k, v in values.items() if k not in _COUNT_ONLY} for role, values in roles.items()}
        for kind, roles in config.training.model_dump()["by_kind"].items()
    }
    payload = {
        "base_model": config.base_model,
        "adapters": config.adapters,
        "training": training,
        "evaluation": config.evaluation.model_dump(),
        "tasks": [(task.name, task.max_text_tokens, task.options) for task in config.tasks],
        "reference": config.reference.model_dump(),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class StepEstimate:
    kind: str
    name: str
    cls: str
    seconds: float | None


def estimate_plan(steps: Iterable[Step], calibration: Calibration, source_lang: str) -> list[StepEstimate]:
    """Seconds of each planned step (None where its class was not calibrated or its size is not in the plan)."""
    out = []
    for step in steps:
        cls = step.cost_class()
        out.append(StepEstimate(step.kind, step.name, cls, _estimate(calibration, cls, step.units())))
    return out


def _estimate(calibration: Calibration, cls: str, units: float | None) -> float | None:
    cost = calibration.costs.get(cls)
    return cost.seconds(units) if cost is not None and units is not None else None


def summarise(estimates: Sequence[StepEstimate]) -> list[tuple[str, int, float, int]]:
    """Per step class: (class, steps, estimated seconds, steps without an estimate), in plan order."""
    groups: dict[str, list[StepEstimate]] = defaultdict(list)
    for estimate in estimates:
        groups[estimate.cls].append(estimate)
    return [
        (
            cls,
            len(group),
            sum(e.seconds for e in group if e.seconds is not None),
            sum(e.seconds is None for e in group),
        )
        for cls, group in groups.items()
    ]


def read_calibration(folder: Path) -> Calibration | None:
    path = folder / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        return Calibration.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise AdamergexError(f"{path} is not a calibration file ({error}); rerun with --calibrate") from None


def _training_cost(log_path: Path, wall: float) -> Cost:
    """Seconds per optimizer step from the log's elapsed times (the first step, which warms up, left out)."""
    from adamergex.training.log import read_training_log

    elapsed = [r["elapsed_s"] for r in read_training_log(log_path) if r.get("step") and "loss" in r]
    if len(elapsed) < 2:
        raise AdamergexError(f"calibration: {log_path} has fewer than 2 logged steps; cannot time a step")
    per_step = statistics.median(b - a for a, b in itertools.pairwise(elapsed))
    return Cost(per_step, max(wall - len(elapsed) * per_step, 0.0))


def calibrate(
    pipeline: Any, plan: Sequence[Step], *, say: Callable[[str], None] = print, workdir: Path | None = None
) -> Calibration:
    """Measure the costs the plan's steps need on this machine, with the run's own settings (``pipeline``: a
    dry-run :class:`~adamergex.pipeline.runner.Pipeline` whose ``plan`` this is)."""
    config = pipeline.config
    base = pipeline.base
    costs: dict[str, Cost] = {}
    with tempfile.TemporaryDirectory(prefix="adamergex-calibration-", dir=workdir) as scratch:
        root = Path(scratch)
        trained = _calibrate_training(base, plan, config.source_lang, root, costs, say)
        evaluations = [step for step in plan if isinstance(step, Evaluation)]
        if evaluations:
            adapter_dir = next((out for step, out in trained if isinstance(step, TaskTraining)), None)
            _calibrate_evaluation(base, config, evaluations, adapter_dir, costs, say)
        for kind in config.adapters:
            of_kind = {type(step): out for step, out in trained if step.adapter_kind == kind}
            task_dir, reference_dir = of_kind.get(TaskTraining), of_kind.get(ReferenceTraining)
            if task_dir is None or reference_dir is None:
                continue
            from adamergex.merging.api import merge

            started = time.perf_counter()
            merge(task_dir, reference_dir, reference_dir, 1.0, root / f"merge-{kind}")
            costs[Merge.cost_class_of(kind)] = Cost(0.0, time.perf_counter() - started)
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Calibration(costs, cost_settings(config), machine_description(), created)


def _calibrate_training(
    base: Any, plan: Sequence[Step], source: str, root: Path, costs: dict[str, Cost], say: Callable[[str], None]
) -> list[tuple[Training, Path]]:
    """Train each class of training step of the plan (in the source language) for a few optimizer steps."""
    from adamergex.training.config import TrainingConfig
    from adamergex.training.log import LOG_FILE
    from adamergex.training.trainer import train_adapter

    trained: list[tuple[Training, Path]] = []
    for step in plan:
        if not isinstance(step, Training):
            continue
        cls = step.cost_class()
        if cls in costs or step.lang != source:
            continue
        out = root / cls.replace("/", "-")
        values = {**step.inputs, "max_steps": CALIBRATION_STEPS, "save_steps": CALIBRATION_STEPS, "out": out}
        values["checkpoint_dir"] = root / (out.name + ".checkpoints")
        say(f"calibrating {cls}: {CALIBRATION_STEPS} optimizer steps …")
        started = time.perf_counter()
        train_adapter(TrainingConfig.build(values), base=base, progress=False)
        costs[cls] = _training_cost(out / LOG_FILE, time.perf_counter() - started)
        trained.append((step, out))
    return trained


def _calibrate_evaluation(
    base: Any,
    config: Any,
    evaluations: Sequence[Evaluation],
    adapter_dir: Path | None,
    costs: dict[str, Cost],
    say: Callable[[str], None],
) -> None:
    """Score a few items of the plan's largest evaluation without an adapter, and with a trained one."""
    from adamergex.evaluation.adapter import evaluate_adapter

    sample = max(evaluations, key=lambda step: step.limit or 0)
    task = next(t for t in config.tasks if t.name == sample.task)
    for with_adapter, adapter in ((False, None), (True, adapter_dir)):
        if with_adapter and adapter is None:
            continue
        cls = Evaluation.cost_class_of(with_adapter=with_adapter)
        say(f"calibrating {cls}: {CALIBRATION_ITEMS} {sample.lang} items …")
        started = time.perf_counter()
        [result] = evaluate_adapter(
            base,
            adapter,
            task.name,
            [sample.lang],
            options=task.options,
            max_text_tokens=task.max_text_tokens,
            split=sample.split,
            limit=CALIBRATION_ITEMS,
            protocol=config.protocol,
            batch_size=config.evaluation.batch_size,
            progress=False,
        )
        wall = time.perf_counter() - started
        costs[cls] = Cost(result.seconds / result.n, max(wall - result.seconds, 0.0))


def write_calibration(folder: Path, calibration: Calibration) -> Path:
    path = folder / CALIBRATION_FILE
    atomic_write_text(path, json.dumps(calibration.to_json(), indent=2), force=True)
    return path


def format_estimate(estimates: Sequence[StepEstimate], calibration: Calibration, current_settings: str) -> list[str]:
    """Lines for the console: every planned step with its estimate, totals per class and overall."""

    def fmt(seconds: float | None) -> str:
        if seconds is None:
            return "?"
        return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"

    lines = [f"{e.kind:>9} {e.name:<48} {fmt(e.seconds):>9}" for e in estimates]
    lines.append("")
    lines.append(f"{'class':<16} {'steps':>5} {'estimate':>10}")
    for cls, count, seconds, unknown in summarise(estimates):
        lines.append(f"{cls:<16} {count:>5} {fmt(seconds):>10}" + (f"  ({unknown} not estimated)" if unknown else ""))
    total = sum(e.seconds for e in estimates if e.seconds is not None)
    lines.append(f"{'total':<16} {len(estimates):>5} {fmt(total):>10}  ({total / 3600:.2f} h)")
    machine = calibration.machine
    lines.append(
        f"costs measured {calibration.created} on {machine.get('cpus')} CPU(s), "
        f"{machine.get('torch_threads')} torch threads" + (f", {machine['cuda']}" if machine.get("cuda") else "")
    )
    if calibration.settings != current_settings:
        lines.append("the calibration measured other settings than this config's: rerun with --calibrate")
    return lines


@dataclass(frozen=True)
class MeasuredStep:
    """A sealed step of a run's cache: its class, its estimate from a calibration and the compute time it recorded
    (training: ``training.json``'s ``wall_time_s``, which carries on across a resume from a checkpoint;
    evaluation: ``result.json``'s ``seconds`` of scoring; merges record none)."""

    kind: str
    key: str
    cls: str
    estimated_s: float | None
    measured_s: float | None


def measured_steps(cache_root: Path, calibration: Calibration, source_lang: str) -> list[MeasuredStep]:
    """Every sealed step under ``cache_root`` with its estimated and recorded seconds, in key order per kind."""
    from adamergex.pipeline.cache import sealed_manifests

    out = []
    for manifest in sealed_manifests(cache_root):
        folder = manifest.parent
        try:
            record = json.loads(manifest.read_text(encoding="utf-8"))
            kind, inputs, key = folder.parent.name, dict(record["inputs"]), str(record["key"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise AdamergexError(f"{manifest} is not a step manifest ({error})") from None
        step = step_class(kind)(name="", inputs=inputs)
        cls = step.cost_class()
        estimated = _estimate(calibration, cls, step.units())
        out.append(MeasuredStep(kind, key, cls, estimated, step.recorded_seconds(folder)))
    return out


def format_measured(steps: Sequence[MeasuredStep]) -> list[str]:
    """Per class: steps, seconds recorded, seconds estimated for the same steps, and their ratio; then totals."""
    groups: dict[str, list[MeasuredStep]] = defaultdict(list)
    for step in steps:
        groups[step.cls].append(step)
    lines = [f"{'class':<16} {'steps':>5} {'recorded':>10} {'estimated':>10} {'ratio':>6}"]

    def row(name: str, group: Sequence[MeasuredStep]) -> str:
        both = [s for s in group if s.measured_s is not None and s.estimated_s is not None]
        recorded = sum(s.measured_s for s in both if s.measured_s is not None)
        estimated = sum(s.estimated_s for s in both if s.estimated_s is not None)
        ratio = f"{recorded / estimated:.2f}" if estimated > 0 else "–"
        note = f"  ({len(group) - len(both)} without a record)" if len(both) < len(group) else ""
        return f"{name:<16} {len(group):>5} {recorded / 60:>8.1f} m {estimated / 60:>8.1f} m {ratio:>6}{note}"

    lines += [row(cls, group) for cls, group in sorted(groups.items())]
    lines.append(row("total", steps))
    return lines
