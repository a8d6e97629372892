from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adamergex.data.cache import DataFormatError, SourceUnavailableError
from adamergex.data.sources.files import read_documents
from adamergex.data.sources.huggingface import XCOPA, XNLI, load_rows, wikipedia_documents

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def test_each_file_type(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first document\nwith two lines", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"text": "jsonl one"}\n\n{"text": "jsonl two"}\n', encoding="utf-8")
    (tmp_path / "c.json").write_text(json.dumps([{"body": "json one"}]), encoding="utf-8")
    pq.write_table(pa.table({"text": ["parquet one", None]}), tmp_path / "d.parquet")
    assert read_documents([tmp_path / "a.txt", tmp_path / "b.jsonl"]) == [
        "first document\nwith two lines",
        "jsonl one",
        "jsonl two",
    ]
    assert read_documents(tmp_path / "c.json", text_field="body") == ["json one"]
    assert read_documents(tmp_path / "d.parquet") == ["parquet one"]


def test_empty_file_and_bad_records(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"empty\.txt: the file has no text"):
        read_documents(tmp_path / "empty.txt")
    (tmp_path / "bad.jsonl").write_text('{"title": "no text"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match="record 1 has no string field 'text'"):
        read_documents(tmp_path / "bad.jsonl")
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        read_documents(tmp_path / "missing.txt")
    (tmp_path / "x.csv").write_text("a", encoding="utf-8")
    with pytest.raises(DataFormatError, match="unsupported file type"):
        read_documents(tmp_path / "x.csv")


def test_hub_unreachable_says_so_and_how_to_pass_files(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def unreachable(*args, **kwargs):
        calls.append((args, kwargs))
        raise ConnectionError("Couldn't reach 'facebook/xnli' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(SourceUnavailableError) as error:
        load_rows(XNLI, "sw", "test")
    assert calls == [(("facebook/xnli", "sw"), {"split": "test", "streaming": False})]
    message = str(error.value)
    assert "Hugging Face hub" in message and "data_files" in message and "premise, hypothesis, label" in message


def test_xlsum_asks_the_hub_for_language_name_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    from adamergex.data.tasks import get_task

    seen = []

    def record(path, config, **kwargs):
        seen.append((path, config, kwargs["split"]))
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", record)
    for lang in ("sw", "zh"):
        with pytest.raises(SourceUnavailableError):
            get_task("xlsum").load(lang, "test")
    assert seen == [("csebuetnlp/xlsum", "swahili", "test"), ("csebuetnlp/xlsum", "chinese_simplified", "test")]


def test_wikipedia_from_local_rows_skips_empty_articles() -> None:
    documents = wikipedia_documents("sw", data_files=FIXTURES / "hf" / "wikipedia_sw.jsonl", max_documents=5)
    assert documents == [
        "Mto ni mkondo wa maji unaotiririka kuelekea baharini.",
        "Ziwa ni eneo kubwa la maji lililozungukwa na nchi kavu.",
    ]
    assert len(wikipedia_documents("sw", data_files=FIXTURES / "hf" / "wikipedia_sw.jsonl", max_documents=1)) == 1


def test_a_split_the_dataset_lacks_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_split(*args, **kwargs):
        raise ValueError("Unknown split \"train\". Should be one of ['validation', 'test'].")

    monkeypatch.setattr(datasets, "load_dataset", no_such_split)
    with pytest.raises(DataFormatError, match=r"cambridgeltl/xcopa \(sw, train\) has no split 'train'"):
        load_rows(XCOPA, "sw", "train")
