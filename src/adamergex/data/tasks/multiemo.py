"""MultiEmo: 4-class sentiment of consumer reviews in 11 languages (Kocoń et al., 2021, CC BY 4.0).

Data from the bigbench 1.0.0 source archive (:mod:`adamergex.data.sources.multiemo`); split by the fixed,
shared item-index split of :mod:`adamergex.data.splits`. Neither lm-evaluation-harness nor the AdaMergeX paper
has this task: the ``harness`` protocol is the plain completion prompt used for the measurements in
RESOURCES.md, scored like a harness ``multiple_choice`` task; the ``paper`` protocol prefixes bigbench's own
task instruction; ``xlt`` is the cross-lingual-thought prompt (:mod:`~adamergex.data.tasks.xlt`). English
verbalizers in every language.
"""

from __future__ import annotations

from pathlib import Path

from adamergex.data.sources.multiemo import MULTIEMO_LABELS, MULTIEMO_LANGUAGES, load_multiemo
from adamergex.data.splits import SPLIT_NAMES, UNALIGNED, aligned_index, multiemo_split_indices
from adamergex.data.tasks.base import PromptTemplate, Task, TaskError, TaskItem
from adamergex.data.tasks.xlt import xlt_template

_CHOICES = tuple(f" {label}" for label in MULTIEMO_LABELS)
BIGBENCH_INSTRUCTION = (
    "Determine whether given opinion is positive, negative, neutral or ambivalent in terms of its sentiment."
)


def load_items(
    lang: str,
    split: str,
    *,
    level: str = "text",
    archive: str | Path | None = None,
    offline: bool = False,
    allow_unaligned: bool = False,
) -> list[TaskItem]:
    """Items of ``split`` (``train`` / ``dev`` / ``test``) in ``lang`` at ``level`` (``text`` or ``sentence``).

    Sentence-level German and Portuguese are not index-aligned with the other languages, so their test sets may
    hold translations of the source language's training sentences; they load only with ``allow_unaligned=True``.
    Any aligned language can be the source: the split is one split of the aligned indices.
    """
    if lang in UNALIGNED.get(level, ()) and lang != "pl" and not allow_unaligned:
        raise TaskError(
            f"MultiEmo {level}-level {lang!r} is not index-aligned with the other languages, so its test set may "
            "contain translations of the source language's training items; pass allow_unaligned=True to use it anyway"
        )
    examples = load_multiemo(lang, level, archive=archive, offline=offline)
    indices = multiemo_split_indices(lang, level, split, len(examples))
    return [
        TaskItem(
            id=f"multiemo-{level}/{lang}/{split}/{index}",
            lang=lang,
            fields={
                "text": examples[index].text,
                "label": MULTIEMO_LABELS.index(examples[index].label),
                "label_name": examples[index].label,
                "index": index,
                "aligned_index": aligned_index(lang, level, index),
            },
        )
        for index in indices
    ]


TASK = Task(
    name="multiemo",
    description="4-class sentiment of reviews (positive / negative / neutral / ambivalent), 11 languages",
    languages=MULTIEMO_LANGUAGES,
    splits=SPLIT_NAMES,
    kind="multiple_choice",
    metrics=("accuracy", "macro_f1"),
    loader=load_items,
    label_fields=("label_name",),
    templates={
        "harness": PromptTemplate(
            prompt="Review: {text}\nSentiment:",
            choices=_CHOICES,
            source="adamergex completion prompt (no lm-evaluation-harness task exists)",
        ),
        "paper": PromptTemplate(
            prompt=BIGBENCH_INSTRUCTION + "\nReview: {text}\nSentiment:",
            choices=_CHOICES,
            source="adamergex instruction prompt with bigbench's MultiEmo task prefix",
        ),
        "xlt": xlt_template(
            expertise="sentiment analysis of reviews",
            request="Review: {text}",
            goal="Decide the overall sentiment of the review.",
            form="positive, negative, neutral or ambivalent",
            cue="Sentiment",
            choices=_CHOICES,
        ),
    },
    text_field="text",
    source="MultiEmo in bigbench 1.0.0 (Kocoń et al., 2021, CC BY 4.0)",
    labels=MULTIEMO_LABELS,
)
