"""The experiment config: one YAML file, validated by one pydantic model (the single source of truth).

``adamergex run --print-schema`` prints its JSON schema; every field's description is its documentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from adamergex.adapters.types import AdapterKind
from adamergex.data.tasks.base import Protocol
from adamergex.errors import AdamergexError
from adamergex.merging.combination import ExactLoraMode
from adamergex.pipeline.executor_spec import ExecutorSpec, StepResources
from adamergex.pipeline.methods import METHOD_NAMES, METHODS
from adamergex.pipeline.spec import Strict as _Strict

if TYPE_CHECKING:
    Method = str
else:  # the names of the method table, so that a new method is one entry there
    Method = Literal[METHOD_NAMES]
SMALL_DEV = 100
__all__ = ["ExecutorSpec", "ExperimentConfig", "StepResources", "load_config"]


class ReferenceSpec(_Strict):
    """The reference task: causal LM on plain text in each language."""

    source: str = Field(
        "udhr", description="Reference text source: fortunes, udhr, task-text, huggingface (Wikipedia) or files."
    )
    options: dict[str, Any] = Field(default_factory=dict, description="Source options (e.g. a local path).")

    @model_validator(mode="after")
    def _known_options(self) -> ReferenceSpec:
        """Ask the data layer which options the source takes, so a typo fails here and not after training."""
        from adamergex.data.reference import reference_source_options

        try:
            accepted = reference_source_options(self.source)
        except AdamergexError as error:
            raise ValueError(str(error)) from None
        if accepted is None:  # the source passes any option on
            return self
        unknown = sorted(set(self.options) - accepted)
        if unknown:
            raise ValueError(f"unknown option(s) {unknown} for source {self.source!r}; allowed: {sorted(accepted)}")
        return self


class TaskSpec(_Strict):
    """A labelled task: trained in the source language, evaluated in the targets."""

    name: str = Field(description="Task name from `adamergex data list` (e.g. multiemo, xnli, xcopa).")
    train_size: int | None = Field(None, ge=1, description="Source-language training items (None: all).")
    dev_size: int = Field(100, ge=1, description="Dev items used to tune t.")
    test_size: int | None = Field(None, ge=1, description="Test items per target language (None: all).")
    max_text_tokens: int | None = Field(None, ge=8, description="Cut long inputs to this many tokens.")
    options: dict[str, Any] = Field(default_factory=dict, description="Task loader options.")
    target_langs: list[str] | None = Field(
        None, description="Target languages for this task (default: the experiment's target_langs)."
    )
    train_split: str = Field("train", description="Split the task adapters are trained on.")
    dev_split: str | None = Field(None, description="Split used to tune t (default: dev, else validation).")
    test_split: str | None = Field(None, description="Split evaluated (default: test, else validation).")

    def resolve_split(self, role: Literal["dev", "test"], available: tuple[str, ...]) -> str:
        """The split used for ``role``: as configured, else the first of the usual names the task has."""
        chosen = self.dev_split if role == "dev" else self.test_split
        if chosen is not None:
            return chosen
        for name in ("dev", "validation") if role == "dev" else ("test", "validation"):
            if name in available:
                return name
        raise ValueError(f"task {self.name!r} has no {role} split among {list(available)}; set {role}_split")


def _within(*pairs: tuple[Any, Sequence[Any] | None]) -> bool:
    """Whether each value is in its allowed list (None allows every value)."""
    return all(allowed is None or value in allowed for value, allowed in pairs)


class FixedTSpec(_Strict):
    """Fixed t values evaluated on the test set for some languages and methods (e.g. a sensitivity curve on one
    language), beside ``tuning.compare_t``."""

    t: list[float] = Field(min_length=1, description="The t values.")
    langs: list[str] | None = Field(None, min_length=1, description="Target languages (default: every target).")
    methods: list[Method] | None = Field(None, min_length=1, description="Methods (default: every method with a t).")
    adapters: list[AdapterKind] | None = Field(None, min_length=1, description="Adapter kinds (default: all).")

    def covers(self, lang: str, method: str, adapter: str) -> bool:
        return _within((lang, self.langs), (method, self.methods), (adapter, self.adapters))


class TuningSpec(_Strict):
    """How ``t: tune`` chooses t."""

    dev: Literal["source", "target", "unlabelled"] = Field(
        "source",
        description="source: score on the source-language dev set (strict zero-shot, the default and the "
        "headline); unlabelled: the label-free information-maximisation criterion on target-language dev inputs "
        "(labels unused); target: accuracy on a labelled target-language dev set (few-shot model selection, "
        f"refused under {SMALL_DEV} items unless force_small_dev). Results say which.",
    )
    compare: list[Literal["source", "target", "unlabelled"]] = Field(
        [], description="Further selection settings, each reported as its own row beside the headline one."
    )
    compare_t: list[float] = Field(
        [],
        description="Fixed t values also evaluated on the test set and reported beside the selected t: [1] is "
        "the method's own value (no selection at all); a list beyond 1 gives a sensitivity curve.",
    )
    compare_langs: list[str] | None = Field(None, description="Languages for compare_t (default: every target).")
    compare_methods: list[Method] | None = Field(
        None, description="Methods for compare_t (default: every method with a t)."
    )
    compare_fixed: list[FixedTSpec] = Field(
        [],
        description="Further sets of fixed t values, each on its own languages and methods (e.g. a curve on one "
        "language while compare_t: [1] runs everywhere).",
    )
    force_small_dev: bool = Field(False, description=f"Allow a target-language dev set under {SMALL_DEV} items.")
    grid: list[float] = Field([0.0, 0.25, 0.5, 0.75, 1.0], min_length=1, description="Coarse grid of t.")
    refine_rounds: int = Field(1, ge=0, description="Refinement rounds around the best grid point.")
    budget: int | None = Field(
        None,
        ge=1,
        description="Dev evaluations per method, language and seed, grid included (default: the grid "
        "plus two per refinement round); must cover the grid.",
    )

    @model_validator(mode="after")
    def _budget_covers_grid(self) -> TuningSpec:
        if self.budget is not None and self.budget < len(set(self.grid)):
            raise ValueError(f"budget {self.budget} is smaller than the {len(set(self.grid))}-point grid")
        return self

    def fixed_sets(self) -> list[FixedTSpec]:
        """Every set of fixed t values scored on the test set: ``compare_t`` on ``compare_langs`` and
        ``compare_methods``, then each ``compare_fixed`` entry."""
        main = FixedTSpec.model_construct(t=self.compare_t, langs=self.compare_langs, methods=self.compare_methods)
        return ([main] if self.compare_t else []) + self.compare_fixed


class ScopeSpec(_Strict):
    """Where one method is scored: a subset of the target languages, seeds and adapter kinds (default: all).

    The source-language score of a method scored there (Eng-FT, majority) does not depend on ``langs``.
    """

    langs: list[str] | None = Field(None, min_length=1, description="Target languages (default: every target).")
    seeds: list[int] | None = Field(None, min_length=1, description="Seeds (default: every seed).")
    adapters: list[AdapterKind] | None = Field(None, min_length=1, description="Adapter kinds (default: all).")

    def covers(self, lang: str, seed: int, adapter: str) -> bool:
        return _within((lang, self.langs), (seed, self.seeds), (adapter, self.adapters))


class ReferenceAblationSpec(ScopeSpec):
    """Merges scored a second time with reference adapters trained on another source (e.g. task-text), reported
    as their own rows (``adamergex@task-text``) and compared item by item with the main reference source."""

    source: str = Field(description="Reference text source of the ablation (see reference.source).")
    options: dict[str, Any] = Field(default_factory=dict, description="Source options.")
    methods: list[Method] = Field(["adamergex"], min_length=1, description="Merge methods scored with it.")

    @model_validator(mode="after")
    def _known_source(self) -> ReferenceAblationSpec:
        ReferenceSpec(source=self.source, options=self.options)  # the same checks as the main source
        return self

    @property
    def reference(self) -> ReferenceSpec:
        return ReferenceSpec(source=self.source, options=self.options)


class DiagnosticsSpec(_Strict):
    """The assumption diagnostic and its noise floor."""

    noise_floor: Literal["auto", "replicate", "off"] = Field(
        "auto",
        description="Replicate reference adapters for the noise floor: auto uses the seeds when there are "
        "two or more; replicate also trains one more seed's reference adapters when there is one seed; off.",
    )

    @field_validator("noise_floor", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """``noise_floor: off`` unquoted: YAML 1.1 (PyYAML) reads the word off as false."""
        return "off" if value is False else value


class TrainingRoles(_Strict):
    """Overrides of `adamergex train` settings per role (any TrainingConfig field except base/data/lang/out)."""

    reference: dict[str, Any] = Field(default_factory=dict, description="Settings for reference adapters.")
    task: dict[str, Any] = Field(default_factory=dict, description="Settings for task adapters.")
    target_ft: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings that override `task` for the target-language task adapters of the target-ft "
        "baseline (e.g. fewer steps in a short demo).",
    )

    @field_validator("reference", "task", "target_ft")
    @classmethod
    def _known_fields(cls, values: dict[str, Any]) -> dict[str, Any]:
        return check_training_settings(values)


class TrainingSpec(TrainingRoles):
    """Overrides of `adamergex train` settings per role, and per adapter kind on top of them."""

    by_kind: dict[AdapterKind, TrainingRoles] = Field(
        default_factory=dict,
        description="Per adapter kind, settings that override the roles' (e.g. ia3: {task: {learning_rate: 1e-2}}).",
    )

    def settings(self, role: Literal["reference", "task", "target_ft"], kind: str) -> dict[str, Any]:
        """The settings of ``role`` for adapter ``kind``: the role's, then the kind's overrides."""
        own = self.by_kind.get(kind)  # type: ignore[call-overload]
        return {**getattr(self, role), **(getattr(own, role) if own else {})}


def check_training_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Refuse a setting that is not a TrainingConfig field a config may set, or a value it does not take."""
    from adamergex.training.config import TrainingConfig

    reserved = {"base", "data", "lang", "out", "force", "resume", "checkpoint_dir", "adapter"}
    allowed = set(TrainingConfig.model_fields) - reserved
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown}; allowed: {sorted(allowed)}")
    for name, value in values.items():
        check_training_value(name, value)
    return values


