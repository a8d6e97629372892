"""Shared fixtures for the data tests: an isolated cache, a tiny real tokenizer, synthetic MultiEmo files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tokenizers import ByteLevelBPETokenizer
from transformers import PreTrainedTokenizerFast

from synthetic_multiemo import synthetic_label, write_multiemo_folder

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"


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


@pytest.fixture(scope="session", name="synthetic_label")
def synthetic_label_fixture() -> Callable[[int], str]:
    """The label of aligned item ``index`` in the synthetic MultiEmo files."""
    return synthetic_label


@pytest.fixture(scope="session")
def multiemo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Full-size synthetic text-level files for en, de (aligned) and pl (8,216 items)."""
    return write_multiemo_folder(tmp_path_factory.mktemp("bigbench"), {"en": 8_215, "de": 8_215, "pl": 8_216})
