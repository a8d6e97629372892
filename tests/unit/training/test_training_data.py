"""Training examples: answer-only label masking, packing, length-grouped batches, data errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adamergex.data.reference import ReferenceCorpus, corpus_fingerprint
from adamergex.training import EmptyDatasetError, TrainingConfig, TrainingDataError, prepare_training_data
from adamergex.training.data import IGNORE_INDEX, batch_plan, collate, pack_chunks, task_example
from tiny_lm_folders import tiny_tokenizer


def _config(tmp_path: Path, data: str, **extra: object) -> TrainingConfig:
    return TrainingConfig(base="unused", data=data, lang="en", out=tmp_path / "out", **extra)


def test_task_example_puts_labels_on_answer_and_eos_only() -> None:
    tokenizer = tiny_tokenizer()
    example = task_example("review : the cat is good sentiment :", " positive", tokenizer, max_length=64)
    prompt_ids = tokenizer("review : the cat is good sentiment :", add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(" positive", add_special_tokens=False)["input_ids"]
    assert example.input_ids == [tokenizer.bos_token_id, *prompt_ids, *answer_ids, tokenizer.eos_token_id]
    context = 1 + len(prompt_ids)
    assert example.labels[:context] == [IGNORE_INDEX] * context
    assert example.labels[context:] == [*answer_ids, tokenizer.eos_token_id]
    assert example.label_tokens == len(answer_ids) + 1


def test_collated_labels_mask_prompt_and_padding() -> None:
    tokenizer = tiny_tokenizer()
    short = task_example("the cat ->", " good", tokenizer, max_length=64, append_eos=False)
    long = task_example("the big red dog chases a small cat ->", " bad", tokenizer, max_length=64, append_eos=False)
    batch = collate([short, long], tokenizer.pad_token_id)
    labels = batch["labels"]
    # Exactly one supervised position per row: the answer word, at the end of each row's real tokens.
    good, bad = tokenizer.convert_tokens_to_ids(["good", "bad"])
    assert (labels != IGNORE_INDEX).sum(dim=1).tolist() == [1, 1]
    assert labels[0, len(short.input_ids) - 1] == good and labels[1, len(long.input_ids) - 1] == bad
    assert batch["attention_mask"][0].tolist() == [1] * len(short.input_ids) + [0] * (
        len(long.input_ids) - len(short.input_ids)
    )
    assert (batch["input_ids"][0, len(short.input_ids) :] == tokenizer.pad_token_id).all()


def test_task_example_truncates_prompt_from_the_left() -> None:
    tokenizer = tiny_tokenizer()
    example = task_example("the cat sees the dog and the bird ->", " good", tokenizer, max_length=6)
    assert len(example.input_ids) == 6
    tail = tokenizer("the bird ->", add_special_tokens=False)["input_ids"]
    assert example.input_ids[:4] == [
        tokenizer.bos_token_id,
        *tail,
    ]  # the end of the prompt survives, next to the answer
    assert example.labels[-2:] == [tokenizer.convert_tokens_to_ids("good"), tokenizer.eos_token_id]


def test_pack_chunks_keeps_every_token_once_without_padding() -> None:
    chunks = [[2, 5, 6, 7], [2, 8], [2, 9, 10, 11, 12]]
    blocks = pack_chunks(chunks, 4)
    assert blocks == [[2, 5, 6, 7], [2, 8, 2, 9], [10, 11, 12]]


def test_batch_plan_is_a_seeded_partition_and_groups_lengths() -> None:
    lengths = [int(x) for x in torch.randint(2, 200, (1000,), generator=torch.Generator().manual_seed(1))]
    plan = batch_plan(lengths, 8, seed=3, epoch=0, group_by_length=True)
    flat = sorted(i for batch in plan for i in batch)
    assert flat == list(range(1000))
    assert plan == batch_plan(lengths, 8, seed=3, epoch=0, group_by_length=True)
    assert plan != batch_plan(lengths, 8, seed=3, epoch=1, group_by_length=True)
    random_plan = batch_plan(lengths, 8, seed=3, epoch=0, group_by_length=False)

    def padded(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    assert padded(plan) < padded(random_plan) / 5


def test_reference_data_from_saved_corpus_is_packed(corpus_file: Path, tmp_path: Path) -> None:
    corpus = ReferenceCorpus.load(corpus_file)
    data = prepare_training_data(_config(tmp_path, str(corpus_file), max_length=32), tiny_tokenizer())
    stream = [t for chunk in corpus.train for t in chunk]
    assert [t for e in data.train for t in e.input_ids] == stream
    assert all(len(e.input_ids) == 32 for e in data.train[:-1])
    assert all(e.labels == e.input_ids for e in data.train)
    assert data.kind == "reference" and data.group_by_length is False
    unpacked = prepare_training_data(
        _config(tmp_path, str(corpus_file), max_length=32, packing=False), tiny_tokenizer()
    )
    assert [e.input_ids for e in unpacked.train] == corpus.train
    assert unpacked.fingerprint != data.fingerprint


def test_empty_reference_corpus_is_refused(tmp_path: Path) -> None:
    validation = [[2, 4, 5, 6]]
    corpus = ReferenceCorpus(
        train=[], validation=validation, stats={}, fingerprint=corpus_fingerprint({}, [], validation), settings={}
    )
    path = corpus.save(tmp_path / "empty.jsonl")
    with pytest.raises(EmptyDatasetError, match="no training example"):
        prepare_training_data(_config(tmp_path, str(path)), tiny_tokenizer())


def test_corpus_from_another_tokenizer_is_refused(tmp_path: Path) -> None:
    train = [[2, *range(4, 30)], [2, 900, 901, 5]]
    corpus = ReferenceCorpus(
        train=train, validation=[], stats={}, fingerprint=corpus_fingerprint({}, train, []), settings={}
    )
    path = corpus.save(tmp_path / "foreign.jsonl")
    with pytest.raises(TrainingDataError, match="token id 901"):
        prepare_training_data(_config(tmp_path, str(path)), tiny_tokenizer())


def test_unknown_data_spec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="neither a reference corpus file"):
        prepare_training_data(_config(tmp_path, str(tmp_path / "missing.jsonl")), tiny_tokenizer())


XNLI_FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "training" / "xnli_en.jsonl"


def test_task_data_from_a_registered_task_masks_everything_but_the_answer(tmp_path: Path) -> None:
    from adamergex.data.tasks import get_task

    tokenizer = tiny_tokenizer()
    config = _config(tmp_path, "task:xnli", data_options={"data_files": str(XNLI_FIXTURE)}, max_length=64)
    data = prepare_training_data(config, tokenizer)
    task = get_task("xnli")
    items = task.load("en", "train", data_files=str(XNLI_FIXTURE), seed=0)
    assert data.kind == "task" and data.group_by_length and len(data.train) == len(items) == 24
    assert len(data.validation) == 24  # the task's own validation split (the same fixture file here)
    for item, example in zip(items, data.train, strict=True):
        rendered = task.render(item, "harness")
        prompt = tokenizer(rendered.prompt, add_special_tokens=False)["input_ids"]
        answer = tokenizer(rendered.target, add_special_tokens=False)["input_ids"]  # no EOS: multiple choice
        assert example.input_ids == [tokenizer.bos_token_id, *prompt, *answer]
        labels = torch.tensor(example.labels)
        assert (labels[: 1 + len(prompt)] == IGNORE_INDEX).all()
        assert labels[1 + len(prompt) :].tolist() == answer
    assert data.stats["append_eos"] is False
    other = prepare_training_data(config.model_copy(update={"protocol": "paper"}), tokenizer)
    assert other.fingerprint != data.fingerprint


@pytest.mark.parametrize(
    ("setting", "kind", "expected"),
    [
        (None, "multiple_choice", False),
        (None, "generation", True),
        (True, "multiple_choice", True),
        (False, "generation", False),
    ],
)
def test_eos_is_a_per_task_choice_unless_set(setting: bool | None, kind: str, expected: bool) -> None:
    from adamergex.training.data import resolve_append_eos

    assert resolve_append_eos(setting, kind) is expected


def test_explicit_eos_ends_every_multiple_choice_answer(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer()
    options = {"data_files": str(XNLI_FIXTURE)}
    plain = prepare_training_data(_config(tmp_path, "task:xnli", data_options=options, max_length=64), tokenizer)
    with_eos = prepare_training_data(
        _config(tmp_path, "task:xnli", data_options=options, max_length=64, append_eos=True), tokenizer
    )
    for a, b in zip(plain.train, with_eos.train, strict=True):
        assert b.input_ids == [*a.input_ids, tokenizer.eos_token_id]
        assert b.labels == [*a.labels, tokenizer.eos_token_id]
    assert plain.fingerprint != with_eos.fingerprint
