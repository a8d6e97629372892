"""``adamergex run``: the experiment graph from text to a results table, every step cached by its inputs.

    reference corpus ─► train Rs, Rt (one per language, shared by every task)
    task data (src) ──► train T; (target data ─► train target-ft, where requested)
    T, Rt, Rs ────────► merge per method (and per t while tuning) ─► evaluate ─► report

Each step's folder is keyed by the hash of its settings and of the keys of the steps it reads, so a rerun skips
finished steps, a changed setting reruns exactly what depends on it, and a killed training step resumes from its
last checkpoint (checkpoints live outside the step folder until the step is sealed).
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from adamergex.errors import AdamergexError
from adamergex.files import atomic_write_text
from adamergex.pipeline.cache import StepCache, step_key
from adamergex.pipeline.config import METHODS, ExperimentConfig, TaskSpec
from adamergex.pipeline.report import ResultRow
from adamergex.pipeline.tuning import search_t

MERGE_METHODS = ("arimerge", "adamergex", "adamergex-cross", "factor")
T_METHODS = ("adamergex", "adamergex-cross", "factor")


@dataclass
class StepLog:
    """What a run did: step names executed, found in the cache, or (dry run) planned."""

    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)


@dataclass
class RunRecords:
    """Everything the report is built from (``records.json`` in the run folder)."""

    rows: list[ResultRow] = field(default_factory=list)
    curves: dict[str, dict[str, list[tuple[float, float]]]] = field(default_factory=dict)
    diagnostics: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [asdict(r) for r in self.rows],
            "curves": self.curves,
            "diagnostics": self.diagnostics,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecords:
        return cls(
            rows=[ResultRow(**r) for r in data["rows"]],
            curves={k: {lang: [tuple(p) for p in v] for lang, v in c.items()} for k, c in data["curves"].items()},
            diagnostics=data.get("diagnostics", {}),
            notes=data.get("notes", []),
        )


class Pipeline:
    """Runs one :class:`ExperimentConfig`; ``dry_run`` lists the steps and whether each is cached."""

    def __init__(self, config: ExperimentConfig, *, dry_run: bool = False, console: Console | None = None,
                 progress: bool = True) -> None:  # fmt: skip
        self.config = config
        self.dry_run = dry_run
        self.console = console or Console(stderr=True)
        self.progress = progress
        self.cache = StepCache(config.output / "cache")
        self.log = StepLog()
        self._base: Any = None

    # -- shared resources -------------------------------------------------------------------------------------
    @property
    def base(self) -> Any:
        """The base model, loaded once per run on first use."""
        if self._base is None:
            from adamergex.models import load_base_model

            self.console.print(f"loading base model {self.config.base_model} …")
            self._base = load_base_model(self.config.base_model)
        return self._base

    def _note(self, kind: str, name: str, state: str) -> None:
        getattr(self.log, state).append(f"{kind}:{name}")
        if state != "executed":
            self.console.print(f"[dim]{state:>8}[/] {kind} {name}")

    # -- training ---------------------------------------------------------------------------------------------
    def _train(self, kind: str, name: str, values: dict[str, Any]) -> tuple[str, Path]:
        """Train one adapter as a cached step; returns (key, adapter folder)."""
        inputs = {k: v for k, v in values.items() if k not in {"out", "checkpoint_dir", "resume", "force"}}
        key = step_key(kind, inputs)
        found = self.cache.lookup(kind, key)
        if found is not None:
            self._note(kind, name, "cached")
            return key, found / "adapter"
        if self.dry_run:
            self._note(kind, name, "planned")
            return key, self.cache.path(kind, key) / "adapter"
        from adamergex.training.config import TrainingConfig
        from adamergex.training.trainer import train_adapter

        checkpoints = self.config.output / "checkpoints" / f"{kind}-{key[:16]}"
        resume = checkpoints.is_dir() and any(p.name.startswith("step-") for p in checkpoints.iterdir())
        self.console.print(f"[bold]train[/] {kind} {name}" + (" (resuming)" if resume else ""))
        with self.cache.produce(kind, key, inputs) as folder:
            settings = TrainingConfig.build({**values, "out": folder / "adapter", "checkpoint_dir": checkpoints,
                                             "resume": resume})  # fmt: skip
            result = train_adapter(settings, base=self.base, progress=self.progress)
            summary = {"steps": result.steps, "train_loss": result.train_loss,
                       "validation_loss": result.validation_loss, "wall_time_s": result.wall_time_s}  # fmt: skip
            (folder / "training.json").write_text(json.dumps(summary, indent=2))
        shutil.rmtree(checkpoints, ignore_errors=True)
        self._note(kind, name, "executed")
        return key, self.cache.path(kind, key) / "adapter"

    def _training_values(self, adapter: str, seed: int) -> dict[str, Any]:
        return {"base": self.config.base_model, "adapter": adapter, "seed": seed}

    def reference_adapter(self, adapter: str, lang: str, seed: int) -> tuple[str, Path]:
        reference = self.config.reference
        values = {
            **self._training_values(adapter, seed),
            **self.config.training.reference,
            "data": f"reference:{reference.source}",
            "lang": lang,
            "data_options": dict(reference.options),
        }
        return self._train("reference", f"{adapter}/{lang}/seed{seed}", values)

    def task_adapter(self, adapter: str, task: TaskSpec, lang: str, seed: int) -> tuple[str, Path]:
        values = {
            **self._training_values(adapter, seed),
            **self.config.training.task,
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
    def merged_adapter(self, method: str, adapter: str, parts: dict[str, tuple[str, Path]], t: float | None,
                       label: str) -> tuple[str, Path]:  # fmt: skip
        """A cached merge of the trained adapters for ``method`` (and ``t``).

        At t = 0 every method with a t gives back the task adapter (ΔW_T, l_T), so its folder is reused.
        """
        if method in T_METHODS and t == 0.0:
            return parts["task"]
        inputs = {"method": method, "adapter": adapter, "t": t, "mode": self.config.merge_mode,
                  "rank": self.config.merge_rank, "parts": {role: key for role, (key, _) in parts.items()}}  # fmt: skip
        key = step_key("merge", inputs)
        found = self.cache.lookup("merge", key)
        if found is not None:
            return key, found / "adapter"
        if self.dry_run:
            self._note("merge", label, "planned")
            return key, self.cache.path("merge", key) / "adapter"
        import adamergex

        task, target, source = parts["task"][1], parts["reference_target"][1], parts["reference_source"][1]
        lora = adapter == "lora"
        with self.cache.produce("merge", key, inputs) as folder:
            out = folder / "adapter"
            if method == "arimerge":
                adamergex.combine([task, target], [1.0, 1.0], out)
            elif method == "adamergex":
                mode = self.config.merge_mode if lora else "multiplicative"
                adamergex.merge(task, target, source, t, out, mode=mode,
                                rank=self.config.merge_rank if lora and mode == "svd" else None)  # fmt: skip
            elif method == "factor":
                adamergex.merge(task, target, source, t, out, mode="factor")
            elif method == "adamergex-cross" and not lora:
                adamergex.merge(task, target, source, t, out, mode="additive")
            elif method == "adamergex-cross":
                self._lora_cross(task, target, source, t, out)  # type: ignore[arg-type]
            else:
                raise AdamergexError(f"method {method!r} is not a merge; expected one of {', '.join(MERGE_METHODS)}")
        return key, self.cache.path("merge", key) / "adapter"

    def _lora_cross(self, task: Path, target: Path, source: Path, t: float, out: Path) -> None:
        from adamergex.adapters.io import read_adapter, write_adapter
        from adamergex.merging.cross import multiplicative_lora_cross

        adapters = [read_adapter(p) for p in (task, target, source)]
        wanted = set().union(*(a.modules for a in adapters))
        weights = {n: m.weight.detach().float().cpu() for n, m in self.base.model.named_modules() if n in wanted}
        result = multiplicative_lora_cross(adapters, weights, t)  # type: ignore[arg-type]
        write_adapter(result.adapter, out, provenance={"tool": "adamergex", "method": "adamergex-cross", "t": t,
                                                       "inputs": [str(task), str(target), str(source)]})  # fmt: skip

    # -- evaluation -------------------------------------------------------------------------------------------
    def evaluate(self, adapter: tuple[str, Path] | None, task: TaskSpec, lang: str, split: str,
                 limit: int | None, label: str) -> dict[str, Any] | None:  # fmt: skip
        """A cached evaluation; returns the result record (None in a dry run before it exists)."""
        inputs = {"base": self.config.base_model, "adapter": adapter[0] if adapter else None, "task": task.name,
                  "options": task.options, "max_text_tokens": task.max_text_tokens, "lang": lang, "split": split,
                  "limit": limit, "protocol": self.config.protocol}  # fmt: skip
        key = step_key("eval", inputs)
        found = self.cache.lookup("eval", key)
        if found is not None:
            return json.loads((found / "result.json").read_text())
        if self.dry_run:
            self._note("eval", label, "planned")
            return None
        from adamergex.evaluation.adapter import attach_adapter
        from adamergex.evaluation.runner import evaluate

        base = self.base
        model, fingerprint = (base.model, None) if adapter is None else attach_adapter(base, adapter[1])
        try:
            load_options: dict[str, Any] = dict(task.options)
            if task.max_text_tokens:
                load_options.update(max_text_tokens=task.max_text_tokens, tokenizer=base.tokenizer)
            result = evaluate(model, base.tokenizer, task.name, lang, split=split, limit=limit,
                              protocol=self.config.protocol, batch_size=self.config.evaluation.batch_size,
                              model_name=self.config.base_model, model_fingerprint=base.fingerprint,
                              adapter=str(adapter[1]) if adapter else None, adapter_fingerprint=fingerprint,
                              progress=self.progress, load_options=load_options)  # fmt: skip
        finally:
            if adapter is not None:
                base.model = model.unload()
                base.model.eval()
        with self.cache.produce("eval", key, inputs) as folder:
            (folder / "result.json").write_text(json.dumps(result.to_json(), indent=2))
        self.log.executed.append(f"eval:{label}")
        return result.to_json()

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
        self.cache.sweep()
        records = RunRecords()
        targets = [lang for task in config.tasks for lang in config.task_languages(task)]
        langs = list(dict.fromkeys([config.source_lang, *targets]))
        methods = list(config.methods)
        for adapter in config.adapters:
            for seed in config.seeds:
                references = {lang: self.reference_adapter(adapter, lang, seed) for lang in langs}
                for task in config.tasks:
                    self._run_task(records, adapter, seed, task, references, methods)
        return records

    def _validate(self) -> None:
        """Refuse, before any work, a task that lacks one of the languages or splits the run needs."""
        from adamergex.data.tasks import get_task

        self.splits: dict[str, dict[str, str]] = {}
        for spec in self.config.tasks:
            task = get_task(spec.name)
            for lang in (self.config.source_lang, *self.config.task_languages(spec)):
                task.check_language(lang)
            try:
                splits = {"train": spec.train_split, "dev": spec.resolve_split("dev", task.splits),
                          "test": spec.resolve_split("test", task.splits)}  # fmt: skip
            except ValueError as error:
                raise AdamergexError(str(error)) from None
            for split in splits.values():
                task.check_split(split)
            self.splits[spec.name] = splits

    def _run_task(self, records: RunRecords, adapter: str, seed: int, task: TaskSpec,
                  references: dict[str, tuple[str, Path]], methods: list[str]) -> None:  # fmt: skip
        config = self.config
        source = config.source_lang
        needs_task = any(m != "base" for m in methods)
        task_adapter = self.task_adapter(adapter, task, source, seed) if needs_task else None
        metric_key: str | None = None

        def add_row(method: str, lang: str, result: dict[str, Any] | None, t: float | None = None,
                    chosen_on: str | None = None) -> None:  # fmt: skip
            nonlocal metric_key
            if result is None:
                return
            for metric, value in result["metrics"].items():
                metric_key = metric_key or metric
                records.rows.append(ResultRow(task=task.name, adapter=adapter, method=method, lang=lang,
                                              metric=metric, value=value["value"], low=value["low"],
                                              high=value["high"], n=value["n"], t=t, t_chosen_on=chosen_on,
                                              seed=seed, protocol=config.protocol, split=test))  # fmt: skip

        test = self.splits[task.name]["test"]
        for lang in config.task_languages(task):
            parts = {"task": task_adapter, "reference_target": references[lang], "reference_source": references[source]}
            if "base" in methods:
                add_row("base", lang, self.evaluate(None, task, lang, test, task.test_size, f"base/{lang}"))
            if "eng-ft" in methods:
                add_row("eng-ft", lang, self.evaluate(task_adapter, task, lang, test, task.test_size,
                                                      f"eng-ft/{lang}"))  # fmt: skip
            if "arimerge" in methods:
                merged = self.merged_adapter("arimerge", adapter, parts, None, f"arimerge/{lang}")  # type: ignore[arg-type]
                add_row("arimerge", lang, self.evaluate(merged, task, lang, test, task.test_size, f"arimerge/{lang}"))
            for method in (m for m in T_METHODS if m in methods):
                if method == "factor" and adapter != "lora":
                    records.notes.append("factor mode applies to LoRA only; skipped for (IA)³")
                    continue
                for t, chosen_on in self._choose_t(records, method, adapter, seed, task, lang, parts):
                    merged = self.merged_adapter(method, adapter, parts, t, f"{method}/{lang}/t={t:g}")  # type: ignore[arg-type]
                    result = self.evaluate(merged, task, lang, test, task.test_size, f"{method}/{lang}/t={t:g}")
                    add_row(method, lang, result, t, chosen_on)
            if "target-ft" in methods:
                target_ft = self.task_adapter(adapter, task, lang, seed)
                add_row("target-ft", lang, self.evaluate(target_ft, task, lang, test, task.test_size,
                                                         f"target-ft/{lang}"))  # fmt: skip
                if adapter == "lora" and not self.dry_run and task_adapter is not None:
                    records.diagnostics[f"{task.name}/{adapter}/{lang}/seed{seed}"] = self._diagnose(
                        task_adapter[1], target_ft[1], references[lang][1], references[source][1])  # fmt: skip

    def _choose_t(self, records: RunRecords, method: str, adapter: str, seed: int, task: TaskSpec, lang: str,
                  parts: dict[str, tuple[str, Path]]) -> list[tuple[float, str]]:  # fmt: skip
        """The t values to report for ``method``: fixed ones, or one tuned on a dev set."""
        fixed = self._t_values()
        if fixed is not None:
            return [(t, "fixed") for t in fixed]
        tuning = self.config.tuning
        dev_lang = lang if tuning.dev == "target" else self.config.source_lang
        chosen_on = f"{dev_lang} dev (n={task.dev_size})"
        if self.dry_run:
            for t in tuning.grid:
                self.merged_adapter(method, adapter, parts, float(t), f"{method}/{lang}/t={t:g}")
            return [(float(tuning.grid[0]), chosen_on)]

        def objective(t: float) -> float:
            merged = self.merged_adapter(method, adapter, parts, t, f"{method}/{lang}/t={t:g}")
            dev = self.splits[task.name]["dev"]
            result = self.evaluate(merged, task, dev_lang, dev, task.dev_size, f"tune/{method}/{lang}/t={t:g}")
            assert result is not None
            return float(next(iter(result["metrics"].values()))["value"])

        search = search_t(objective, tuning.grid, refine_rounds=tuning.refine_rounds, budget=tuning.budget)
        records.curves.setdefault(f"{task.name}/{adapter}/{method}/seed{seed}", {})[lang] = search.sorted_curve()
        self.console.print(f"t for {method}/{lang}: {search.best_t:g} (on {chosen_on}, score {search.best_score:.3f})")
        return [(search.best_t, chosen_on)]

    def _diagnose(self, task: Path, target_ft: Path, reference_target: Path, reference_source: Path) -> dict:
        from adamergex.adapters.io import read_adapter
        from adamergex.pipeline.diagnostics import language_gap_alignment, summarize

        adapters = [read_adapter(p) for p in (task, target_ft, reference_target, reference_source)]
        return summarize(language_gap_alignment(*adapters))  # type: ignore[arg-type]


def aggregate_seeds(rows: list[ResultRow]) -> list[ResultRow]:
    """Average rows that differ only by seed (value and interval bounds averaged; n kept)."""
    groups: dict[tuple, list[ResultRow]] = defaultdict(list)
    for row in rows:
        groups[(row.task, row.adapter, row.method, row.lang, row.metric, row.t)].append(row)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        first = group[0]
        out.append(ResultRow(**{**asdict(first), "value": statistics.fmean(r.value for r in group),
                                "low": statistics.fmean(r.low for r in group),
                                "high": statistics.fmean(r.high for r in group), "seed": -1}))  # fmt: skip
    return out


def write_report(run_dir: Path, records: RunRecords, config: ExperimentConfig | None = None,
                 wall_time_s: float | None = None) -> Path:  # fmt: skip
    """Write ``run_dir/results``: results.md/.csv/.json, plots and the diagnostic, atomically."""
    from adamergex.adapters.io import atomic_directory
    from adamergex.pipeline.report import (
        diagnostics_markdown,
        group_rows,
        plot_method_bars,
        plot_t_curves,
        write_tables,
    )

    rows = aggregate_seeds(records.rows)
    out = run_dir / "results"
    with atomic_directory(out, force=True) as folder:
        write_tables(rows, folder, METHODS)
        text = (folder / "results.md").read_text()
        header = f"# Results: {config.name}\n\n" if config else "# Results\n\n"
        if config:
            header += (f"Base model `{config.base_model}`, source language `{config.source_lang}`, protocol "
                       f"`{config.protocol}`, seeds {config.seeds}, merge mode `{config.merge_mode}`.\n\n")  # fmt: skip
        if wall_time_s is not None:
            header += f"Wall time of this run: {wall_time_s / 60:.1f} min.\n\n"
        chosen = sorted({f"{r.method}: t chosen on {r.t_chosen_on}" for r in rows if r.t_chosen_on})
        notes = [*chosen, *dict.fromkeys(records.notes)]
        footer = "\n".join(f"- {n}" for n in notes)
        (folder / "results.md").write_text(header + text + "\n" + diagnostics_markdown(records.diagnostics) +
                                           ("\nNotes:\n" + footer + "\n" if footer else ""))  # fmt: skip
        (folder / "diagnostics.json").write_text(json.dumps(records.diagnostics, indent=2))
        for key, curves in records.curves.items():
            name = key.replace("/", "_")
            plot_t_curves(
                curves, folder / f"t_curve_{name}.png", title=f"dev score vs t · {key}", ylabel="dev score (%)"
            )
        for (task, adapter, metric), group in group_rows(rows).items():
            plot_method_bars(group, folder / f"methods_{task}_{adapter}_{metric}.png", METHODS,
                             title=f"{task} · {adapter} · {metric}")  # fmt: skip
    return out


def load_records(run_dir: Path) -> tuple[RunRecords, ExperimentConfig | None, float | None]:
    """The records (and config, wall time) a finished run wrote, for rebuilding its report."""
    path = run_dir / "records.json"
    if not path.is_file():
        raise AdamergexError(f"{run_dir} has no records.json (expected the folder of a finished `adamergex run`)")
    data = json.loads(path.read_text())
    config_path = run_dir / "config.json"
    config = ExperimentConfig.model_validate_json(config_path.read_text()) if config_path.is_file() else None
    return RunRecords.from_json(data), config, data.get("wall_time_s")


def run_experiment(config: ExperimentConfig, *, dry_run: bool = False, progress: bool = True,
                   console: Console | None = None) -> tuple[Pipeline, RunRecords, Path | None]:  # fmt: skip
    """Run ``config`` end to end; write records.json, config and the report into the run folder."""
    started = time.perf_counter()
    pipeline = Pipeline(config, dry_run=dry_run, progress=progress, console=console)
    records = pipeline.run()
    if dry_run:
        return pipeline, records, None
    run_dir = config.output
    atomic_write_text(run_dir / "config.json", config.model_dump_json(indent=2), force=True)
    wall = time.perf_counter() - started
    payload = {**records.to_json(), "wall_time_s": wall, "log": asdict(pipeline.log)}
    atomic_write_text(run_dir / "records.json", json.dumps(payload, indent=2), force=True)
    return pipeline, records, write_report(run_dir, records, config, wall)
