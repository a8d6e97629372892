"""Entailed polarity (bigbench 1.0.0): given a fact, answer a yes/no question whose answer the fact entails.
English (149 items) and a Hindi version (142 items), from the same bigbench source archive as MultiEmo.

The Hindi items are translations of most English items but are not index-aligned, so no split can keep an
English training item out of the Hindi test set: the task has one split, ``test``, for evaluation only.
Neither lm-evaluation-harness nor the AdaMergeX paper has it: ``harness`` is a plain completion prompt,
``paper`` prefixes bigbench's own instruction in the item's language; ``xlt`` is the cross-lingual-thought
prompt (:mod:`~adamergex.data.tasks.xlt`). Answers are the language's yes / no.
"""

from __future__ import annotations

import json
from pathlib import Path

from adamergex.data.cache import DataFormatError
from adamergex.data.sources.bigbench import BIGBENCH_TASKS, bigbench_cache_dir, obtain_members
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem
from adamergex.data.tasks.xlt import xlt_template

#: bigbench task folder, answer words (yes, no), instruction (bigbench's task prefix) and answer cue per language.
SOURCES = {
    "en": (
        "entailed_polarity",
        ("yes", "no"),
        "Given a fact, answer the following question with a yes or a no.",
        "A:",
    ),
    "hi": (
        "entailed_polarity_hindi",
        ("हां", "नहीं"),
        "एक तथ्य को देखते हुए, हां या नहीं के साथ एक प्रश्न का उत्तर दें।",
        "उत्तर:",
    ),
}
WORDS = {
    lang: {"yes": yes, "no": no, "instruction": instruction, "answer_word": cue}
    for lang, (_, (yes, no), instruction, cue) in SOURCES.items()
}


def cache_path(folder: str) -> Path:
    """Where a bigbench ``<folder>/task.json`` is cached."""
    return bigbench_cache_dir() / folder / "task.json"


def load_items(lang: str, split: str, *, archive: str | Path | None = None, offline: bool = False) -> list[TaskItem]:
    """All items of ``lang`` (``split`` is always ``test``); both languages are extracted in one pass."""
    obtain_members(
        {f"{BIGBENCH_TASKS}/{folder}/task.json": cache_path(folder) for folder, _, _, _ in SOURCES.values()},
        archive=archive,
        offline=offline,
    )
    folder, answers, _, _ = SOURCES[lang]
    path = cache_path(folder)
    items = []
    for index, example in enumerate(json.loads(path.read_text(encoding="utf-8"))["examples"]):
        scores = example.get("target_scores", {})
        gold = [answer for answer, score in scores.items() if score == 1]
        if len(gold) != 1 or gold[0] not in answers or set(scores) != set(answers):
            raise DataFormatError(f"{path}: example {index} should score exactly one of {answers}, got {scores}")
        items.append(
            TaskItem(
                id=f"entailed_polarity/{lang}/{split}/{index}",
                lang=lang,
                fields={"input": example["input"], "label": answers.index(gold[0]), "index": index},
            )
        )
    return items


TASK = Task(
    name="entailed_polarity",
    description="yes/no questions entailed by a fact (bigbench), English and Hindi, evaluation only",
    languages=tuple(SOURCES),
    splits=("test",),
    kind="multiple_choice",
    metrics=("accuracy",),
    loader=load_items,
    templates={
        "harness": PromptTemplate(
            prompt="{input}\n{answer_word}",
            choices=(" {yes}", " {no}"),
            words=WORDS,
            source="adamergex completion prompt (no lm-evaluation-harness task exists)",
        ),
        "paper": PromptTemplate(
            prompt="{instruction}\n{input}\n{answer_word}",
            choices=(" {yes}", " {no}"),
            words=WORDS,
            source="adamergex instruction prompt with bigbench's task prefix",
        ),
        "xlt": xlt_template(
            expertise="reading comprehension",
            request="{input}",
            goal="Answer the question as the fact implies.",
            form="{yes} or {no}",
            choices=(" {yes}", " {no}"),
            words=WORDS,
        ),
    },
    source="bigbench 1.0.0 entailed_polarity / entailed_polarity_hindi",
    labels=("yes", "no"),
)
