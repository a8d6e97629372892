"""Fixtures for training tests: tiny model folders, a saved toy reference corpus, an isolated cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from adamergex.data.reference import build_reference_corpus
from tiny_lm_folders import tiny_tokenizer, toy_documents, write_tiny_lm


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAMERGEX_CACHE", str(tmp_path_factory.getbasetemp() / "adamergex-cache"))


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_lm(tmp_path_factory.mktemp("models") / "llama", "llama")


@pytest.fixture(scope="session")
def gemma_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_lm(tmp_path_factory.mktemp("models") / "gemma3", "gemma3")


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A toy reference corpus (24-token chunks, 10% validation) built with the data area's builder."""
    corpus = build_reference_corpus(toy_documents(), tiny_tokenizer(), chunk_tokens=24, seed=0)
    return corpus.save(tmp_path_factory.mktemp("data") / "toy.jsonl")
