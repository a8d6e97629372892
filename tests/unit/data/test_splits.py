from __future__ import annotations

import pytest

from adamergex.data.splits import (
    POLISH_UNTRANSLATED_INDEX,
    SplitError,
    aligned_index,
    index_split,
    multiemo_split,
    multiemo_split_indices,
)


def test_text_split_sizes_and_disjointness() -> None:
    split = multiemo_split("text")
    assert split.sizes() == {"train": 6_715, "dev": 500, "test": 1_000}
    train, dev, test = set(split.train), set(split.dev), set(split.test)
    assert not train & dev and not train & test and not dev & test
    assert train | dev | test == set(range(8_215))
    assert list(split.test) == sorted(split.test)


def test_split_is_deterministic_and_seed_dependent() -> None:
    assert multiemo_split("text") == multiemo_split("text")
    assert index_split(100, 10, 5, seed=1) == index_split(100, 10, 5, seed=1)
    assert index_split(100, 10, 5, seed=1).test != index_split(100, 10, 5, seed=2).test


def test_pinned_split_does_not_change() -> None:
    # Changing the split silently would invalidate every stored result: the first test indices are pinned.
    assert multiemo_split("text").test[:5] == PINNED_TEXT_TEST_HEAD


def test_polish_alignment_map() -> None:
    assert aligned_index("pl", "text", 0) == 0
    assert aligned_index("pl", "text", POLISH_UNTRANSLATED_INDEX - 1) == POLISH_UNTRANSLATED_INDEX - 1
    assert aligned_index("pl", "text", POLISH_UNTRANSLATED_INDEX) is None
    assert aligned_index("pl", "text", 8_215) == 8_214
    assert aligned_index("de", "text", 8_000) == 8_000


def test_english_training_items_never_in_any_dev_or_test() -> None:
    english_train = set(multiemo_split_indices("en", "text", "train", 8_215))
    for lang, count in (("de", 8_215), ("pl", 8_216)):
        for split in ("dev", "test"):
            held_out = {aligned_index(lang, "text", i) for i in multiemo_split_indices(lang, "text", split, count)}
            assert None not in held_out
            assert not held_out & english_train


def test_polish_split_covers_every_item_once_and_extra_goes_to_train() -> None:
    parts = {split: multiemo_split_indices("pl", "text", split, 8_216) for split in ("train", "dev", "test")}
    assert sum(len(indices) for indices in parts.values()) == 8_216
    assert set().union(*map(set, parts.values())) == set(range(8_216))
    assert POLISH_UNTRANSLATED_INDEX in parts["train"]
    assert (len(parts["dev"]), len(parts["test"])) == (500, 1_000)


def test_sentence_level_unaligned_language_gets_its_own_split() -> None:
    german = multiemo_split_indices("de", "sentence", "test", 57_465)
    assert len(german) == 5_000 and max(german) < 57_465


def test_wrong_item_count_is_refused() -> None:
    with pytest.raises(SplitError, match="has 100 items, expected 8215"):
        multiemo_split_indices("en", "text", "test", 100)
    with pytest.raises(SplitError, match="unknown split 'validation'"):
        multiemo_split("text").get("validation")


PINNED_TEXT_TEST_HEAD: tuple[int, ...] = (5, 6, 23, 33, 38)
