"""XCOPA (Ponti et al., 2020): causal commonsense reasoning in 11 languages, ``cambridgeltl/xcopa``; English
from ``pkavumba/balanced-copa`` as in lm-evaluation-harness ``xcopa_en``.

``harness``: lm-evaluation-harness ``xcopa_<lang>``: the premise without its final character (the period)
followed by the language's connector for ``cause`` / ``effect``, then each choice with its first letter
lower-cased as the continuation. ``paper``: an English instruction prompt in the AdaMergeX style.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adamergex.data.sources.huggingface import BALANCED_COPA, XCOPA, iter_rows, load_rows
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem

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


def load_items(lang: str, split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """``cambridgeltl/xcopa`` config ``lang`` (English: ``pkavumba/balanced-copa``)."""
    if lang == "en":
        rows = load_rows(BALANCED_COPA, None, split, data_files=data_files)
    else:
        rows = load_rows(XCOPA, lang, split, data_files=data_files)
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
    },
    source="XCOPA (Ponti et al., 2020), cambridgeltl/xcopa; English: pkavumba/balanced-copa",
    labels=("choice1", "choice2"),
)