def check_training_value(name: str, value: Any) -> None:
    """Validate one training setting against its TrainingConfig field (type, bounds, finiteness); the value
    itself is kept as written, so step keys do not change."""
    from adamergex.training.config import TrainingConfig

    field = TrainingConfig.model_fields[name]
    annotated: Any = Annotated[field.annotation, field]  # built at runtime from the field: no static type
    adapter: TypeAdapter[Any] = TypeAdapter(annotated, config=ConfigDict(allow_inf_nan=False))
    try:
        adapter.validate_python(value)
    except ValidationError as error:
        first = error.errors()[0]
        raise ValueError(f"{name}: {first['msg']} (got {value!r})") from None


class EvaluationSpec(_Strict):
    batch_size: int | Literal["auto"] = Field("auto", description="Evaluation batch size or auto.")


class ExperimentConfig(_Strict):
    """One experiment: base model, languages, tasks, adapter kinds, methods, t, and where results go."""

    name: str = Field(description="Experiment name (used in reports).")
    base_model: str = Field(description="Base model: short name (gemma-3-270m), folder, .gguf file or hub id.")
    adapters: list[AdapterKind] = Field(["lora"], min_length=1, description="Adapter kinds to run.")
    source_lang: str = Field("en", description="Language of the task training data.")
    target_langs: list[str] = Field(
        min_length=1, description="Target languages (ISO 639-1); a task may narrow them with its own target_langs."
    )
    reference: ReferenceSpec = Field(default_factory=ReferenceSpec)
    tasks: list[TaskSpec] = Field(min_length=1)
    methods: list[Method] = Field(
        list(METHOD_NAMES), min_length=1, description=f"Methods, from {', '.join(METHOD_NAMES)}."
    )
    t: float | list[float] | Literal["tune"] = Field(
        "tune", description="t for adamergex methods: a value, a list (each reported), or 'tune'."
    )
    tuning: TuningSpec = Field(default_factory=TuningSpec)
    scope: dict[Method, ScopeSpec] = Field(
        default_factory=dict,
        description="Per method, where it is scored (e.g. adamergex-cross: {langs: [de]}); default everywhere.",
    )
    reference_ablations: list[ReferenceAblationSpec] = Field(
        [], description="Merges scored again with reference adapters trained on another text source."
    )
    merge_mode: ExactLoraMode = Field("concat", description="LoRA merge: exact concat or rank-k svd.")
    merge_rank: int | None = Field(None, ge=1, description="Output rank for merge_mode svd.")
    protocol: Protocol = Field("harness", description="Prompt protocol for training and eval.")
    seeds: list[int] = Field([0], min_length=1, description="Training seeds (results averaged over seeds).")
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    diagnostics: DiagnosticsSpec = Field(default_factory=DiagnosticsSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    output: Path = Field(Path("runs/experiment"), description="Run folder (cache, adapters, results).")

    @field_validator("output")
    @classmethod
    def _output_folder(cls, output: Path) -> Path:
        if output.exists() and not output.is_dir():
            raise ValueError(f"{output} is a file; expected a run folder")
        return output

    def task_languages(self, task: TaskSpec) -> list[str]:
        return list(task.target_langs or self.target_langs)

    @model_validator(mode="after")
    def _check(self) -> ExperimentConfig:
        if any(self.source_lang in self.task_languages(task) for task in self.tasks):
            raise ValueError(f"source_lang {self.source_lang!r} is also a target language")
        if len(set(self.target_langs)) != len(self.target_langs):
            raise ValueError("target_langs has duplicates")
        self._check_target_dev()
        self._check_scopes()
        return self

    def _check_scopes(self) -> None:
        """Every language, seed, kind and method a scope, an ablation or compare_t names must be in the run."""
        targets = {lang for task in self.tasks for lang in self.task_languages(task)}
        named: list[tuple[str, str | None, ScopeSpec]] = [
            (f"scope.{method}", method, spec) for method, spec in self.scope.items()
        ]
        named += [(f"reference_ablations[{i}]", None, spec) for i, spec in enumerate(self.reference_ablations)]
        for where, method, spec in named:
            if method is not None and method not in self.methods:
                raise ValueError(f"{where}: method {method!r} is not in methods {self.methods}")
            for field, values, allowed in (
                ("langs", spec.langs, targets),
                ("seeds", spec.seeds, set(self.seeds)),
                ("adapters", spec.adapters, set(self.adapters)),
            ):
                unknown = [v for v in values or [] if v not in allowed]
                if unknown:
                    raise ValueError(f"{where}.{field}: {unknown} not in the run's {field} {sorted(allowed)}")
        task_names = [task.name for task in self.tasks]
        for where, reference in [("reference", self.reference)] + [
            (f"reference_ablations[{i}]", ablation.reference) for i, ablation in enumerate(self.reference_ablations)
        ]:
            if reference.source == "task-text" and reference.options.get("task") not in task_names:
                raise ValueError(
                    f"{where}: source task-text needs options.task, one of the run's tasks {task_names} "
                    f"(got {reference.options.get('task')!r})"
                )
        for i, ablation in enumerate(self.reference_ablations):
            if ablation.source == self.reference.source and ablation.options == self.reference.options:
                raise ValueError(f"reference_ablations[{i}]: source {ablation.source!r} is the main reference source")
            not_merges = [m for m in ablation.methods if METHODS[m].build is None]
            if not_merges:
                raise ValueError(f"reference_ablations[{i}].methods: {not_merges} are not merges")
        tuning = self.tuning
        # (where each list is set, then the methods, languages and kinds): compare_t's, then compare_fixed's
        Lists = tuple[tuple[str, str, str], Sequence[str] | None, Sequence[str] | None, Sequence[str] | None]
        sets: list[Lists] = [
            (("tuning.compare_methods", "tuning.compare_langs", ""), tuning.compare_methods, tuning.compare_langs, None)
        ]
        for i, extra in enumerate(tuning.compare_fixed):
            where = f"tuning.compare_fixed[{i}]"
            fields = (f"{where}.methods", f"{where}.langs", f"{where}.adapters")
            sets.append((fields, extra.methods, extra.langs, extra.adapters))
        for (methods_field, langs_field, adapters_field), methods, langs, adapters in sets:
            for method in methods or []:
                if not METHODS[method].takes_t:
                    raise ValueError(f"{methods_field}: {method!r} has no t")
            unknown_langs = [lang for lang in langs or [] if lang not in targets]
            if unknown_langs:
                raise ValueError(f"{langs_field}: {unknown_langs} not in the target languages {sorted(targets)}")
            unknown_kinds = [kind for kind in adapters or [] if kind not in self.adapters]
            if unknown_kinds:
                raise ValueError(f"{adapters_field}: {unknown_kinds} not in the run's adapters {self.adapters}")

    def _check_target_dev(self) -> None:
        tuning = self.tuning
        uses_target = self.t == "tune" and "target" in (tuning.dev, *tuning.compare)
        small = [task.name for task in self.tasks if task.dev_size < SMALL_DEV]
        if uses_target and small and not tuning.force_small_dev:
            raise ValueError(
                f"tuning on a target-language dev set of fewer than {SMALL_DEV} items (task(s) {', '.join(small)}) "
                "selects t on noise; raise dev_size or set tuning.force_small_dev"
            )


def _location(loc: tuple[Any, ...]) -> list[str]:
    """The parts of a pydantic error location that name config fields (not the type tags of a union)."""
    tags = {"str", "int", "float", "bool", "list", "dict", "none"}
    parts = [str(p) if str(p).isprintable() else repr(p) for p in loc]
    return [p for p in parts if p not in tags and not ("[" in p and p.endswith("]"))]


def _format_error(error: ValidationError, where: str) -> str:
    """One line: the most specific error of the first bad field (every alternative of a union at that place)."""
    errors = error.errors()
    top = errors[0]["loc"][:1]
    same_field = [e for e in errors if e["loc"][:1] == top]
    depth = max(len(_location(e["loc"])) for e in same_field)
    chosen = [e for e in same_field if len(_location(e["loc"])) == depth]
    first = chosen[0]
    location = ".".join(_location(first["loc"])) or "(top level)"
    messages = [" ".join(e["msg"].split()) for e in chosen]
    if first.get("type") == "extra_forbidden":
        messages = ["unknown field"]
    message = " or ".join(dict.fromkeys([messages[0], *(m.removeprefix("Input should be ") for m in messages[1:])]))
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) or got is None or len(repr(got)) > 80 else f" (got {got!r})"
    others = len({e["loc"][:1] for e in errors}) - 1
    extra = f"; {others} more field(s) with errors" if others else ""
    return f"invalid config {where}: {location}: {message}{shown}{extra}"


def load_config(path: str | Path, **overrides: Any) -> ExperimentConfig:
    """Read and validate a YAML experiment config; errors name the field and what is allowed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise AdamergexError(f"cannot read config {path}: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AdamergexError(f"config {path} is not UTF-8 text (byte {error.start}: {raw[error.start]:#04x})") from None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as error:  # ValueError: a date like 2024-13-45
        reason = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
        raise AdamergexError(f"config {path} is not valid YAML: {reason}") from None
    if not isinstance(data, dict):
        raise AdamergexError(f"config {path} must be a mapping of fields to values")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as error:
        raise AdamergexError(_format_error(error, str(path))) from None
