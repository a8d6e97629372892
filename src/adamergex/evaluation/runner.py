"""Evaluate an in-memory model on one task and language; results as a JSON-ready record.

:func:`evaluate` takes a model object (a base model, a ``PeftModel``, or a merged adapter that was never
written to disk), so the pipeline and the CLI share it. Multiple-choice tasks are scored by log-likelihood
(:mod:`~adamergex.evaluation.loglikelihood`), generation tasks by greedy decoding
(:mod:`~adamergex.evaluation.generation`); every metric carries n and a bootstrap 95% interval.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch

from adamergex.data.tasks.base import Protocol
from adamergex.errors import AdamergexError
from adamergex.evaluation.generation import generate_greedy
from adamergex.evaluation.loglikelihood import encode_text, score_multiple_choice
from adamergex.evaluation.metrics import (
    PER_ITEM_METRICS,
    MetricValue,
    macro_f1_with_interval,
    mean_with_interval,
)
from adamergex.evaluation.sharding import SINGLE_PROCESS, Shard
from adamergex.files import atomic_write_text
from adamergex.provenance import environment_versions

BatchSize = int | Literal["auto"]
RESULTS_SCHEMA = "adamergex.eval/1"
_HARNESS_MAX_GEN_TOKS = 256
_CPU_BATCH_CAP = 32
_CUDA_BATCH_CAP = 256


@dataclass
class EvalResult:
    """One evaluation: a model (and adapter) on one task, language, protocol and split."""

    model: str
    task: str
    language: str
    protocol: str
    split: str
    n: int
    metrics: dict[str, MetricValue]
    batch_size: int
    seconds: float
    model_fingerprint: str | None = None
    adapter: str | None = None
    adapter_fingerprint: str | None = None
    limit: int | None = None
    seed: int = 0
    predictions: list[dict[str, Any]] | None = None
    versions: dict[str, str | None] = field(default_factory=environment_versions)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    #: How the predictions were calibrated (:func:`~adamergex.evaluation.calibration.calibrate_result`); None: raw.
    calibration: dict[str, Any] | None = None

    @property
    def items_per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``schema`` names the layout)."""
        record: dict[str, Any] = {
            "schema": RESULTS_SCHEMA,
            "model": self.model,
            "model_fingerprint": self.model_fingerprint,
            "adapter": self.adapter,
            "adapter_fingerprint": self.adapter_fingerprint,
            "task": self.task,
            "language": self.language,
            "protocol": self.protocol,
            "split": self.split,
            "limit": self.limit,
            "seed": self.seed,
            "n": self.n,
            "metrics": {name: value.to_json() for name, value in self.metrics.items()},
            "batch_size": self.batch_size,
            "seconds": round(self.seconds, 3),
            "items_per_second": round(self.items_per_second, 3),
            "versions": self.versions,
            "created": self.created,
        }
        if self.calibration is not None:
            record["calibration"] = self.calibration
        if self.predictions is not None:
            record["predictions"] = self.predictions
        return record


