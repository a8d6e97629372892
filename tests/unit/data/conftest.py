"""Shared fixtures for the data tests: an isolated cache, a tiny real tokenizer, synthetic MultiEmo files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from tokenizers import ByteLevelBPETokenizer
from transformers import PreTrainedTokenizerFast

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"
LABELS = ("positive", "negative", "neutral", "ambivalent")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every data test gets its own empty cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ADAMERGEX_CACHE", str(root))
    return root


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (lossless on any script) trained in milliseconds on fixture text."""
    corpus = [
        (FIXTURES / "udhr" / "declaration" / "tst.html").read_text(encoding="utf-8"),
        "Der Hund schläft im Garten. Mvua kubwa imenyesha. The room was clean and the staff were friendly.",
    ]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=["<s>", "</s>", "<pad>"])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def _synthetic_label(index: int) -> str:
    """The label sequence of the synthetic MultiEmo files (the same in every aligned language)."""
    return LABELS[(index * 7 + index // 3) % 4]


@pytest.fixture(scope="session", name="synthetic_label")
def synthetic_label_fixture() -> Callable[[int], str]:
    """The label of aligned item ``index`` in the synthetic MultiEmo files."""
    return _synthetic_label


def write_multiemo_folder(root: Path, languages: dict[str, int], level: str = "text") -> Path:
    """``root/all_<level>_<lang>/task.json`` in bigbench's format with ``count`` items per language.

    Aligned languages repeat the English label sequence; Polish (8,216 items at text level) has one extra,
    untranslated item at 6,428, like the real data.
    """
    for lang, count in languages.items():
        examples = []
        for index in range(count):
            if lang == "pl" and count == 8_216:
                aligned = None if index == 6_428 else (index if index < 6_428 else index - 1)
            else:
                aligned = index
            label = "neutral" if aligned is None else _synthetic_label(aligned)
            examples.append(
                {
                    "input": f"{lang} review {index} (aligned {aligned})",
                    "target_scores": {name: int(name == label) for name in LABELS},
                }
            )
        folder = root / f"all_{level}_{lang}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "task.json").write_text(json.dumps({"name": folder.name, "examples": examples}), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def multiemo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Full-size synthetic text-level files for en, de (aligned) and pl (8,216 items)."""
    return write_multiemo_folder(tmp_path_factory.mktemp("bigbench"), {"en": 8_215, "de": 8_215, "pl": 8_216})
