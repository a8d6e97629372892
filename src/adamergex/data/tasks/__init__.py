"""The task registry. Each task is declared once, in its own module, as a :class:`Task`."""

from __future__ import annotations

from adamergex.data.tasks import entailed_polarity, mgsm, multiemo, pawsx, xcopa, xlsum, xnli, xquad
from adamergex.data.tasks.base import (
    PROTOCOLS,
    TRUNCATION_MARKER,
    TRUNCATIONS,
    PromptTemplate,
    Protocol,
    RenderedItem,
    Task,
    TaskError,
    TaskItem,
    Truncation,
    deterministic_subset,
    rendered_fingerprint,
    truncate_text,
)

_REGISTRY: dict[str, Task] = {
    module.TASK.name: module.TASK for module in (multiemo, xnli, xcopa, pawsx, mgsm, xquad, xlsum, entailed_polarity)
}


def list_tasks() -> list[str]:
    """Names of the registered tasks, sorted."""
    return sorted(_REGISTRY)


def get_task(name: str) -> Task:
    """The task called ``name`` (case-insensitive; ``paws-x`` = ``pawsx``); the error lists the valid names."""
    key = name.strip().lower().replace("-", "_")
    key = {"paws_x": "pawsx"}.get(key, key)
    if key not in _REGISTRY:
        raise TaskError(f"unknown task {name!r}; expected one of: {', '.join(list_tasks())}")
    return _REGISTRY[key]


__all__ = [
    "PROTOCOLS",
    "TRUNCATIONS",
    "TRUNCATION_MARKER",
    "PromptTemplate",
    "Protocol",
    "RenderedItem",
    "Task",
    "TaskError",
    "TaskItem",
    "Truncation",
    "deterministic_subset",
    "get_task",
    "list_tasks",
    "rendered_fingerprint",
    "truncate_text",
]
