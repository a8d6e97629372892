"""The ``task-text`` reference source never holds a dev or test item of any language, nor a translation of
one: checked by aligned index on synthetic MultiEmo files whose every text names its aligned index."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from adamergex.cli import main
from adamergex.data.cache import SourceUnavailableError
from adamergex.data.reference import load_reference_documents, load_reference_source
from adamergex.data.sources.task_text import load_task_text
from adamergex.data.splits import multiemo_split
from adamergex.data.tasks import get_task
from synthetic_multiemo import write_multiemo_folder

_ALIGNED = re.compile(r"^(\w+) review (\d+) \(aligned (\d+|None)\)$")


def _aligned_indices(documents: list[str]) -> set[int | None]:
    found: set[int | None] = set()
    for document in documents:
        match = _ALIGNED.match(document)
        assert match is not None, document
        found.add(None if match.group(3) == "None" else int(match.group(3)))
    return found


def test_no_dev_or_test_index_of_any_language(multiemo_folder: Path) -> None:
    split = multiemo_split("text")
    heldout = set(split.dev) | set(split.test)
    assert len(heldout) == 1_500
    task = get_task("multiemo")
    # every language's own dev/test items, by the aligned index each item records
    for lang in ("en", "de", "pl"):
        for name in ("dev", "test"):
            assert {item.fields["aligned_index"] for item in task.load(lang, name, archive=multiemo_folder)} <= heldout
    for lang in ("en", "de", "pl"):
        text = load_task_text(lang, task="multiemo", archive=multiemo_folder)
        indices = _aligned_indices(text.documents)
        assert not indices & heldout, lang
        assert indices - {None} == set(split.train), lang  # every train item, and nothing else
        assert all(document.startswith(f"{lang} review ") for document in text.documents)
        assert text.metadata["split"] == "train" and text.metadata["dropped_heldout_duplicates"] == 0
    assert None in _aligned_indices(load_task_text("pl", task="multiemo", archive=multiemo_folder).documents)


def test_labels_are_dropped_and_limit_subsets_train_only(multiemo_folder: Path) -> None:
    documents = load_reference_documents("task-text", "de", task="multiemo", archive=multiemo_folder, limit=50)
    assert len(documents) == 50
    assert not any(label in document for document in documents for label in ("positive", "negative", "neutral"))
    assert not _aligned_indices(documents) & (set(multiemo_split("text").test) | set(multiemo_split("text").dev))


def test_a_train_text_equal_to_a_heldout_text_is_dropped(tmp_path: Path) -> None:
    folder = write_multiemo_folder(tmp_path, {"en": 8_215})
    path = folder / "all_text_en" / "task.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    train_index, test_index = multiemo_split("text").train[0], multiemo_split("text").test[0]
    data["examples"][train_index]["input"] = "  " + data["examples"][test_index]["input"].replace(" ", "  ")
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_reference_source("task-text", "en", task="multiemo", archive=folder)
    assert loaded.metadata["dropped_heldout_duplicates"] == 1
    assert len(loaded.documents) == len(multiemo_split("text").train) - 1
    assert test_index not in _aligned_indices(loaded.documents)


def test_task_without_train_split_or_name_is_refused() -> None:
    with pytest.raises(SourceUnavailableError, match="needs task=NAME"):
        load_task_text("de")
    with pytest.raises(SourceUnavailableError, match="task 'xquad' has no 'train' split"):
        load_task_text("de", task="xquad")
    with pytest.raises(SourceUnavailableError, match="task 'xnli' has no long text field"):
        load_task_text("de", task="xnli")


def test_cli_prepares_task_text(multiemo_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "de-task-text.jsonl"
    args = ["data", "prepare", "reference", "--source", "task-text", "--lang", "de", "--archive", str(multiemo_folder)]
    result = CliRunner().invoke(main, [*args, "--task", "multiemo", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0 and f"wrote {len(multiemo_split('text').train)} documents" in result.output
    documents = [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert not _aligned_indices(documents) & set(multiemo_split("text").test)
    refused = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "x.jsonl")])
    assert refused.exit_code == 2 and "needs --task NAME" in refused.output
