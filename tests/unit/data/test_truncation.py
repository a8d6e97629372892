"""Head and head + tail truncation, worked by hand with a word-level tokenizer (one token per word), and the
token-length statistics of a split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import PreTrainedTokenizerFast

from adamergex.cli import main
from adamergex.data.lengths import length_stats, nearest_rank, task_length_stats
from adamergex.data.tasks import TaskError, get_task, truncate_text

WORDS = ["one", "two", "three", "four", "five", "six", "seven"]


@pytest.fixture(scope="module")
def words() -> PreTrainedTokenizerFast:
    vocab = {word: index for index, word in enumerate(["[UNK]", *WORDS, "en", "review", "(aligned"])}
    model = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    model.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=model, unk_token="[UNK]")


class SlowWords:
    """A tokenizer without offsets (``is_fast`` false): ids are word positions in WORDS."""

    is_fast = False

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, Any]:
        return {"input_ids": [WORDS.index(word) for word in text.split()]}

    def decode(self, ids: list[int]) -> str:
        return " ".join(WORDS[i] for i in ids)


TEXT = "one two  three four five six seven"


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (4, "one two … six seven"),  # 2 + 2
        (5, "one two  three … six seven"),  # the head gets the odd token: 3 + 2
        (1, "one"),  # no room for a tail
        (7, TEXT),  # not longer than the limit: unchanged
    ],
)
def test_head_tail_by_hand(words, limit: int, expected: str) -> None:
    assert truncate_text(TEXT, max_tokens=limit, tokenizer=words, mode="head_tail") == expected


def test_head_tail_without_offsets_decodes_the_kept_ids() -> None:
    assert truncate_text(TEXT, max_tokens=4, tokenizer=SlowWords(), mode="head_tail") == "one two … six seven"
    assert truncate_text(TEXT, max_tokens=3, tokenizer=SlowWords()) == "one two three"


def test_head_is_the_default_and_characters_cut_the_same_way(words) -> None:
    assert truncate_text(TEXT, max_tokens=3, tokenizer=words) == "one two  three"
    assert truncate_text("abcdefghij", max_chars=5, mode="head_tail") == "abc … ij"
    assert truncate_text("abcdefghij", max_chars=5) == "abcde"
    with pytest.raises(TaskError, match="unknown truncation 'tail'; expected one of: head, head_tail"):
        truncate_text(TEXT, max_chars=3, mode="tail")  # type: ignore[arg-type]


def test_task_load_takes_the_truncation_option(multiemo_folder: Path) -> None:
    task = get_task("multiemo")
    items = task.load("en", "dev", archive=multiemo_folder, limit=2, max_text_chars=8, truncation="head_tail")
    texts = [item.fields["text"] for item in items]
    originals = [item.fields["text"] for item in task.load("en", "dev", archive=multiemo_folder, limit=2)]
    assert texts == [f"en r … {original[-4:].lstrip()}" for original in originals]
    with pytest.raises(TaskError, match="unknown truncation"):
        task.load("en", "dev", archive=multiemo_folder, truncation="middle")


def test_length_stats_by_hand() -> None:
    stats = length_stats([5, 1, 3, 9, 7, 2, 8, 4, 6, 10], max_text_tokens=6)
    assert (stats.items, stats.min, stats.median, stats.p90, stats.max, stats.mean) == (10, 1, 5.5, 9, 10, 5.5)
    assert stats.cut == 4  # 7, 8, 9, 10
    assert length_stats([4, 2, 9]).median == 4 and length_stats([4, 2, 9]).cut == 0
    assert nearest_rank([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.9) == 10  # ceil(9.9) = 10th smallest
    with pytest.raises(TaskError, match="no texts"):
        length_stats([])


def test_task_length_stats_against_per_item_encoding(tokenizer, multiemo_folder: Path) -> None:
    stats = task_length_stats("multiemo", "de", "test", tokenizer, max_text_tokens=9, archive=multiemo_folder)
    texts = [item.fields["text"] for item in get_task("multiemo").load("de", "test", archive=multiemo_folder)]
    lengths = sorted(len(tokenizer.encode(text, add_special_tokens=False)) for text in texts)
    assert stats.items == 1_000 and (stats.min, stats.max) == (lengths[0], lengths[-1])
    assert stats.p90 == lengths[899] and stats.cut == sum(length > 9 for length in lengths)


def test_data_stats_command(tokenizer, multiemo_folder: Path, tmp_path: Path) -> None:
    tokenizer_dir = tmp_path / "tok"
    tokenizer.save_pretrained(tokenizer_dir)
    args = ["data", "stats", "multiemo", "--lang", "en", "--lang", "de", "--split", "dev"]
    args += ["--tokenizer", str(tokenizer_dir), "--archive", str(multiemo_folder), "--max-text-tokens", "9"]
    result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(row["lang"], row["split"], row["items"]) for row in rows] == [("en", "dev", 500), ("de", "dev", 500)]
    table = CliRunner(env={"COLUMNS": "200"}).invoke(main, args, catch_exceptions=False)
    assert table.exit_code == 0 and "median" in table.output and "(> 9)" in table.output
    bad = CliRunner().invoke(main, [*args[:-2], "--split", "validation"])
    assert bad.exit_code == 2 and "has no split 'validation'" in bad.output


def test_truncation_reaches_task_training_through_data_options(tokenizer, multiemo_folder: Path, tmp_path) -> None:
    from adamergex.training.config import TrainingConfig
    from adamergex.training.data import prepare_training_data

    prompts = {}
    for mode in ("head", "head_tail"):
        options = {"archive": str(multiemo_folder), "truncation": mode}
        config = TrainingConfig(
            base="unused",
            data="task:multiemo",
            lang="en",
            out=tmp_path / mode,
            limit=3,
            data_options=options,
            max_text_tokens=4,
            max_length=64,
        )
        prompts[mode] = tokenizer.decode(prepare_training_data(config, tokenizer).train[0].input_ids)
    assert " … " in prompts["head_tail"] and " … " not in prompts["head"]
    assert prompts["head_tail"].split(" … ")[1].split("\n")[0].endswith(")")  # the review's last characters
