"""A source language other than English (``source_lang: es``) on the offline data: MultiEmo's shared split
keeps every Spanish training item (and its translations) out of every other language's dev and test sets,
and the in-domain reference text of Spanish is its train split. (Spanish fortunes: the integration test
``tests/integration/test_data_fortunes.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from adamergex.data.reference import load_reference_source
from adamergex.data.tasks import get_task
from synthetic_multiemo import write_multiemo_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_multiemo_folder(tmp_path_factory.mktemp("bigbench"), {"en": 8_215, "es": 8_215, "de": 8_215})


def aligned(items) -> set[int]:
    return {item.fields["aligned_index"] for item in items}


def test_spanish_training_items_never_reach_another_language_s_dev_or_test(folder: Path) -> None:
    task = get_task("multiemo")
    train = task.load("es", "train", archive=folder)
    assert len(train) == 6_715 and train[0].id.startswith("multiemo-text/es/train/")
    assert aligned(train) == aligned(task.load("en", "train", archive=folder))  # one split for every language
    for lang in ("en", "de", "es"):
        for split in ("dev", "test"):
            assert aligned(train).isdisjoint(aligned(task.load(lang, split, archive=folder))), (lang, split)
    # the Spanish texts are the Spanish file's own (synthetic texts name their language and index)
    assert all(item.fields["text"].startswith(f"es review {item.fields['index']} ") for item in train)


def test_spanish_task_text_is_its_train_split(folder: Path) -> None:
    text = load_reference_source("task-text", "es", task="multiemo", archive=folder)
    assert text.metadata["lang"] == "es" and len(text.documents) == 6_715
    assert all(document.startswith("es review ") for document in text.documents)
