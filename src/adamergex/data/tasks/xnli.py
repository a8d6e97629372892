"""XNLI (Conneau et al., 2018): natural language inference in 15 languages, ``facebook/xnli``.

``harness``: lm-evaluation-harness ``xnli_<lang>`` (checked against lm-eval 0.4.13): an empty context and the
whole sentences ``" {premise}, <right>? <Yes>, {hypothesis}"`` / ``<Also>`` / ``<No>`` as the continuations
(the harness's default delimiter, a space, in front; the scorer conditions on the model's start token only),
with the harness's words per language (label 0 entailment, 1 neutral, 2 contradiction). ``paper``: an English
instruction prompt in the AdaMergeX style with the label names as answers. ``xlt``: the cross-lingual-thought
prompt (:mod:`~adamergex.data.tasks.xlt`) with the same answers.
"""

from __future__ import annotations

from pathlib import Path

from adamergex.data.sources.huggingface import XNLI, iter_rows, load_rows
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem
from adamergex.data.tasks.xlt import xlt_template

# (question word, entailment, neutral, contradiction), as in the harness's xnli utils.
_WORDS = {
    "ar": ("صحيح", "نعم", "لذا", "رقم"),
    "bg": ("правилно", "да", "така", "не"),
    "de": ("richtig", "Ja", "Auch", "Nein"),
    "el": ("σωστός", "Ναί", "Έτσι", "όχι"),
    "en": ("right", "Yes", "Also", "No"),
    "es": ("correcto", "Sí", "Asi que", "No"),
    "fr": ("correct", "Oui", "Aussi", "Non"),
    "hi": ("सही", "हाँ", "इसलिए", "नहीं"),
    "ru": ("правильно", "Да", "Так", "Нет"),
    "sw": ("sahihi", "Ndiyo", "Hivyo", "Hapana"),
    "th": ("ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"),
    "tr": ("doğru", "Evet", "Böylece", "Hayır"),
    "ur": ("صحیح", "جی ہاں", "اس لئے", "نہیں"),
    "vi": ("đúng", "Vâng", "Vì vậy", "Không"),
    "zh": ("正确", "是的", "所以", "不是的"),
}
WORDS = {
    lang: dict(zip(("question_word", "entailment", "neutral", "contradiction"), words, strict=True))
    for lang, words in _WORDS.items()
}


def load_items(lang: str, split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """``facebook/xnli`` config ``lang``, fields premise / hypothesis / label."""
    rows = load_rows(XNLI, lang, split, data_files=data_files, lang=lang)
    return [
        TaskItem(
            id=f"xnli/{lang}/{split}/{index}",
            lang=lang,
            fields={"premise": row["premise"], "hypothesis": row["hypothesis"], "label": int(row["label"])},
        )
        for index, row in enumerate(iter_rows(rows))
    ]


TASK = Task(
    name="xnli",
    description="natural language inference (entailment / neutral / contradiction), 15 languages",
    languages=tuple(sorted(WORDS)),
    splits=("train", "validation", "test"),
    kind="multiple_choice",
    metrics=("accuracy",),
    loader=load_items,
    templates={
        "harness": PromptTemplate(
            prompt="",
            choices=(
                " {premise}, {question_word}? {entailment}, {hypothesis}",
                " {premise}, {question_word}? {neutral}, {hypothesis}",
                " {premise}, {question_word}? {contradiction}, {hypothesis}",
            ),
            words=WORDS,
            source="lm-evaluation-harness xnli_<lang>",
        ),
        "paper": PromptTemplate(
            prompt=(
                "Premise: {premise}\nHypothesis: {hypothesis}\n"
                "Does the premise entail the hypothesis? Answer entailment, neutral or contradiction.\nAnswer:"
            ),
            choices=(" entailment", " neutral", " contradiction"),
            source="adamergex instruction prompt in the AdaMergeX style",
        ),
        "xlt": xlt_template(
            expertise="natural language inference",
            request="Premise: {premise}\nHypothesis: {hypothesis}",
            goal="Decide whether the premise entails the hypothesis, contradicts it, or neither.",
            form="entailment, neutral or contradiction",
            choices=(" entailment", " neutral", " contradiction"),
        ),
    },
    source="XNLI (Conneau et al., 2018), facebook/xnli",
    labels=("entailment", "neutral", "contradiction"),
)
