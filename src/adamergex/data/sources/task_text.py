"""In-domain, label-free reference text: the texts of a task's **train split** in one language.

Only the task's long text field (:attr:`Task.text_field`, e.g. MultiEmo's review) is kept; labels and every
other field are dropped. The corpus is built from the ``train`` split alone, so it never holds a dev or test
item. For MultiEmo that also rules out translations of dev and test items: its languages are index-aligned
translations and the split is one split of the aligned indices shared by every language
(:mod:`adamergex.data.splits`), so the train split of any language holds only translations of train items.
As a second guard, a train text identical (up to white space) to a text of another split of the same task
and language is dropped; ``metadata["dropped_heldout_duplicates"]`` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adamergex.data.cache import SourceUnavailableError
from adamergex.data.tasks import get_task

TRAIN_SPLIT = "train"


@dataclass
class TaskText:
    """Train-split texts of a task in one language, and where they come from."""

    lang: str
    documents: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)


def _key(text: str) -> str:
    return " ".join(text.split())


def load_task_text(
    lang: str, *, task: str | None = None, limit: int | None = None, seed: int = 0, **task_options: Any
) -> TaskText:
    """The train-split texts of ``task`` in ``lang``, labels dropped.

    Args:
        lang: language of the task.
        task: the task's registry name (required).
        limit: keep a deterministic ``seed``-seeded subset of this many train items (as :meth:`Task.load`).
        seed: seed of the subset.
        **task_options: the task loader's options (``archive``, ``offline``, ``level``, ...).
    """
    if not task:
        raise SourceUnavailableError("reference source 'task-text' needs task=NAME (e.g. task=multiemo)")
    definition = get_task(task)
    if not definition.has_split(lang, TRAIN_SPLIT):
        has = f"; {TRAIN_SPLIT} only in {', '.join(definition.split_languages(TRAIN_SPLIT))}"
        raise SourceUnavailableError(
            f"task {definition.name!r} has no {TRAIN_SPLIT!r} split in {lang!r} (splits: "
            f"{', '.join(definition.splits)}{has if TRAIN_SPLIT in definition.splits else ''}), so it has no "
            "text that is safe to use as reference text"
        )
    if definition.text_field is None:
        raise SourceUnavailableError(f"task {definition.name!r} has no long text field to use as reference text")
    text_field = definition.text_field
    items = definition.load(lang, TRAIN_SPLIT, limit=limit, seed=seed, **task_options)
    heldout: set[str] = set()
    for split in definition.splits:
        if split != TRAIN_SPLIT:
            heldout.update(_key(str(i.fields[text_field])) for i in definition.load(lang, split, **task_options))
    texts = [str(item.fields[text_field]) for item in items]
    documents = [text for text in texts if text.strip() and _key(text) not in heldout]
    metadata = {
        "source": "task-text",
        "task": definition.name,
        "lang": definition.check_language(lang),
        "split": TRAIN_SPLIT,
        "field": text_field,
        "limit": limit,
        "seed": seed,
        "options": {key: str(value) for key, value in task_options.items()},
        "train_items": len(items),
        "dropped_heldout_duplicates": sum(1 for text in texts if text.strip() and _key(text) in heldout),
        "documents": len(documents),
        "characters": sum(len(text) for text in documents),
    }
    return TaskText(lang=str(metadata["lang"]), documents=documents, metadata=metadata)


def task_text_documents(lang: str, **options: Any) -> list[str]:
    """Reference-corpus documents: one per train item (see :func:`load_task_text`)."""
    return load_task_text(lang, **options).documents
