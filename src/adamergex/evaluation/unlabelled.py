"""Unlabelled target-language inputs for label-free calibration, and the prior a model holds on them.

The inputs come from the task's ``train`` split only — never a dev or test item, nor (for index-aligned
translations such as MultiEmo) a translation of one, since the aligned split keeps an index in one split in
every language. Their labels are removed before anything else touches them: the templates' ``gold_field`` and
the task's :attr:`~adamergex.data.tasks.base.Task.label_fields`. A template still needs a gold index to render,
so it gets placeholders, twice (the first and the last choice): a prompt or choices that differ between the two
would depend on the label, and are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adamergex.data.tasks.base import Protocol, Task, TaskError, TaskItem
from adamergex.errors import AdamergexError
from adamergex.evaluation.calibration import estimate_prior
from adamergex.evaluation.loglikelihood import score_multiple_choice
from adamergex.evaluation.sharding import SINGLE_PROCESS, Shard

#: The only split unlabelled calibration inputs are drawn from.
UNLABELLED_SPLIT = "train"


@dataclass(frozen=True)
class UnlabelledPrompt:
    """One unlabelled input as the model sees it: its id, the prompt and the choices scored after it."""

    id: str
    prompt: str
    choices: tuple[str, ...]


def without_labels(task: Task, item: TaskItem) -> TaskItem:
    """``item`` without the fields that hold or name its answer (every template's ``gold_field`` and the
    task's ``label_fields``)."""
    labels = {template.gold_field for template in task.templates.values()} | set(task.label_fields)
    return TaskItem(id=item.id, lang=item.lang, fields={k: v for k, v in item.fields.items() if k not in labels})


def render_unlabelled(task: Task, item: TaskItem, protocol: Protocol = "harness") -> UnlabelledPrompt:
    """The prompt and choices of an item that has no label (:func:`without_labels`).

    Raises :class:`TaskError` when the rendering depends on the label.
    """
    gold_field = task.templates[protocol].gold_field if protocol in task.templates else "label"
    first = task.render(TaskItem(item.id, item.lang, {**item.fields, gold_field: 0}), protocol)
    choices = first.choices or []
    last = task.render(TaskItem(item.id, item.lang, {**item.fields, gold_field: len(choices) - 1}), protocol)
    if (first.prompt, first.choices) != (last.prompt, last.choices):
        raise TaskError(f"task {task.name!r}: the {protocol} prompt of item {item.id} depends on its label")
    return UnlabelledPrompt(item.id, first.prompt, tuple(choices))


def unlabelled_prompts(
    task: Task,
    lang: str,
    *,
    protocol: Protocol = "harness",
    limit: int | None = None,
    seed: int = 0,
    load_options: Mapping[str, Any] | None = None,
) -> list[UnlabelledPrompt]:
    """Rendered ``train``-split inputs of ``task`` in ``lang``, labels removed before rendering.

    ``limit`` keeps a ``seed``-seeded subset (the same indices in aligned languages); ``load_options`` reach
    ``task.load`` (data source options, text truncation) as in evaluation.
    """
    if task.kind != "multiple_choice":
        raise AdamergexError(f"task {task.name!r} is a {task.kind} task; label-free calibration needs multiple choice")
    task.check_split(UNLABELLED_SPLIT)
    items = task.load(lang, UNLABELLED_SPLIT, limit=limit, seed=seed, **dict(load_options or {}))
    return [render_unlabelled(task, without_labels(task, item), protocol) for item in items]


def estimate_model_prior(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[UnlabelledPrompt],
    *,
    batch_size: int = 8,
    progress: bool = True,
    shard: Shard = SINGLE_PROCESS,
) -> list[float]:
    """The batch-calibration prior (:func:`~adamergex.evaluation.calibration.estimate_prior`) of ``model`` on
    ``prompts``, each choice scored by its summed log-likelihood as in evaluation."""
    pairs = [(p.prompt, list(p.choices)) for p in prompts]
    scores = score_multiple_choice(model, tokenizer, pairs, batch_size=batch_size, progress=progress, shard=shard)
    return estimate_prior([score.loglikelihoods for score in scores])
