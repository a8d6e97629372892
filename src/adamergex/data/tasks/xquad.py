"""XQuAD (Artetxe et al., 2020): extractive QA in 12 languages, ``google/xquad`` config ``xquad.<lang>``
(one split, ``validation``, 1,190 questions per language, parallel across languages).

XQuAD has no training data, so, as in the AdaMergeX paper, the task's ``train`` split is SQuAD v1.1's
(Rajpurkar et al., 2016; ``rajpurkar/squad``, configuration ``plain_text``, English only; same fields plus
``title``). ``dev`` is a fixed held-out part of SQuAD train: the questions of about one article in
:data:`SQUAD_DEV_EVERY`, chosen by a hash of the title (:func:`~adamergex.data.splits.held_out`), so no
paragraph is on both sides; ``train`` leaves them out. SQuAD's validation split is never read: XQuAD's
paragraphs are taken from it. Training prompts are the evaluation prompts of the protocol.

``harness``: lm-evaluation-harness ``xquad_<lang>`` (words checked against lm-eval 0.4.13, including its
Arabic ``سيا``): ``"<Context>: {context}\\n\\n<Question>: {question}\\n\\n<Answer>:"``, target
``" " + answers.text[0]``, stop at a newline or after 256 new tokens (the harness's default); the harness
scores exact match and F1 against the *first* answer only, so the gold of this protocol is that answer.
``paper``: an English instruction prompt in the AdaMergeX style (stop at a newline, 32 new tokens), scored
against all reference answers (SQuAD's max over answers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adamergex.data.sources.huggingface import SQUAD, XQUAD, iter_rows, load_rows
from adamergex.data.splits import held_out
from adamergex.data.tasks.answers import answer_span
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem
from adamergex.data.tasks.xlt import xlt_template

# (context, question, answer) words per language, as in the harness's xquad_<lang>.yaml files.
_WORDS = {
    "ar": ("سيا", "سؤال", "إجابة"),
    "de": ("Kontext", "Frage", "Antwort"),
    "el": ("Συμφραζόμενα", "Ερώτηση", "Απάντηση"),
    "en": ("Context", "Question", "Answer"),
    "es": ("Contexto", "Pregunta", "Respuesta"),
    "hi": ("प्रसंग", "सवाल", "उत्तर"),
    "ro": ("Context", "Întrebare", "Răspuns"),
    "ru": ("Контекст", "Вопрос", "Ответ"),
    "th": ("บริบท", "คำถาม", "คำตอบ"),
    "tr": ("Bağlam", "Soru", "Cevap"),
    "vi": ("Bối cảnh", "Câu hỏi", "Trả lời"),
    "zh": ("语境", "问题", "回答"),
}
WORDS = {
    lang: dict(zip(("context_word", "question_word", "answer_word"), words, strict=True))
    for lang, words in _WORDS.items()
}
#: the questions of about one SQuAD training article in this many are held out as the ``dev`` split.
SQUAD_DEV_EVERY = 50
SQUAD_SPLITS = ("train", "dev")


def load_items(lang: str, split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """``validation``: ``google/xquad`` config ``xquad.<lang>``; ``train`` / ``dev``: SQuAD v1.1 train
    (:func:`load_squad_items`). ``answers`` is ``{"text": [...], "answer_start": [...]}`` in both."""
    if split in SQUAD_SPLITS:
        return load_squad_items(split, data_files=data_files)
    rows = load_rows(XQUAD, f"xquad.{lang}", split, data_files=data_files, lang=lang)
    return [_item(row, lang, split) for row in iter_rows(rows)]


def load_squad_items(split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """SQuAD v1.1 train rows of ``split`` (``train``: all but the held-out articles; ``dev``: those)."""
    rows = load_rows(SQUAD, "plain_text", "train", data_files=data_files, lang="en")
    return [
        _item(row, "en", split, title=str(row["title"]))
        for row in iter_rows(rows)
        if held_out(str(row["title"]), SQUAD_DEV_EVERY) == (split == "dev")
    ]


def _item(row: dict[str, Any], lang: str, split: str, **extra: str) -> TaskItem:
    answers = [str(text) for text in row["answers"]["text"]]
    return TaskItem(
        id=f"xquad/{lang}/{split}/{row['id']}",
        lang=lang,
        fields={
            "context": row["context"],
            "question": row["question"],
            "answer": answers[0],
            "answers": answers,
            "first_answer": answers[:1],
            **extra,
        },
    )


TASK = Task(
    name="xquad",
    description="extractive question answering, 12 languages (validation); trained on SQuAD v1.1 (English)",
    languages=tuple(sorted(WORDS)),
    splits=("train", "dev", "validation"),
    kind="generation",
    metrics=("exact_match", "f1"),
    loader=load_items,
    templates={
        "harness": PromptTemplate(
            prompt="{context_word}: {context}\n\n{question_word}: {question}\n\n{answer_word}:",
            target=" {answer}",
            words=WORDS,
            answers_field="first_answer",
            max_new_tokens=256,
            source="lm-evaluation-harness xquad_<lang>",
        ),
        "paper": PromptTemplate(
            prompt=(
                "Answer the question with a span copied from the context.\n"
                "Context: {context}\nQuestion: {question}\nAnswer:"
            ),
            target=" {answer}",
            source="adamergex instruction prompt in the AdaMergeX style",
        ),
        "xlt": xlt_template(
            expertise="extractive question answering",
            request="Context: {context}\nQuestion: {question}",
            goal="Answer the question with a span copied from the context.",
            form="the span, copied in the language of the context",
            target=" {answer}",
        ),
    },
    max_new_tokens=32,
    stop=("\n",),
    text_field="context",
    source="XQuAD (Artetxe et al., 2020), google/xquad; train and dev: SQuAD v1.1 (Rajpurkar et al., 2016)",
    extract_answer=answer_span,
    languages_by_split={"train": ("en",), "dev": ("en",)},
    split_sources={
        "train": "SQuAD v1.1 train, rajpurkar/squad, held-out articles left out",
        "dev": "the held-out articles of SQuAD v1.1 train, rajpurkar/squad",
    },
)
