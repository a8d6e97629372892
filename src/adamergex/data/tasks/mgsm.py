"""MGSM (Shi et al., 2022): grade-school maths in 11 languages, ``juletxara/mgsm`` (its ``train``: 8 exemplars
with worked answers, the split ``exemplars`` here; test: 250 problems with ``answer`` None and the number in
``answer_number``).

MGSM has no training data, so, as in the AdaMergeX paper, the task's ``train`` split is GSM8K's (Cobbe et al.,
2021; ``openai/gsm8k``, configuration ``main``, English only): each row's ``answer`` is a worked solution ending
in ``#### N``, and N is the reference answer. ``dev`` is a fixed held-out part of GSM8K train (about one problem
in :data:`GSM8K_DEV_EVERY`, chosen by a hash of the question, :func:`~adamergex.data.splits.held_out`) that
``train`` leaves out. GSM8K's test split is never read: MGSM's test problems are translations of 250 of its
problems. Training prompts are the evaluation prompts of the protocol (the target is the number).

``harness``: lm-evaluation-harness ``mgsm_direct_<lang>`` (checked against lm-eval 0.4.13):
``"<Question:> {question}\\n<Answer:>"`` with the harness's words per language (German ``Frage:`` /
``Antwort:``, Spanish ``Pregunta:`` / ``Respuesta:``, French ``Question :`` / ``Réponse :``, Japanese and
Chinese with a full-width colon, ``Answer:`` elsewhere); greedy until the question word, ``</s>`` or
``<|im_end|>``, at most 256 new tokens (the harness's defaults); the gold answer is ``answer_number`` as a
string (the harness then strips white space and compares ignoring case and punctuation). Exemplar questions
already carry the question word; it is removed so exemplar and test prompts have one form. The training
target is ``" {answer_number}"`` (GSM8K: the number after ``####``). ``paper``: an English instruction prompt
in the AdaMergeX style, stopping at a newline after at most 32 tokens. ``xlt``: the cross-lingual-thought
prompt (:mod:`~adamergex.data.tasks.xlt`), room for step-by-step reasoning (the harness's stops and 256
tokens); the answer is the generation's last number, as for every protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adamergex.data.cache import DataFormatError
from adamergex.data.sources.huggingface import GSM8K, MGSM, iter_rows, load_rows
from adamergex.data.splits import held_out
from adamergex.data.tasks.answers import final_number, gsm8k_final_answer
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem
from adamergex.data.tasks.xlt import xlt_template

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
#: about one GSM8K training problem in this many is held out as the ``dev`` split.
GSM8K_DEV_EVERY = 25
#: the splits read from GSM8K (English only), and the MGSM split each other split reads.
GSM8K_SPLITS = ("train", "dev")
MGSM_SPLITS = {"exemplars": "train", "test": "test"}


def format_number(value: Any) -> str:
    """``answer_number`` as the harness prints it: integers without a decimal part."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def load_items(lang: str, split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """``train`` / ``dev``: GSM8K (:func:`load_gsm8k_items`); ``exemplars`` / ``test``: ``juletxara/mgsm``
    config ``lang`` (its ``train`` / ``test``), the question word stripped from exemplar questions."""
    if split in GSM8K_SPLITS:
        return load_gsm8k_items(split, data_files=data_files)
    prefix = WORDS[lang]["question_word"]
    rows = load_rows(MGSM, lang, MGSM_SPLITS[split], data_files=data_files, lang=lang)
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


def load_gsm8k_items(split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """GSM8K train rows of ``split`` (``train``: all but the held-out part; ``dev``: the held-out part), ids
    by their row index in GSM8K train. ``answer`` is the number after ``####``; ``solution`` keeps the worked
    solution."""
    rows = load_rows(GSM8K, "main", "train", data_files=data_files, lang="en")
    items = []
    for index, row in enumerate(iter_rows(rows)):
        question = str(row["question"]).strip()
        if held_out(" ".join(question.split()), GSM8K_DEV_EVERY) != (split == "dev"):
            continue
        answer = gsm8k_final_answer(str(row["answer"]))
        if answer is None:
            raise DataFormatError(f"{GSM8K.path} row {index}: the answer does not end in '#### <number>'")
        items.append(
            TaskItem(
                id=f"mgsm/en/{split}/{index}",
                lang="en",
                fields={"question": question, "answer": answer, "answers": [answer], "solution": row["answer"]},
            )
        )
    return items


TASK = Task(
    name="mgsm",
    description="grade-school maths word problems, direct numeric answer, 11 languages",
    languages=tuple(sorted(WORDS)),
    splits=("train", "dev", "exemplars", "test"),
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
        "xlt": xlt_template(
            expertise="arithmetic reasoning",
            request="Question: {question}",
            goal="Solve the math word problem.",
            form="a single number",
            target=" {answer}",
            stop=("Question:", "</s>", "<|im_end|>"),
            max_new_tokens=256,
        ),
    },
    max_new_tokens=32,
    stop=("\n\n", "\n"),
    source="MGSM (Shi et al., 2022), juletxara/mgsm; train and dev: GSM8K (Cobbe et al., 2021), openai/gsm8k",
    extract_answer=final_number,
    languages_by_split={"train": ("en",), "dev": ("en",)},
    split_sources={
        "train": "GSM8K train, openai/gsm8k, held-out part left out; MGSM's own exemplars are split 'exemplars'",
        "dev": "the held-out part of GSM8K train, openai/gsm8k",
        "exemplars": "MGSM's 8 worked exemplars, juletxara/mgsm train",
    },
)
