"""MGSM (Shi et al., 2022): grade-school maths in 11 languages, ``juletxara/mgsm`` (train: 8 exemplars with
worked answers; test: 250 problems with ``answer`` None and the number in ``answer_number``).

``harness``: lm-evaluation-harness ``mgsm_direct_<lang>`` (checked against lm-eval 0.4.13):
``"<Question:> {question}\\n<Answer:>"`` with the harness's words per language (German ``Frage:`` /
``Antwort:``, Spanish ``Pregunta:`` / ``Respuesta:``, French ``Question :`` / ``Réponse :``, Japanese and
Chinese with a full-width colon, ``Answer:`` elsewhere); greedy until the question word, ``</s>`` or
``<|im_end|>``, at most 256 new tokens (the harness's defaults); the gold answer is ``answer_number`` as a
string (the harness then strips white space and compares ignoring case and punctuation). Train questions
already carry the question word; it is removed so train and test prompts have one form. The training target
is ``" {answer_number}"``. ``paper``: an English instruction prompt in the AdaMergeX style, stopping at a
newline after at most 32 tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adamergex.data.sources.huggingface import MGSM, iter_rows, load_rows
from adamergex.data.tasks.answers import final_number
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem

# (question word, direct answer word), as in the harness's mgsm_direct_<lang>.yaml files.
_WORDS = {
    "bn": ("প্রশ্ন:", "Answer:"),
    "de": ("Frage:", "Antwort:"),
    "en": ("Question:", "Answer:"),
    "es": ("Pregunta:", "Respuesta:"),
    "fr": ("Question :", "Réponse :"),
    "ja": ("問題：", "Answer:"),
    "ru": ("Задача:", "Answer:"),
    "sw": ("Swali:", "Answer:"),
    "te": ("ప్రశ్న:", "Answer:"),
    "th": ("โจทย์:", "Answer:"),
    "zh": ("问题：", "Answer:"),
}
WORDS = {lang: {"question_word": question, "answer_word": answer} for lang, (question, answer) in _WORDS.items()}


def format_number(value: Any) -> str:
    """``answer_number`` as the harness prints it: integers without a decimal part."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def load_items(lang: str, split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """``juletxara/mgsm`` config ``lang``; the question word is stripped from train questions."""
    prefix = WORDS[lang]["question_word"]
    rows = load_rows(MGSM, lang, split, data_files=data_files)
    items = []
    for index, row in enumerate(iter_rows(rows)):
        question = str(row["question"]).strip()
        if question.startswith(prefix):
            question = question[len(prefix) :].strip()
        answer = format_number(row["answer_number"])
        items.append(
            TaskItem(
                id=f"mgsm/{lang}/{split}/{index}",
                lang=lang,
                fields={"question": question, "answer": answer, "answers": [answer]},
            )
        )
    return items


TASK = Task(
    name="mgsm",
    description="grade-school maths word problems, direct numeric answer, 11 languages",
    languages=tuple(sorted(WORDS)),
    splits=("train", "test"),
    kind="generation",
    metrics=("exact_match",),
    loader=load_items,
    templates={
        "harness": PromptTemplate(
            prompt="{question_word} {question}\n{answer_word}",
            target=" {answer}",
            words=WORDS,
            stop=("{question_word}", "</s>", "<|im_end|>"),
            max_new_tokens=256,
            source="lm-evaluation-harness mgsm_direct_<lang>",
        ),
        "paper": PromptTemplate(
            prompt="Solve the math problem and give only the final number.\nQuestion: {question}\nAnswer:",
            target=" {answer}",
            source="adamergex instruction prompt in the AdaMergeX style",
        ),
    },
    max_new_tokens=32,
    stop=("\n\n", "\n"),
    source="MGSM (Shi et al., 2022), juletxara/mgsm",
    extract_answer=final_number,
)
