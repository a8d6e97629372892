"""The experiment graph: which steps a config asks for, and what each evaluation scores.

    reference corpus ─► train Rs, Rt (one per language, shared by every task)
    task data (src) ──► train T; (target data ─► train target-ft, where requested)
    T, Rt, Rs ────────► merge per method (and per t while tuning) ─► evaluate ─► report

:class:`ExperimentGraph` walks the config and hands each step (:mod:`adamergex.pipeline.steps`) to a resolver,
which gives back the step's output — or nothing, where it only plans — and tells a record sink what the output
means. A t search is the one place where which steps exist depends on outputs (dev scores); the graph asks the
resolver to choose t (:meth:`Resolve.choose`), so the same walk plans a run, plans only what is decided, or runs
it. The graph reads no cache and has no mode of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from adamergex.adapters.types import KIND_NAMES
from adamergex.errors import AdamergexError
from adamergex.pipeline.config import SMALL_DEV, ExperimentConfig, ReferenceAblationSpec, TaskSpec
from adamergex.pipeline.methods import METHODS, MethodSpec
from adamergex.pipeline.records import SELECTIONS, RecordSink, Where, fixed_t
from adamergex.pipeline.steps import Evaluation, Merge, ReferenceTraining, Step, TaskTraining, Training, Undecided
from adamergex.pipeline.tuning import information_maximisation, search_t

_TASK_KIND_NAMES = {"multiple_choice": "classification", "generation": "generation"}

#: A trained or merged adapter: its step's key and its folder (None while the step is only planned).
Adapter = tuple[str, Path | None]


class Resolve(Protocol):
    """What the graph asks of a resolver (:mod:`adamergex.pipeline.resolver`)."""

    def resolve(self, step: Step) -> Any:
        """The output of ``step`` (an adapter folder, a result record), or None where it is only planned."""
        ...

    def choose(self, search: Callable[[], float], *, survey: Callable[[], None], costliest: float) -> float | None:
        """t from ``search()`` where the dev scores it reads can be had; where they cannot, ``survey()`` first
        lists the grid's steps, and the choice is ``costliest`` (the t to assume) or None (not decided yet)."""
        ...

    def say(self, line: str) -> None:
        """A line for the console (what was chosen)."""
        ...


@dataclass
class _TaskRun:
    """One task for one adapter kind and seed: what its methods share while they are scored."""

    where: Where
    references: dict[str, Adapter]
    task_adapter: Adapter | None
    target_ft: dict[str, Adapter] = field(default_factory=dict)


def task_splits(config: ExperimentConfig) -> dict[str, dict[str, str]]:
    """The train, dev and test split of each task; refuses, before any work, a task that lacks one of the
    languages or splits the run needs."""
    from adamergex.data.tasks import get_task

    splits: dict[str, dict[str, str]] = {}
    tuning = config.tuning
    for spec in config.tasks:
        task = get_task(spec.name)
        for lang in (config.source_lang, *config.task_languages(spec)):
            task.check_language(lang)
        try:
            chosen = {
                "train": spec.train_split,
                "dev": spec.resolve_split("dev", task.splits),
                "test": spec.resolve_split("test", task.splits),
            }
        except ValueError as error:
            raise AdamergexError(str(error)) from None
        for split in chosen.values():
            task.check_split(split)
        splits[spec.name] = chosen
        if "unlabelled" in (tuning.dev, *tuning.compare) and task.kind != "multiple_choice":
            raise AdamergexError(
                f"tuning.dev unlabelled needs a multiple-choice task (choice likelihoods); {spec.name} is {task.kind}"
            )
    return splits


