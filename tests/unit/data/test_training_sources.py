"""SQuAD v1.1 and GSM8K as the training data of XQuAD and MGSM, English XCOPA's held-out validation split, and
``data_files`` templates, on the miniature's fixture rows (tests/fixtures/data/hf/paper, written by hand in
each hub dataset's schema). Expected prompts, answers and held-out members are written out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from adamergex.data.cache import DataFormatError, SourceUnavailableError
from adamergex.data.sources.huggingface import GSM8K, SQUAD, expand_data_files, load_rows
from adamergex.data.splits import SplitError, held_out
from adamergex.data.tasks import TaskError, get_task

PAPER = Path(__file__).resolve().parents[2] / "fixtures" / "data" / "hf" / "paper"
TEMPLATE = str(PAPER / "{dataset}_{lang}_{split}.jsonl")


def load(task: str, lang: str, split: str):
    return get_task(task).load(lang, split, data_files=TEMPLATE)


def test_xquad_trains_on_squad_without_the_held_out_article() -> None:
    train, dev = load("xquad", "en", "train"), load("xquad", "en", "dev")
    assert len(train) == 23 and {item.fields["title"] for item in train}.isdisjoint({"Wetland"})
    assert [item.id for item in dev] == ["xquad/en/dev/sq-024", "xquad/en/dev/sq-025"]
    first = train[0]
    assert first.id == "xquad/en/train/sq-001"
    assert (first.fields["answer"], first.fields["answers"]) == ("1872", ["1872"])
    task = get_task("xquad")
    harness = task.render(first, "harness")
    context = "The lighthouse on the northern cape was built in 1872. Its lamp can be seen from 30 kilometres away."
    assert harness.prompt == f"Context: {context}\n\nQuestion: When was the lighthouse built?\n\nAnswer:"
    assert (harness.target, harness.gold, harness.stop, harness.max_new_tokens) == (" 1872", ["1872"], ["\n"], 256)
    paper = task.render(first, "paper")
    assert paper.prompt == (
        "Answer the question with a span copied from the context.\n"
        f"Context: {context}\nQuestion: When was the lighthouse built?\nAnswer:"
    )
    # training and evaluation share the template: an XQuAD test item renders in the same form
    (test, _) = load("xquad", "en", "validation")
    assert task.render(test, "paper").prompt.startswith("Answer the question with a span copied from the context.\n")


def test_mgsm_trains_on_gsm8k_and_reads_the_number_after_the_marker() -> None:
    train, dev = load("mgsm", "en", "train"), load("mgsm", "en", "dev")
    assert len(train) == 25 and [item.fields["answer"] for item in dev] == ["1550", "48", "84"]
    assert [item.id for item in dev] == ["mgsm/en/dev/3", "mgsm/en/dev/16", "mgsm/en/dev/24"]
    by_question = {item.fields["question"][:12]: item for item in train}
    assert by_question["A shirt cost"].fields["answer"] == "12.5"
    assert by_question["A library ha"].fields["answer"] == "1860"  # "#### 1,860"
    first = train[0]
    assert first.fields["solution"].endswith("#### 24")
    rendered = get_task("mgsm").render(first, "harness")
    assert rendered.prompt == (
        "Question: Lena has 4 boxes with 6 pencils in each box. How many pencils does she have?\nAnswer:"
    )
    assert (rendered.target, rendered.gold) == (" 24", ["24"])
    assert get_task("mgsm").render(first, "paper").prompt == (
        "Solve the math problem and give only the final number.\n"
        "Question: Lena has 4 boxes with 6 pencils in each box. How many pencils does she have?\nAnswer:"
    )


def test_training_splits_exist_only_in_english_and_say_so() -> None:
    for task, split in (("mgsm", "train"), ("mgsm", "dev"), ("xquad", "train"), ("xquad", "dev"), ("xcopa", "train")):
        assert get_task(task).split_languages(split) == ("en",)
        assert get_task(task).has_split("en", split) and not get_task(task).has_split("de", split)
    with pytest.raises(TaskError, match=r"task 'mgsm' has split 'train' \(GSM8K train.*'exemplars'\) only in en"):
        get_task("mgsm").load("de", "train", data_files=TEMPLATE)
    with pytest.raises(
        TaskError, match=r"task 'xquad' has split 'train' \(SQuAD v1.1 train.*\) only in en, not in 'es'"
    ):
        get_task("xquad").load("es", "train")
    assert get_task("xnli").split_languages("train") == get_task("xnli").languages
    (exemplar,) = load("mgsm", "de", "exemplars")  # MGSM's own train split, read through {split} = train
    assert exemplar.id == "mgsm/de/exemplars/0" and exemplar.fields["answer"] == "9"


def test_english_xcopa_validation_is_held_out_of_balanced_copa_train() -> None:
    train, validation = load("xcopa", "en", "train"), load("xcopa", "en", "validation")
    assert [item.id for item in validation] == ["xcopa/en/validation/8", "xcopa/en/validation/10"]
    assert len(train) == 14 and {item.id.rsplit("/", 1)[1] for item in train}.isdisjoint({"8", "10"})
    assert len(load("xcopa", "en", "test")) == 3
    assert len(load("xcopa", "sw", "validation")) == 2  # other languages read XCOPA's own split


def test_data_file_templates_name_the_missing_file_and_refuse_unknown_placeholders(tmp_path: Path) -> None:
    assert expand_data_files(TEMPLATE, dataset="gsm8k", lang="en", split="train") == [
        str(PAPER / "gsm8k_en_train.jsonl")
    ]
    with pytest.raises(SourceUnavailableError, match=r"xnli_fr_test.jsonl \(from the template .*\) does not exist"):
        get_task("xnli").load("fr", "test", data_files=TEMPLATE)
    with pytest.raises(DataFormatError, match=r"placeholder\(s\) language .*expected only \{dataset\}, \{lang\}"):
        expand_data_files(str(tmp_path / "{language}.jsonl"), dataset="xnli", lang="de", split="test")
    plain = PAPER / "xnli_de_test.jsonl"
    assert expand_data_files(plain, dataset="xnli", lang="de", split="train") == [str(plain)]  # used as given


def test_hub_ids_configurations_and_splits(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def record(path, config, **kwargs):
        seen.append((path, config, kwargs["split"]))
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", record)
    for task, split in (("xquad", "train"), ("xquad", "dev"), ("mgsm", "dev"), ("mgsm", "exemplars")):
        with pytest.raises(SourceUnavailableError, match="Hugging Face hub"):
            get_task(task).load("en", split)
    assert seen == [
        ("rajpurkar/squad", "plain_text", "train"),
        ("rajpurkar/squad", "plain_text", "train"),
        ("openai/gsm8k", "main", "train"),  # dev is held out of GSM8K train; GSM8K test is never read
        ("juletxara/mgsm", "en", "train"),
    ]
    with pytest.raises(SourceUnavailableError, match="question, answer"):
        load_rows(GSM8K, "main", "train")
    with pytest.raises(SourceUnavailableError, match="id, title, context, question, answers"):
        load_rows(SQUAD, "plain_text", "train")


def test_bad_rows_are_named(tmp_path: Path) -> None:
    gsm = tmp_path / "gsm.jsonl"
    gsm.write_text(json.dumps({"question": "What is 2 + 2?", "answer": "2 + 2 = 4"}) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"openai/gsm8k row 0: the answer does not end in '#### <number>'"):
        get_task("mgsm").load("en", "train", data_files=gsm)
    squad = tmp_path / "squad.jsonl"
    squad.write_text(json.dumps({"id": "1", "context": "c", "question": "q", "answers": {}}) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"rows lack field\(s\) title of rajpurkar/squad"):
        get_task("xquad").load("en", "train", data_files=squad)


def test_held_out_is_a_fixed_share_decided_by_the_key_alone() -> None:
    keys = [f"article {index}" for index in range(10_000)]
    chosen = [key for key in keys if held_out(key, 50)]
    assert 150 <= len(chosen) <= 250  # one in 50 of 10,000, within sampling noise of a uniform hash
    assert [key for key in reversed(keys) if held_out(key, 50)] == chosen[::-1]  # order does not matter
    with pytest.raises(SplitError, match="every >= 2"):
        held_out("x", 1)
