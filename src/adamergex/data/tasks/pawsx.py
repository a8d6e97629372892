"""PAWS-X (Yang et al., 2019): paraphrase identification in 7 languages, ``google-research-datasets/paws-x``.

``harness``: lm-evaluation-harness ``paws_<lang>`` (checked against lm-eval 0.4.13, after the harness's
label-order fix): an empty context and the whole sentences ``"{sentence1}, <right>? <No>, {sentence2}"``
(label 0) and ``"{sentence1}, <right>? <Yes>, {sentence2}"`` (label 1, paraphrase) as the two continuations,
with no delimiter, so the scorer conditions on the model's start token only. As in the harness's
``process_docs`` (de, en, es, fr only), both sentences are detokenised (PAWS-X text has spaces before
punctuation), the first loses a final ``.``, ``,`` or ``;`` and the second starts lower-case. Rows with an
empty sentence are dropped (the harness filters them too). ``paper``: an English instruction prompt in the
AdaMergeX style on the raw sentences. ``xlt``: the cross-lingual-thought prompt
(:mod:`~adamergex.data.tasks.xlt`) on the raw sentences, with the paper protocol's answers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from adamergex.data.sources.huggingface import PAWSX, iter_rows, load_rows
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem
from adamergex.data.tasks.xlt import xlt_template

# (question word, yes, no), as in the harness's paws-x config generator (French "Non" after the fix).
_WORDS = {
    "de": ("richtig", "Ja", "Nein"),
    "en": ("right", "Yes", "No"),
    "es": ("verdad", "Sí", "No"),
    "fr": ("n'est-ce pas", "Oui", "Non"),
    "ja": ("ですね", "はい", "いいえ"),
    "ko": ("맞죠", "예", "아니요"),
    "zh": ("对吧", "是", "不是"),
}
#: languages whose harness task cleans the sentences with ``process_docs`` (not ja, ko, zh).
CLEANED = ("de", "en", "es", "fr")
WORDS = {
    lang: {**dict(zip(("question_word", "yes", "no"), words, strict=True)), "cleanup": str(lang in CLEANED)}
    for lang, words in _WORDS.items()
}


def detokenize(text: str) -> str:
    """Undo PAWS-X's tokenisation the way the harness does: no space before ``n't``, ``)``, ``.``, ``,``,
    ``'`` or after ``(``, and none on the inner side of double quotes."""
    text = text.replace(" n't", "n't").replace(" )", ")").replace("( ", "(")
    text = text.replace('" ', '"').replace(' "', '"')
    return re.sub(r" (['.,])", r"\1", text)


def derive_harness(values: dict[str, Any]) -> dict[str, Any]:
    """The harness's sentence clean-up (see the module docstring), for the languages in :data:`CLEANED`."""
    if values["cleanup"] != "True":
        return {"sentence1_clean": values["sentence1"], "sentence2_clean": values["sentence2"]}
    first = detokenize(str(values["sentence1"])).strip()
    if first.endswith((".", ",", ";")):
        first = first[:-1]
    second = detokenize(str(values["sentence2"])).strip()
    return {"sentence1_clean": first, "sentence2_clean": second[:1].lower() + second[1:]}


def load_items(lang: str, split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """``google-research-datasets/paws-x`` config ``lang``, fields id / sentence1 / sentence2 / label."""
    rows = load_rows(PAWSX, lang, split, data_files=data_files, lang=lang)
    return [
        TaskItem(
            id=f"pawsx/{lang}/{split}/{row['id']}",
            lang=lang,
            fields={"sentence1": row["sentence1"], "sentence2": row["sentence2"], "label": int(row["label"])},
        )
        for row in iter_rows(rows)
        if row["sentence1"] not in (None, "") and row["sentence2"] not in (None, "")
    ]


TASK = Task(
    name="pawsx",
    description="paraphrase identification (2 classes), 7 languages",
    languages=tuple(sorted(WORDS)),
    splits=("train", "validation", "test"),
    kind="multiple_choice",
    metrics=("accuracy",),
    loader=load_items,
    templates={
        "harness": PromptTemplate(
            prompt="",
            choices=(
                "{sentence1_clean}, {question_word}? {no}, {sentence2_clean}",
                "{sentence1_clean}, {question_word}? {yes}, {sentence2_clean}",
            ),
            words=WORDS,
            derive=derive_harness,
            source="lm-evaluation-harness paws_<lang>",
        ),
        "paper": PromptTemplate(
            prompt=(
                "Sentence 1: {sentence1}\nSentence 2: {sentence2}\n"
                "Do the two sentences mean the same thing? Answer yes or no.\nAnswer:"
            ),
            choices=(" no", " yes"),
            source="adamergex instruction prompt in the AdaMergeX style",
        ),
        "xlt": xlt_template(
            expertise="paraphrase identification",
            request="Sentence 1: {sentence1}\nSentence 2: {sentence2}",
            goal="Decide whether the two sentences mean the same thing.",
            form="yes or no",
            choices=(" no", " yes"),
        ),
    },
    source="PAWS-X (Yang et al., 2019), google-research-datasets/paws-x",
    labels=("not_paraphrase", "paraphrase"),
)
