"""The ``harness`` prompts against lm-evaluation-harness's own task YAMLs, in every language of every task the
harness has: the harness's templates and functions (its Jinja renderer, its ``process_docs``, its ``!function``
hooks) render the same rows, and adamergex must produce the same context, the same continuations (delimiter
included), the same gold answer and the same stop strings.

lm-eval is a test-only dependency (``pip install -e .[harness]``); without it this module is skipped.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lm_eval", reason="lm-eval is a test-only dependency: pip install -e .[harness]")

import datasets
from lm_eval.tasks import __file__ as _harness_tasks_init
from lm_eval.tasks._yaml_loader import load_yaml
from lm_eval.utils import apply_template

from adamergex.data.tasks import get_task

HARNESS = Path(_harness_tasks_init).parent

ROWS: dict[str, list[dict[str, Any]]] = {
    "xnli": [
        {"premise": "The dog sleeps in the garden.", "hypothesis": "An animal rests outside.", "label": 0},
        {"premise": "Sie kaufte Brot", "hypothesis": "Sie kaufte Brot beim Bäcker.", "label": 1},
    ],
    "pawsx": [
        {"id": 1, "sentence1": "He did n't go ( again ) .", "sentence2": "Again , he did n't go .", "label": 1},
        {"id": 2, "sentence1": "Paul beat Mary;", "sentence2": 'mary beat " Paul " .', "label": 0},
    ],
    "xcopa": [
        {
            "premise": "The boy cried.",
            "choice1": "He fell down.",
            "choice2": "He laughed.",
            "question": "cause",
            "label": 0,
            "idx": 1,
            "changed": False,
        },
        {
            "premise": "It rained for days!",
            "choice1": "The sun shone.",
            "choice2": "The river flooded.",
            "question": "effect",
            "label": 1,
            "idx": 2,
            "changed": False,
        },
    ],
    "mgsm": [
        {
            "question": "A train runs 60 km an hour. How far does it go in 2.5 hours?",
            "answer": None,
            "answer_number": 150,
            "equation_solution": None,
        },
    ],
    "xquad": [
        {
            "id": "q1",
            "context": "The Elbe flows into the North Sea.",
            "question": "Where does the Elbe flow?",
            "answers": {"text": ["into the North Sea", "the North Sea"], "answer_start": [15, 20]},
        },
    ],
}
HARNESS_YAML = {
    "xnli": "xnli/xnli_{lang}.yaml",
    "pawsx": "paws-x/paws_{lang}.yaml",
    "xcopa": "xcopa/default_{lang}.yaml",
    "mgsm": "mgsm/direct/mgsm_direct_{lang}.yaml",
    "xquad": "xquad/xquad_{lang}.yaml",
}
CASES = [
    (task, lang)
    for task in HARNESS_YAML
    for lang in get_task(task).languages
    if (HARNESS / HARNESS_YAML[task].format(lang=lang)).is_file()
]


@pytest.fixture(scope="module")
def row_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("harness_rows")
    files = {}
    for task, rows in ROWS.items():
        files[task] = folder / f"{task}.jsonl"
        files[task].write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return files


def harness_render(config: dict[str, Any], doc: dict[str, Any], field: str) -> Any:
    """What the harness's ConfigurableTask does with a doc_to_* entry."""
    entry = config[field]
    if callable(entry):
        return entry(doc)
    if field == "doc_to_choice":
        return ast.literal_eval(apply_template(entry, doc))
    return apply_template(entry, doc) if entry else ""


def test_every_harness_language_is_covered() -> None:
    assert len(CASES) == 15 + 7 + 11 + 11 + 12


@pytest.mark.parametrize(("task_name", "lang"), CASES, ids=[f"{task}-{lang}" for task, lang in CASES])
def test_harness_protocol_matches_the_harness(task_name: str, lang: str, row_files: dict[str, Path]) -> None:
    config = load_yaml(HARNESS / HARNESS_YAML[task_name].format(lang=lang), resolve_func=task_name != "xquad")
    docs = [dict(row) for row in ROWS[task_name]]
    if callable(config.get("process_docs")):
        docs = list(config["process_docs"](datasets.Dataset.from_list(docs)))
    task = get_task(task_name)
    split = task.splits[-1]
    ours = [task.render(item, "harness") for item in task.load(lang, split, data_files=row_files[task_name])]
    assert len(ours) == len(docs)
    delimiter = config.get("target_delimiter", " ")
    for doc, rendered in zip(docs, ours, strict=True):
        assert rendered.prompt == harness_render(config, doc, "doc_to_text")
        if task.kind == "multiple_choice":
            choices = harness_render(config, doc, "doc_to_choice")
            assert rendered.choices == [delimiter + choice for choice in choices]
            assert rendered.gold == doc["label"]
        else:
            assert rendered.gold == [harness_render(config, doc, "doc_to_target")]
            assert rendered.stop == config["generation_kwargs"]["until"]
