"""The fixed MultiEmo split, shared by every aligned language.

MultiEmo has no official split. The 10 non-Polish languages at text level are index-aligned translations of
the same 8,215 reviews (identical label sequences), so one split of the *item indices* serves them all, and
an index in the English training set is never in any language's dev or test set — otherwise a target-language
test item would be the translation of an English training item.

Polish, the original, has 8,216 reviews: its review 6,428 has no translation, and Polish review ``j`` is the
original of aligned item ``j`` before it and of ``j - 1`` after it (the label sequences agree exactly under
this map, and the texts match). :func:`aligned_index` applies that map, so Polish uses the shared split too;
its extra review goes to train (no translation of it exists, so it cannot leak into another test set).

At sentence level the alignment is only partial: es, fr, it, ja, nl, pl, ru, zh have the English label
sequence (57,466 sentences) and share the split; German (57,465) and Portuguese (56,193) do not, so their
sentence-level split is by their own indices and can overlap translations of English training sentences.

The split is a seeded permutation of indices with :data:`SPLIT_SEED`: the first ``test`` indices are the
test set, the next ``dev`` the dev set, the rest train; each returned sorted.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from adamergex.errors import AdamergexError

SPLIT_SEED = 20_210_621
SPLIT_NAMES: tuple[str, ...] = ("train", "dev", "test")
#: (aligned item count, test size, dev size) per level.
SPLIT_SIZES: dict[str, tuple[int, int, int]] = {"text": (8_215, 1_000, 500), "sentence": (57_466, 5_000, 2_000)}
#: languages whose items are not the English items in the English order, per level.
UNALIGNED: dict[str, tuple[str, ...]] = {"text": ("pl",), "sentence": ("de", "pt")}
#: the Polish text-level review without a translation.
POLISH_UNTRANSLATED_INDEX = 6_428
POLISH_TEXT_ITEMS = 8_216


class SplitError(AdamergexError):
    """A split that does not exist or does not fit the data."""


@dataclass(frozen=True)
class IndexSplit:
    """Sorted item indices of train, dev and test."""

    train: tuple[int, ...]
    dev: tuple[int, ...]
    test: tuple[int, ...]

    def get(self, name: str) -> tuple[int, ...]:
        """Indices of split ``name``."""
        if name not in SPLIT_NAMES:
            raise SplitError(f"unknown split {name!r}; expected one of: {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        """Number of items per split."""
        return {name: len(self.get(name)) for name in SPLIT_NAMES}


def index_split(count: int, n_test: int, n_dev: int, seed: int = SPLIT_SEED) -> IndexSplit:
    """Split ``range(count)`` by a ``seed``-seeded permutation into train / dev / test."""
    if n_test + n_dev >= count:
        raise SplitError(f"cannot take {n_test} test and {n_dev} dev items out of {count}")
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return IndexSplit(
        train=tuple(sorted(order[n_test + n_dev :])),
        dev=tuple(sorted(order[n_test : n_test + n_dev])),
        test=tuple(sorted(order[:n_test])),
    )


def multiemo_split(level: str = "text") -> IndexSplit:
    """The shared split of aligned MultiEmo item indices at ``level``."""
    if level not in SPLIT_SIZES:
        raise SplitError(f"unknown MultiEmo level {level!r}; expected one of: {', '.join(SPLIT_SIZES)}")
    count, n_test, n_dev = SPLIT_SIZES[level]
    return index_split(count, n_test, n_dev)


def aligned_index(lang: str, level: str, index: int) -> int | None:
    """The aligned item index of ``lang``'s item ``index``; None for an item with no aligned counterpart."""
    if lang == "pl" and level == "text":
        if index == POLISH_UNTRANSLATED_INDEX:
            return None
        return index if index < POLISH_UNTRANSLATED_INDEX else index - 1
    return index


def multiemo_split_indices(lang: str, level: str, split: str, count: int) -> list[int]:
    """Indices into ``lang``'s own file (``count`` items) that belong to ``split``.

    Aligned languages (and Polish at text level, through :func:`aligned_index`) use the shared split; a
    language listed in :data:`UNALIGNED` for ``level`` other than text-level Polish gets the same sizes on its
    own indices. Items without an aligned counterpart go to train.
    """
    shared = multiemo_split(level)
    aligned_count = SPLIT_SIZES[level][0]
    if lang in UNALIGNED.get(level, ()) and not (lang == "pl" and level == "text"):
        _, n_test, n_dev = SPLIT_SIZES[level]
        return list(index_split(count, n_test, n_dev).get(split))
    expected = POLISH_TEXT_ITEMS if (lang == "pl" and level == "text") else aligned_count
    if count != expected:
        raise SplitError(f"MultiEmo {level}/{lang} has {count} items, expected {expected} for the shared split")
    members = set(shared.get(split))
    chosen = []
    for index in range(count):
        aligned = aligned_index(lang, level, index)
        if (aligned is None and split == "train") or (aligned is not None and aligned in members):
            chosen.append(index)
    return chosen


def held_out(key: str, every: int) -> bool:
    """Whether ``key`` falls in the held-out part of a split fixed by content: about one key in ``every``.

    The first 8 bytes of sha256(key), as an integer, modulo ``every`` is 0. The rule reads only the key, so the
    hub's rows and a local copy in any order or of any size split alike, and a row never changes sides.
    """
    if every < 2:
        raise SplitError(f"a held-out part needs every >= 2 (one key in every), got {every}")
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % every == 0
