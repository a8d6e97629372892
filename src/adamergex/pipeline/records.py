"""What a run's report is built from, assembled from what the graph emits: per-item predictions
(``predictions.csv``) and the rest (``records.json``: t curves, diagnostics, notes, trained adapters and ``info``,
the tasks, labels, majority class and settings with the prose that says how t was chosen).

The graph (:mod:`adamergex.pipeline.graph`) tells a :class:`RecordSink` what each step it resolved means (an
evaluation's scores for a method, a trained adapter, a merge to diagnose); a planning pass, whose steps are not
computed, gives them to a sink that keeps only ``info``, and a run to :class:`Records`, which reads what it needs
from the steps' outputs.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adamergex.pipeline.analysis import ScoreRow, analyse
from adamergex.pipeline.config import ExperimentConfig, TaskSpec
from adamergex.pipeline.methods import METHODS
from adamergex.pipeline.predictions import Scored, from_eval_record
from adamergex.pipeline.steps import Training

#: How t was chosen, by ``tuning.dev`` setting, as predictions.csv's ``t_selection`` says it.
SELECTIONS = {"source": "source-dev", "target": "target-dev", "unlabelled": "unlabelled"}


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


class RecordSink:
    """Takes what the graph emits and keeps only ``info`` (a planning pass: no step output exists to read).

    :class:`Records` assembles the rest; both take the same calls, each named for what the graph says."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.records = RunRecords(info=run_info(config))
        self.training: dict[str, dict[str, Any]] = {}
        self.training_times: dict[str, float] = {}

    def trained(self, step: Training, adapter: Path | None) -> None:
        """``step`` trained the adapter in ``adapter`` (None while it is only planned)."""

    def scored(self, where: Where, method: str, lang: str, result: Any, t: float | None = None, how: str = "") -> None:
        """``result`` (an evaluation record; None while planned) scores ``method`` in ``lang`` at ``t``."""

    def majority(self, where: Where, method: str, lang: str, test_split: str) -> None:
        """``method`` is the training split's majority label, scored on ``lang``'s test split."""

    def curve(self, key: str, lang: str, curve: list[tuple[float, float]]) -> None:
        self.records.curves.setdefault(key, {})[lang] = curve

    def alignment(self, where: Where, lang: str, adapters: tuple[Path | None, ...]) -> None:
        """The gap diagnostic of (T, target-ft, Rt, Rs) in ``lang``."""

    def cross(self, key: str, merged: Path | None) -> None:
        """How far the LoRA cross merge in ``merged`` lies from the additive one (where it recorded it)."""

    def stability(self, key: str, about: dict[str, Any], adapters: tuple[Path | None, ...]) -> None:
        """A replicate cosine of two seeds' gaps (``about`` names its type, kind, language, seeds)."""

    def note(self, line: str) -> None:
        self.records.notes.append(line)

    def has_alignment(self) -> bool:
        return any(d.get("type") == "alignment" for d in self.records.diagnostics.values())

    def finish(self) -> RunRecords:
        self.records.training = dict(self.training)
        return self.records


@dataclass(frozen=True)
class Where:
    """One task for one adapter kind and seed: where the graph's methods are being scored."""

    task: TaskSpec
    adapter: str
    seed: int


