"""XCOPA (Ponti et al., 2020): causal commonsense reasoning in 11 languages, ``cambridgeltl/xcopa``; English
from ``pkavumba/balanced-copa`` as in lm-evaluation-harness ``xcopa_en``.

``harness``: lm-evaluation-harness ``xcopa_<lang>``: the premise without its final character (the period)
followed by the language's connector for ``cause`` / ``effect``, then each choice with its first letter
lower-cased as the continuation. ``paper``: an English instruction prompt in the AdaMergeX style. ``xlt``: the
cross-lingual-thought prompt (:mod:`~adamergex.data.tasks.xlt`) with the paper protocol's choices.

XCOPA has no training split; English has one (balanced COPA's ``train``) and no validation split, so English
``validation`` is a fixed held-out part of balanced COPA train (about one item in :data:`EN_DEV_EVERY`, by a
hash of the item's two alternatives, so an item and its mirrored twin, which share them, stay on one side)
and English ``train`` leaves it out. Item ids keep the row's index in balanced COPA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adamergex.data.sources.huggingface import BALANCED_COPA, XCOPA, iter_rows, load_rows
from adamergex.data.splits import held_out
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem
from adamergex.data.tasks.xlt import xlt_template

# (cause, effect) connectors, as in the harness's xcopa utils.
CONNECTORS = {
    "en": ("because", "therefore"),
    "et": ("sest", "seetõttu"),
    "ht": ("poukisa", "donk sa"),
    "id": ("karena", "maka"),
    "it": ("perché", "quindi"),
    "qu": ("imataq", "chaymi"),
    "sw": ("kwa sababu", "kwa hiyo"),
    "ta": ("காரணமாக", "எனவே"),
    "th": ("เพราะ", "ดังนั้น"),
    "tr": ("çünkü", "bu yüzden"),
    "vi": ("bởi vì", "vì vậy"),
    "zh": ("因为", "所以"),
}
WORDS = {lang: {"cause": cause, "effect": effect} for lang, (cause, effect) in CONNECTORS.items()}
#: about one English (balanced COPA train) item in this many is held out as English ``validation``.
EN_DEV_EVERY = 10
#: the balanced COPA split each English split reads.
EN_SPLITS = {"train": "train", "validation": "train", "test": "test"}


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def derive_harness(values: dict[str, Any]) -> dict[str, Any]:
    """Premise minus its last character plus the connector; choices with a lower-case first letter."""
    return {
        "premise_stem": str(values["premise"]).strip()[:-1],
        "connector": values[str(values["question"])],
        "choice1_lower": _lower_first(str(values["choice1"])),
        "choice2_lower": _lower_first(str(values["choice2"])),
    }


def _english_side(row: dict[str, Any], split: str) -> bool:
    """Whether a balanced COPA row belongs to English ``split`` (see the module docstring)."""
    if EN_SPLITS[split] != "train":
        return True
    key = "\n".join(sorted((str(row["choice1"]).strip(), str(row["choice2"]).strip())))
    return held_out(key, EN_DEV_EVERY) == (split == "validation")


def load_items(lang: str, split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """``cambridgeltl/xcopa`` config ``lang`` (English: ``pkavumba/balanced-copa``, see the module docstring)."""
    if lang == "en":
        rows = load_rows(BALANCED_COPA, None, EN_SPLITS[split], data_files=data_files, lang=lang)
    else:
        rows = load_rows(XCOPA, lang, split, data_files=data_files, lang=lang)
    return [
        TaskItem(
            id=f"xcopa/{lang}/{split}/{index}",
            lang=lang,
            fields={
                "premise": row["premise"],
                "choice1": row["choice1"],
                "choice2": row["choice2"],
                "question": row["question"],
                "label": int(row["label"]),
            },
        )
        for index, row in enumerate(iter_rows(rows))
        if lang != "en" or _english_side(row, split)
    ]


TASK = Task(
    name="xcopa",
    description="choice of plausible cause or effect (2 choices), 11 languages + English COPA",
    languages=tuple(sorted(CONNECTORS)),
    splits=("train", "validation", "test"),
    kind="multiple_choice",
    metrics=("accuracy",),
    loader=load_items,
    templates={
        "harness": PromptTemplate(
            prompt="{premise_stem} {connector}",
            choices=(" {choice1_lower}", " {choice2_lower}"),
            words=WORDS,
            derive=derive_harness,
            source="lm-evaluation-harness xcopa_<lang>",
        ),
        "paper": PromptTemplate(
            prompt=(
                "Premise: {premise}\nWhat is the more plausible {question}?\n"
                "Option 1: {choice1}\nOption 2: {choice2}\nAnswer with 1 or 2.\nAnswer:"
            ),
            choices=(" 1", " 2"),
            source="adamergex instruction prompt in the AdaMergeX style",
        ),
        "xlt": xlt_template(
            expertise="commonsense causal reasoning",
            request="Premise: {premise}\nOption 1: {choice1}\nOption 2: {choice2}",
            goal="Choose the option that is the more plausible {question} of the premise.",
            form="1 or 2",
            choices=(" 1", " 2"),
        ),
    },
    source="XCOPA (Ponti et al., 2020), cambridgeltl/xcopa; English: pkavumba/balanced-copa",
    labels=("choice1", "choice2"),
    languages_by_split={"train": ("en",)},
    split_sources={
        "train": "English: balanced COPA train, held-out part left out",
        "validation": "English: the held-out part of balanced COPA train",
    },
)
