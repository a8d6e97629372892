"""XL-Sum (Hasan et al., 2021): BBC article summarisation in 45 languages, ``csebuetnlp/xlsum`` whose
configurations are language *names* (``swahili``, ``chinese_simplified``, ...; see
:attr:`adamergex.data.languages.Language.xlsum`).

lm-evaluation-harness has no XL-Sum task, so both protocols are adamergex prompts: ``harness`` a plain
completion prompt, ``paper`` an English instruction prompt in the AdaMergeX style. The reference is the
one-sentence ``summary``; metric ROUGE-L. ``xlt``: the cross-lingual-thought prompt
(:mod:`~adamergex.data.tasks.xlt`), asking for the summary in the article's language.
"""

from __future__ import annotations

from pathlib import Path

from adamergex.data.languages import LANGUAGES
from adamergex.data.sources.huggingface import XLSUM, iter_rows, load_rows
from adamergex.data.tasks.answers import summary_text
from adamergex.data.tasks.base import PromptTemplate, Task, TaskItem
from adamergex.data.tasks.xlt import xlt_template

XLSUM_CONFIGS = {code: language.xlsum for code, language in LANGUAGES.items() if language.xlsum}


def load_items(lang: str, split: str, *, data_files: str | Path | list[str] | None = None) -> list[TaskItem]:
    """``csebuetnlp/xlsum`` config ``XLSUM_CONFIGS[lang]``, fields id / title / summary / text."""
    rows = load_rows(XLSUM, XLSUM_CONFIGS[lang], split, data_files=data_files, lang=lang)
    return [
        TaskItem(
            id=f"xlsum/{lang}/{split}/{row['id']}",
            lang=lang,
            fields={"text": row["text"], "title": row["title"], "summary": row["summary"], "answers": [row["summary"]]},
        )
        for row in iter_rows(rows)
    ]


TASK = Task(
    name="xlsum",
    description="one-sentence news summarisation, 44 languages with an ISO 639-1 code",
    languages=tuple(sorted(XLSUM_CONFIGS)),
    splits=("train", "validation", "test"),
    kind="generation",
    metrics=("rouge_l",),
    loader=load_items,
    templates={
        "harness": PromptTemplate(
            prompt="Article: {text}\nSummary:",
            target=" {summary}",
            source="adamergex completion prompt (no lm-evaluation-harness task exists)",
        ),
        "paper": PromptTemplate(
            prompt="Summarize the following article in one sentence.\nArticle: {text}\nSummary:",
            target=" {summary}",
            source="adamergex instruction prompt in the AdaMergeX style",
        ),
        "xlt": xlt_template(
            expertise="news summarization",
            request="Article: {text}",
            goal="Summarize the article in one sentence.",
            form="one sentence in {language_name}",
            cue="Summary",
            target=" {summary}",
        ),
    },
    max_new_tokens=64,
    stop=("\n",),
    text_field="text",
    source="XL-Sum (Hasan et al., 2021), csebuetnlp/xlsum",
    extract_answer=summary_text,
)