class Records(RecordSink):
    """Assembles the records of a run from its steps' outputs."""

    def trained(self, step: Training, adapter: Path | None) -> None:
        """Keep what the report shows of a trained adapter: losses before and after, and its loss curve (in the
        records), and its training time (a fact of the machine that trained it: in ``run.json``)."""
        from adamergex.training.log import LOG_FILE, read_training_log

        assert adapter is not None  # a run resolves every step
        summary = json.loads((adapter.parent / "training.json").read_text())
        log_path = adapter / LOG_FILE
        curve = [
            {k: r[k] for k in ("step", "loss", "validation_loss") if r.get(k) is not None}
            for r in (read_training_log(log_path) if log_path.is_file() else [])
        ]
        values = step.inputs
        name = f"{step.role}/{values['adapter']}/{values['lang']}/seed{values['seed']}"
        self.training_times[name] = summary.pop("wall_time_s")
        self.training[name] = {
            "role": step.role,
            "adapter": values["adapter"],
            "lang": values["lang"],
            "seed": values["seed"],
            "data": values["data"],
            **summary,
            "curve": curve,
        }

    def scored(self, where: Where, method: str, lang: str, result: Any, t: float | None = None, how: str = "") -> None:
        scored = from_eval_record(
            result,
            task=where.task.name,
            kind=where.adapter,
            method=method,
            lang=lang,
            seed=where.seed,
            t=t,
            selection=how,
        )
        self.records.scored.append(scored)

    def majority(self, where: Where, method: str, lang: str, test_split: str) -> None:
        """The majority-class "method": the training split's most frequent label predicted for every test item."""
        from adamergex.data.tasks import get_task

        task, seed = where.task, where.seed
        spec = get_task(task.name)
        protocol, options = self.config.protocol, dict(task.options)
        majority = self.records.info["majority"]
        key = f"{task.name}/seed{seed}"
        if key not in majority:
            train = spec.load(self.config.source_lang, task.train_split, limit=task.train_size, seed=seed, **options)
            golds = [spec.render(item, protocol).choice_index for item in train]
            counts = Counter(golds)
            label = min(counts, key=lambda value: (-counts[value], value))  # ties: the smallest label index
            majority[key] = {"label": label, "count": golds.count(label), "n": len(golds)}
        label = majority[key]["label"]
        items = spec.load(lang, test_split, limit=task.test_size, **options)
        golds = [spec.render(item, protocol).choice_index for item in items]
        predictions = [
            {"id": item.id, "prediction": label, "gold": gold} for item, gold in zip(items, golds, strict=True)
        ]
        self.scored(where, method, lang, {"predictions": predictions})

    def alignment(self, where: Where, lang: str, adapters: tuple[Path | None, ...]) -> None:
        task, adapter, seed = where.task.name, where.adapter, where.seed
        self.records.diagnostics[f"{task}/{adapter}/{lang}/seed{seed}"] = {
            "type": "alignment",
            "task": task,
            "adapter": adapter,
            "lang": lang,
            "seed": seed,
            **_diagnose(adapters),
        }

    def cross(self, key: str, merged: Path | None) -> None:
        path = None if merged is None else merged.parent / "cross_vs_additive.json"
        if path is None or not path.is_file():
            return
        values = list(json.loads(path.read_text()).values())
        self.records.diagnostics[key] = {
            "type": "cross",
            "modules": len(values),
            "relative_difference_median": statistics.median(values),
            "relative_difference_max": max(values),
        }

    def stability(self, key: str, about: dict[str, Any], adapters: tuple[Path | None, ...]) -> None:
        self.records.diagnostics[key] = {**about, **_diagnose(adapters)}


def _diagnose(adapters: tuple[Path | None, ...]) -> dict[str, Any]:
    """The gap alignment of (task, target task, reference target, reference source) adapter folders."""
    from adamergex.adapters.io import read_adapter
    from adamergex.pipeline.diagnostics import gap_alignment, summarize

    folders = [path for path in adapters if path is not None]
    assert len(folders) == 4  # a run resolves every adapter before it is diagnosed
    return summarize(gap_alignment(*(read_adapter(path) for path in folders)))


def run_info(config: ExperimentConfig) -> dict[str, Any]:
    """What the report needs besides the predictions: tasks, labels, settings, majority classes."""
    from adamergex.data.tasks import get_task

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
        "methods": _report_methods(config),
        "tasks": tasks,
        "selections": _selection_notes(config),
        "majority": {},
    }


def fixed_t(config: ExperimentConfig) -> list[float] | None:
    """The t values of a run with t fixed (None when t is tuned)."""
    t = config.t
    if t == "tune":
        return None
    return [float(x) for x in (t if isinstance(t, list) else [t])]


def _report_methods(config: ExperimentConfig) -> list[str]:
    """The report's row order: the method table, each reference ablation right after its method."""
    ablations = config.reference_ablations
    return [
        name
        for method in METHODS
        for name in [method, *(f"{method}@{a.source}" for a in ablations if method in a.methods)]
    ]


def _selection_notes(config: ExperimentConfig) -> dict[str, str]:
    tuning = config.tuning
    if config.t != "tune":
        return {"fixed": f"t fixed at {', '.join(f'{t:g}' for t in fixed_t(config) or [])} (no selection)."}
    notes = {}
    for spec in config.tasks:
        settings = [tuning.dev, *(s for s in tuning.compare if s != tuning.dev)]
        for setting in settings:
            role = "the headline" if setting == tuning.dev else "a comparison"
            notes[f"{spec.name}/{SELECTIONS[setting]}"] = f"{spec.name}: t {_chosen_on(config, spec, setting)}; {role}."
    fixed = [t for spec in tuning.fixed_sets() for t in spec.t]
    if fixed:
        values = ", ".join(f"{t:g}" for t in sorted(set(fixed)))
        notes["fixed"] = (
            f"Rows marked (t = …) evaluate a fixed t on the test set ({values}): t = 1 is the "
            "method's own value, with no selection at all."
        )
    return notes


def _chosen_on(config: ExperimentConfig, task: TaskSpec, setting: str, lang: str = "target") -> str:
    source = config.source_lang
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
    return f"chosen on a labelled {lang}-language dev split (n={task.dev_size}): few-shot, uses target-language labels"