class ExperimentGraph:
    """The steps of one :class:`ExperimentConfig` (validated against its tasks on construction)."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.splits = task_splits(config)

    def walk(self, resolver: Resolve, sink: RecordSink) -> None:
        """Hand every step to ``resolver`` and what each output means to ``sink``."""
        self.resolver, self.sink = resolver, sink
        config = self.config
        targets = [lang for task in config.tasks for lang in config.task_languages(task)]
        langs = list(dict.fromkeys([config.source_lang, *targets]))
        for adapter in config.adapters:
            trained: dict[int, dict[str, Any]] = {}
            for seed in config.seeds:
                references = {lang: self._trained(ReferenceTraining.of(config, adapter, lang, seed)) for lang in langs}
                trained[seed] = {"references": references, "tasks": {}}
                for task in config.tasks:
                    trained[seed]["tasks"][task.name] = self._task(Where(task, adapter, seed), references)
            self._noise_floor(adapter, langs, trained)

    def _trained(self, step: Training) -> Adapter:
        folder = self.resolver.resolve(step)
        self.sink.trained(step, folder)
        return step.key, folder

    def _task(self, where: Where, references: dict[str, Adapter]) -> dict[str, Any]:
        """Every method on every target language of one task for one adapter kind and seed (and on the source
        language for the methods scored there); returns the task adapters (T and target-ft per language)."""
        config, source = self.config, self.config.source_lang
        chosen = [spec for name, spec in METHODS.items() if name in config.methods]
        needs_task = any("task" in spec.needs for spec in chosen)
        task_step = TaskTraining.of(config, where.adapter, where.task, source, where.seed)
        run = _TaskRun(where, references, self._trained(task_step) if needs_task else None)
        applicable = [spec for spec in chosen if self._applies(spec, where)]
        for spec in applicable:
            if spec.in_source:
                self._score(run, spec, source)
        for lang in config.task_languages(where.task):
            for spec in applicable:
                scope = config.scope.get(spec.name)
                if scope is None or scope.covers(lang, where.seed, where.adapter):
                    self._score(run, spec, lang)
        for ablation in config.reference_ablations:
            self._score_ablation(run, ablation)
        return {"task": run.task_adapter, "target-ft": run.target_ft}

    def _applies(self, spec: MethodSpec, where: Where) -> bool:
        """Whether ``spec`` applies to this adapter kind and task; a note says why not."""
        from adamergex.data.tasks import get_task

        if where.adapter not in spec.adapter_kinds:
            kinds = " and ".join(KIND_NAMES[kind] for kind in spec.adapter_kinds)
            self.sink.note(f"{spec.name} applies to {kinds} adapters only; skipped for {KIND_NAMES[where.adapter]}")
            return False
        if get_task(where.task.name).kind not in spec.task_kinds:
            kinds = " and ".join(_TASK_KIND_NAMES[kind] for kind in spec.task_kinds)
            self.sink.note(f"{spec.name} applies to {kinds} tasks only; skipped for {where.task.name}")
            return False
        return True

    def _score(self, run: _TaskRun, spec: MethodSpec, lang: str) -> None:
        """Score ``spec`` in ``lang``: evaluate what its table entry says it scores."""
        if spec.scores == "majority label":
            self.sink.majority(run.where, spec.name, lang, self.splits[run.where.task.name]["test"])
        elif spec.scores == "merge":
            self._score_merges(run, spec, lang, run.references, spec.name)
        elif spec.scores == "target task adapter":
            self._score_target_ft(run, spec, lang)
        else:
            adapter = run.task_adapter if spec.scores == "task adapter" else None
            self.sink.scored(
                run.where, spec.name, lang, self._test(run, adapter, lang, f"{spec.name}/{lang}", spec.name)
            )

    def _score_target_ft(self, run: _TaskRun, spec: MethodSpec, lang: str) -> None:
        """Train the task adapter on target-language data, score it, and diagnose the gap assumption with it."""
        where = run.where
        target_ft = run.target_ft[lang] = self._trained(
            TaskTraining.of(self.config, where.adapter, where.task, lang, where.seed)
        )
        self.sink.scored(where, spec.name, lang, self._test(run, target_ft, lang, f"{spec.name}/{lang}", spec.name))
        if run.task_adapter is not None:
            parts = (run.task_adapter, target_ft, run.references[lang], run.references[self.config.source_lang])
            self.sink.alignment(where, lang, _folders(parts))

    def _score_ablation(self, run: _TaskRun, ablation: ReferenceAblationSpec) -> None:
        """The ablation's merges, with reference adapters trained on its own text source, as ``method@source``."""
        where = run.where
        langs = [
            lang for lang in self.config.task_languages(where.task) if ablation.covers(lang, where.seed, where.adapter)
        ]
        if not langs or run.task_adapter is None:
            return
        references = {
            lang: self._trained(ReferenceTraining.of(self.config, where.adapter, lang, where.seed, ablation.reference))
            for lang in [self.config.source_lang, *langs]
        }
        for method in ablation.methods:
            spec = METHODS[method]
            if where.adapter not in spec.adapter_kinds:
                continue
            for lang in langs:
                self._score_merges(run, spec, lang, references, f"{method}@{ablation.source}")

    def _score_merges(
        self, run: _TaskRun, spec: MethodSpec, lang: str, references: dict[str, Adapter], name: str
    ) -> None:
        """The merge at each t to report (fixed, or chosen per selection setting), reported as ``name`` (the
        method's, or ``method@source`` with a reference ablation's adapters)."""
        where, source = run.where, self.config.source_lang
        assert run.task_adapter is not None  # every merge needs the task adapter
        parts = {"task": run.task_adapter, "reference_target": references[lang], "reference_source": references[source]}
        for t, selection in self._choose_t(spec, where, lang, parts, name):
            merged = self._merged(spec, where.adapter, parts, t, f"{name}/{lang}/t={t:g}")
            result = self._test(run, merged, lang, f"{name}/{lang}/t={t:g}", name, t)
            self.sink.scored(where, name, lang, result, t, selection)
            if name == spec.name:
                self.sink.cross(f"cross/{where.task.name}/{lang}/seed{where.seed}/t={t:g}", merged[1])

    def _merged(self, spec: MethodSpec, adapter: str, parts: dict[str, Adapter], t: float, name: str) -> Adapter:
        """The merge of ``parts`` for ``spec`` at ``t``. At t = 0 every method with a t gives back the task
        adapter (ΔW_T, l_T), so its folder is reused."""
        if spec.takes_t and t == 0.0:
            return parts["task"]
        step = Merge.of(self.config, spec.name, adapter, {role: key for role, (key, _) in parts.items()}, t, name)
        return step.key, self.resolver.resolve(step)

    def _evaluate(
        self, adapter: Adapter | None, task: TaskSpec, lang: str, role: str, name: str, **about: Any
    ) -> dict[str, Any] | None:
        """The result of evaluating ``adapter`` on the ``role`` (test, dev) split of ``task`` in ``lang``."""
        limit = task.test_size if role == "test" else task.dev_size
        split = self.splits[task.name][role]
        key = adapter[0] if adapter else None
        step = Evaluation.of(self.config, key, task, lang, split, limit, name, purpose=role, **about)
        result: dict[str, Any] | None = self.resolver.resolve(step)
        return result

    def _test(
        self, run: _TaskRun, adapter: Adapter | None, lang: str, name: str, method: str, t: float | None = None
    ) -> dict[str, Any] | None:
        return self._evaluate(adapter, run.where.task, lang, "test", name, method=method, target=lang, t=t)

    def _choose_t(
        self, spec: MethodSpec, where: Where, lang: str, parts: dict[str, Adapter], name: str
    ) -> list[tuple[float, str]]:
        """The (t, selection) pairs to report for ``spec`` (reported as ``name``): fixed ones, or one per
        selection setting, plus the fixed t values of ``tuning.fixed_sets()`` that cover it."""
        fixed = fixed_t(self.config)
        if fixed is not None:
            return [(t, "fixed") for t in fixed]
        tuning = self.config.tuning
        chosen = []
        for setting in dict.fromkeys([tuning.dev, *tuning.compare]):
            t = self._tune(spec, where, lang, parts, setting, name)
            if t is not None:
                chosen.append((t, SELECTIONS[setting]))
        fixed_t_values = [
            t for extra in tuning.fixed_sets() if extra.covers(lang, name, where.adapter) for t in extra.t
        ]
        chosen += [(float(t), "fixed") for t in dict.fromkeys(fixed_t_values)]
        return chosen

    def _tune(
        self, spec: MethodSpec, where: Where, lang: str, parts: dict[str, Adapter], setting: str, name: str
    ) -> float | None:
        """t chosen for ``spec`` (reported as ``name``) on ``lang`` in one selection setting (source, target or
        unlabelled dev); None while the dev scores the choice needs cannot be had (see :meth:`Resolve.choose`)."""
        tuning, task = self.config.tuning, where.task
        dev_lang = self.config.source_lang if setting == "source" else lang

        def dev_score(t: float) -> dict[str, Any] | None:
            merged = self._merged(spec, where.adapter, parts, t, f"{name}/{lang}/t={t:g}")
            label = f"tune/{name}/{lang}/t={t:g}"
            return self._evaluate(merged, task, dev_lang, "dev", label, method=name, target=lang, t=t)

        def objective(t: float) -> float:
            result = dev_score(t)
            if result is None:  # the search needs a dev score that is not sealed yet (now planned)
                raise Undecided
            if setting == "target" and result["n"] < SMALL_DEV and not tuning.force_small_dev:
                raise AdamergexError(
                    f"the {dev_lang} dev split of {task.name} has {result['n']} items; tuning "
                    f"on fewer than {SMALL_DEV} selects t on noise (set "
                    "tuning.force_small_dev)"
                )
            if setting == "unlabelled":
                return information_maximisation([p["loglikelihoods"] for p in result["predictions"]])
            return float(next(iter(result["metrics"].values()))["value"])

        def search() -> float:
            found = search_t(objective, tuning.grid, refine_rounds=tuning.refine_rounds, budget=tuning.budget)
            key = f"{task.name}/{where.adapter}/{name}/{SELECTIONS[setting]}/seed{where.seed}"
            self.sink.curve(key, lang, found.sorted_curve())
            chosen = f"{found.best_t:g} (objective {found.best_score:.3f})"
            self.resolver.say(f"t for {name}/{lang} ({setting} dev): {chosen}")
            return found.best_t

        def survey() -> None:
            for t in tuning.grid:
                dev_score(float(t))

        return self.resolver.choose(search, survey=survey, costliest=float(max(tuning.grid, key=abs)))

    def _noise_floor(self, adapter: str, langs: list[str], trained: dict[int, dict[str, Any]]) -> None:
        """Replicate cosines: the reference gap Rt − Rs (and the task gap, where target-ft exists) across seeds.

        With one seed and ``diagnostics.noise_floor: replicate``, the reference adapters of one more seed are
        trained for the purpose (they are what a second seed would train, so a later two-seed run reuses them).
        """
        mode = self.config.diagnostics.noise_floor
        seeds = sorted(trained)
        if mode == "off" or (len(seeds) < 2 and mode == "auto"):
            if mode == "auto" and self.sink.has_alignment():
                self.sink.note(
                    "no noise floor for the diagnostic: one seed (set diagnostics.noise_floor: "
                    "replicate, or run two seeds)"
                )
            return
        if len(seeds) < 2:
            extra = max(seeds) + 1
            references = {
                lang: self._trained(ReferenceTraining.of(self.config, adapter, lang, extra)) for lang in langs
            }
            trained[extra] = {"references": references, "tasks": {}}
            seeds.append(extra)
        source = self.config.source_lang
        for first, second in itertools.pairwise(seeds):
            a, b = trained[first], trained[second]
            for lang in langs[1:]:
                pair = (a["references"][source], a["references"][lang], b["references"][lang], b["references"][source])
                key = f"reference-gap/{adapter}/{lang}/seeds{first}-{second}"
                about = {"type": "reference_stability", "adapter": adapter, "lang": lang, "seeds": [first, second]}
                self.sink.stability(key, about, _folders(pair))
            for task_name, task_a in a["tasks"].items():
                task_b = b["tasks"].get(task_name)
                if not task_b or task_a["task"] is None:
                    continue
                for lang, target_a in task_a["target-ft"].items():
                    target_b = task_b["target-ft"].get(lang)
                    if target_b is None:
                        continue
                    pair = (task_a["task"], target_a, target_b, task_b["task"])
                    key = f"task-gap/{task_name}/{adapter}/{lang}/seeds{first}-{second}"
                    about = {"type": "task_stability", "task": task_name, "adapter": adapter, "lang": lang}
                    self.sink.stability(key, {**about, "seeds": [first, second]}, _folders(pair))


def _folders(adapters: tuple[Adapter, ...]) -> tuple[Path | None, ...]:
    return tuple(folder for _, folder in adapters)