def auto_batch_size(model: Any, max_tokens: int, n_items: int) -> int:
    """A batch size for sequences of up to ``max_tokens`` tokens, probed on the model's device.

    On CUDA: try a forward pass of the longest shape at halving batch sizes (from 256, or fewer items)
    until one fits, then keep half of it as head-room for the KV cache of the continuation pass. On CPU,
    where running out of memory kills the process instead of raising: the largest batch whose KV cache
    and widest activation fit in a quarter of the available memory, at most 32 (larger batches do not
    raise CPU throughput and add padding).
    """
    parameter = next(model.parameters())
    upper = max(1, n_items)
    if parameter.device.type == "cuda":
        candidate = min(_CUDA_BATCH_CAP, upper)
        while candidate > 1:
            try:
                with torch.no_grad():
                    ids = torch.zeros((candidate, max_tokens), dtype=torch.long, device=parameter.device)
                    model(input_ids=ids, logits_to_keep=1)
                return max(1, candidate // 2)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                candidate //= 2
        return 1
    config = getattr(model.config, "text_config", None) or model.config
    hidden = int(getattr(config, "hidden_size", 1024))
    layers = int(getattr(config, "num_hidden_layers", 24))
    widest = max(hidden * 4, int(getattr(config, "intermediate_size", 0) or 0))
    bytes_per_value = parameter.element_size()
    per_row = max_tokens * (2 * layers * hidden + 4 * widest) * bytes_per_value
    available = _available_memory()
    return max(1, min(_CPU_BATCH_CAP, upper, available // 4 // max(per_row, 1)))


def _available_memory() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 4 << 30


def _resolve_batch_size(batch_size: BatchSize, model: Any, max_tokens: int, n_items: int) -> int:
    if batch_size == "auto":
        return auto_batch_size(model, max_tokens, n_items)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise AdamergexError(f"batch size must be 'auto' or a positive integer, got {batch_size!r}")
    return batch_size


def _get_task(task: Any) -> Any:
    if isinstance(task, str):
        from adamergex.data.tasks import get_task

        return get_task(task)
    return task


def evaluate(
    model: Any,
    tokenizer: Any,
    task: Any,
    lang: str,
    *,
    split: str = "test",
    limit: int | None = None,
    protocol: Protocol = "harness",
    batch_size: BatchSize = "auto",
    seed: int = 0,
    model_name: str | None = None,
    model_fingerprint: str | None = None,
    adapter: str | None = None,
    adapter_fingerprint: str | None = None,
    keep_predictions: bool = True,
    resamples: int = 1000,
    progress: bool = True,
    load_options: dict[str, Any] | None = None,
    shard: Shard = SINGLE_PROCESS,
) -> EvalResult:
    """Evaluate ``model`` on ``task`` in ``lang``.

    Args:
        model: causal LM (plain or PEFT-wrapped); put in eval mode here.
        tokenizer: its tokenizer.
        task: a :class:`~adamergex.data.tasks.Task` or its registered name.
        lang: language code (normalised by the task).
        split: split to evaluate.
        limit: evaluate a seeded subset of this many items (same indices in aligned languages).
        protocol: ``harness`` (lm-evaluation-harness prompts) or ``paper`` (AdaMergeX prompts).
        batch_size: prompts per forward pass, or ``"auto"`` (:func:`auto_batch_size`).
        seed: seed of the subset and of the bootstrap.
        model_name, model_fingerprint, adapter, adapter_fingerprint: recorded in the result.
        keep_predictions: record per-item predictions.
        resamples: bootstrap resamples per metric.
        progress: show progress bars.
        load_options: passed to ``task.load`` (data source options, text truncation).
        shard: this process's place in a multi-process evaluation (``accelerate launch``; see
            :mod:`~adamergex.evaluation.sharding`): it scores its share of the batches and every process
            returns the whole result, identical to a one-process run with the same batch size.
    """
    task = _get_task(task)
    lang = task.check_language(lang)
    task.check_split(split)
    items = task.load(lang, split, limit=limit, seed=seed, **(load_options or {}))
    if not items:
        raise AdamergexError(f"task {task.name!r} has no items in language {lang!r}, split {split!r}")
    rendered = [task.render(item, protocol) for item in items]
    if task.kind not in _SCORERS:
        raise AdamergexError(f"task {task.name!r} has kind {task.kind!r}; expected one of {', '.join(_SCORERS)}")
    model.eval()
    started = time.perf_counter()
    scored = _SCORERS[task.kind](model, tokenizer, task, rendered, batch_size, progress, shard)
    metrics = scored.metrics(task.metrics, resamples, seed)
    seconds = time.perf_counter() - started
    return EvalResult(
        model=str(model_name or getattr(model, "name_or_path", type(model).__name__)),
        task=task.name,
        language=lang,
        protocol=protocol,
        split=split,
        n=len(rendered),
        metrics=metrics,
        batch_size=scored.batch_size,
        seconds=seconds,
        model_fingerprint=model_fingerprint,
        adapter=adapter,
        adapter_fingerprint=adapter_fingerprint,
        limit=limit,
        seed=seed,
        predictions=scored.predictions if keep_predictions else None,
    )


@dataclass
class _Scored:
    """What scoring one task kind produced: per-item predictions, the batch size used, and how to turn the
    per-item results into the task's metrics (``metrics(names, resamples, seed)``)."""

    predictions: list[dict[str, Any]]
    batch_size: int
    metrics: Callable[[Sequence[str], int, int], dict[str, MetricValue]]


def _score_choices(
    model: Any, tokenizer: Any, task: Any, rendered: list[Any], batch_size: BatchSize, progress: bool, shard: Shard
) -> _Scored:
    """Multiple choice: the summed log-likelihood of each choice after the prompt; the best one is predicted."""
    longest = max(len(encode_text(tokenizer, item.prompt + max(item.choices or [""], key=len))) for item in rendered)
    size = shard.smallest(_resolve_batch_size(batch_size, model, longest, len(rendered)))
    pairs = [(item.prompt, item.choices or []) for item in rendered]
    scores = score_multiple_choice(model, tokenizer, pairs, batch_size=size, progress=progress, shard=shard)
    predicted = [score.prediction for score in scores]
    gold = [item.choice_index for item in rendered]
    predictions = [
        {
            "id": item.id,
            "prediction": score.prediction,
            "gold": item.gold,
            "correct": score.prediction == item.gold,
            "loglikelihoods": [round(value, 6) for value in score.loglikelihoods],
        }
        for item, score in zip(rendered, scores, strict=True)
    ]
    return _Scored(predictions, size, partial(_classification_metrics, predicted=predicted, gold=gold, scores=scores))


def _score_generation(
    model: Any, tokenizer: Any, task: Any, rendered: list[Any], batch_size: BatchSize, progress: bool, shard: Shard
) -> _Scored:
    """Generation: greedy text per item, its answer read by the task's ``extract_answer`` (references too)."""
    # Stop strings and budget come with each rendered item (they depend on protocol and language).
    settings = [
        (
            tuple(getattr(item, "stop", None) or task.stop),
            getattr(item, "max_new_tokens", None) or task.max_new_tokens or _HARNESS_MAX_GEN_TOKS,
        )
        for item in rendered
    ]
    longest = max(
        len(encode_text(tokenizer, item.prompt)) + budget for item, (_, budget) in zip(rendered, settings, strict=True)
    )
    size = shard.smallest(_resolve_batch_size(batch_size, model, longest, len(rendered)))
    prompts = [item.prompt for item in rendered]
    texts = _generate_by_setting(model, tokenizer, prompts, settings, size, progress, shard)
    extract = task.extract_answer
    answers = [extract(text) for text in texts]
    references = [[extract(ref) for ref in reference_answers(item.gold)] for item in rendered]
    predictions = [
        {"id": item.id, "generation": text, "answer": answer, "gold": item.gold}
        for item, text, answer in zip(rendered, texts, answers, strict=True)
    ]
    return _Scored(predictions, size, partial(_generation_metrics, answers=answers, references=references))


def _generate_by_setting(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    settings: list[tuple[tuple[str, ...], int]],
    size: int,
    progress: bool,
    shard: Shard,
) -> list[str]:
    """Greedy texts, one call per distinct (stop strings, budget) setting, returned in input order."""
    texts = [""] * len(prompts)
    for stop, budget in dict.fromkeys(settings):
        indices = [index for index, setting in enumerate(settings) if setting == (stop, budget)]
        generated = generate_greedy(
            model,
            tokenizer,
            [prompts[index] for index in indices],
            max_new_tokens=budget,
            stop=stop,
            batch_size=size,
            progress=progress,
            shard=shard,
        )
        for index, text in zip(indices, generated, strict=True):
            texts[index] = text
    return texts


_SCORERS: dict[str, Callable[[Any, Any, Any, list[Any], BatchSize, bool, Shard], _Scored]] = {
    "multiple_choice": _score_choices,
    "generation": _score_generation,
}


def reference_answers(gold: Any) -> list[str]:
    """A generation item's reference answers as a list of strings (one answer or several)."""
    return [str(ref) for ref in gold] if isinstance(gold, list | tuple) else [str(gold)]


def classification_metrics(
    names: Sequence[str], resamples: int, seed: int, *, predicted: Sequence[int], gold: Sequence[int]
) -> dict[str, MetricValue]:
    """The metrics ``names`` (``accuracy``, ``macro_f1``) of predicted against gold choices, with intervals."""
    metrics: dict[str, MetricValue] = {}
    for name in names:
        if name == "accuracy":
            correct = [float(p == g) for p, g in zip(predicted, gold, strict=True)]
            metrics[name] = mean_with_interval(correct, resamples=resamples, seed=seed)
        elif name == "macro_f1":
            metrics[name] = macro_f1_with_interval(predicted, gold, resamples=resamples, seed=seed)
        else:
            raise AdamergexError(f"metric {name!r} does not apply to multiple choice; expected accuracy or macro_f1")
    return metrics


def _classification_metrics(
    names: Sequence[str], resamples: int, seed: int, *, predicted: list[int], gold: list[int], scores: Sequence[Any]
) -> dict[str, MetricValue]:
    metrics = classification_metrics(names, resamples, seed, predicted=predicted, gold=gold)
    normalized = [float(score.prediction_normalized == g) for score, g in zip(scores, gold, strict=True)]
    metrics["accuracy_norm"] = mean_with_interval(normalized, resamples=resamples, seed=seed)
    return metrics


def _generation_metrics(
    names: Sequence[str], resamples: int, seed: int, *, answers: list[str], references: list[list[str]]
) -> dict[str, MetricValue]:
    metrics: dict[str, MetricValue] = {}
    for name in names:
        if name == "accuracy":
            per_item = [float(answer in refs) for answer, refs in zip(answers, references, strict=True)]
        elif name in PER_ITEM_METRICS:
            function = PER_ITEM_METRICS[name]
            per_item = [function(answer, refs) for answer, refs in zip(answers, references, strict=True)]
        else:
            raise AdamergexError(
                f"metric {name!r} does not apply to generation; expected one of: accuracy, "
                + ", ".join(PER_ITEM_METRICS)
            )
        metrics[name] = mean_with_interval(per_item, resamples=resamples, seed=seed)
    return metrics


def write_results(results: Sequence[EvalResult], out: str | Path, *, force: bool = False) -> Path:
    """Write ``{"results": [...]}`` to ``out`` atomically.

    Raises :class:`~adamergex.errors.OutputExistsError` when ``out`` exists and ``force`` is false.
    """
    payload = json.dumps({"results": [result.to_json() for result in results]}, indent=2, ensure_ascii=False)
    return atomic_write_text(Path(out), payload + "\n", force=force)
