"""XQuAD (Artetxe et al., 2020): extractive QA in 12 languages, ``google/xquad`` config ``xquad.<lang>``
(one split, ``validation``, 1,190 questions per language, parallel across languages).

``harness``: lm-evaluation-harness ``xquad_<lang>`` (words checked against lm-eval 0.4.13, including its
Arabic ``سيا``): ``"<Context>: {context}\\n\\n<Question>: {question}\\n\\n<Answer>:"``, target
``" " + answers.text[0]``, stop at a newline or after 256 new tokens (the harness's default); the harness
scores exact match and F1 against the *first* answer only, so the gold of this protocol is that answer.
``paper``: an English instruction prompt in the AdaMergeX style (stop at a newline, 32 new tokens), scored
against all reference answers (SQuAD's max over answers).
"""

from __future__ import annotations

from pathlib import Path

from adamergex.data.sources.huggingface import XQUAD, iter_rows, load_rows
from adamergex.data.tasks.answers import answer_span
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem

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


def load_items(lang: str, split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """``google/xquad`` config ``xquad.<lang>``; ``answers`` is ``{"text": [...], "answer_start": [...]}``."""
    rows = load_rows(XQUAD, f"xquad.{lang}", split, data_files=data_files)
    items = []
    for row in iter_rows(rows):
        answers = [str(text) for text in row["answers"]["text"]]
        items.append(
            TaskItem(
                id=f"xquad/{lang}/{split}/{row['id']}",
                lang=lang,
                fields={
                    "context": row["context"],
                    "question": row["question"],
                    "answer": answers[0],
                    "answers": answers,
                    "first_answer": answers[:1],
                },
            )
        )
    return items


TASK = Task(
    name="xquad",
    description="extractive question answering, 12 languages (validation split only)",
    languages=tuple(sorted(WORDS)),
    splits=("validation",),
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
    },
    max_new_tokens=32,
    stop=("\n",),
    text_field="context",
    source="XQuAD (Artetxe et al., 2020), google/xquad",
    extract_answer=answer_span,
)
