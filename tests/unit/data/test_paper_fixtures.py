"""The miniature of examples/paper.yaml has every file it reads: for each of the config's tasks, the English
train / dev / test splits the config resolves, and the fixture's target language's test and dev splits (and
its train split where the task has one there), load from tests/fixtures/data/hf/paper through one
``data_files`` template and render under every protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from adamergex.data.tasks import PROTOCOLS, get_task
from adamergex.pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = str(ROOT / "tests" / "fixtures" / "data" / "hf" / "paper" / "{dataset}_{lang}_{split}.jsonl")
#: the target language of each task in the miniature's fixture files.
TARGET = {"xnli": "de", "xcopa": "sw", "pawsx": "de", "mgsm": "de", "xquad": "de", "xlsum": "sw"}
CONFIG = load_config(ROOT / "examples" / "paper.yaml")


def test_the_paper_config_has_all_five_paper_tasks_and_paws_x() -> None:
    assert sorted(task.name for task in CONFIG.tasks) == sorted(TARGET)
    assert all(TARGET[task.name] in CONFIG.task_languages(task) for task in CONFIG.tasks)


@pytest.mark.parametrize("spec", CONFIG.tasks, ids=lambda spec: spec.name)
def test_every_split_the_miniature_reads_is_there(spec) -> None:
    task = get_task(spec.name)
    source, target = CONFIG.source_lang, TARGET[spec.name]
    reads = [
        (source, spec.train_split),
        (source, spec.resolve_split("dev", task.splits)),
        (source, spec.resolve_split("test", task.splits)),
        (target, spec.resolve_split("test", task.splits)),
    ]
    if task.has_split(target, spec.resolve_split("dev", task.splits)):
        reads.append((target, spec.resolve_split("dev", task.splits)))
    if task.has_split(target, spec.train_split):
        reads.append((target, spec.train_split))  # the target-ft baseline
    for lang, split in reads:
        items = task.load(lang, split, data_files=TEMPLATE)
        assert items, (lang, split)
        for protocol in PROTOCOLS:
            assert [task.render(item, protocol).id for item in items] == [item.id for item in items]  # type: ignore[arg-type]


def test_reference_text_of_every_language_the_miniature_trains() -> None:
    """The paper's reference source (Wikipedia, ``source: huggingface``) reads the same template."""
    from adamergex.data.reference import load_reference_documents, reference_source_options

    assert "data_files" in (reference_source_options("huggingface") or ())
    for lang in sorted({CONFIG.source_lang, *TARGET.values()}):
        documents = load_reference_documents("huggingface", lang, data_files=TEMPLATE)
        assert len(documents) == 3, lang
