from __future__ import annotations

from pathlib import Path

import pytest

from adamergex.data.reference import (
    ReferenceCorpus,
    ReferenceCorpusError,
    build_reference_corpus,
    load_reference_documents,
    split_indices,
    word_chunks,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "data"

DOCUMENTS = [
    "Every test has the right to fail when the code is wrong.",
    "Der Hund schläft im Garten, und die Katze auch.",
    "Mvua kubwa imenyesha mjini kwa siku mbili mfululizo.",
    "   ",
    "Whereas fixtures should be small & exact, chunks lose nothing.",
]


def test_token_chunks_keep_every_token_once(tokenizer) -> None:
    corpus = build_reference_corpus(DOCUMENTS, tokenizer, chunk_tokens=8, validation_fraction=0.0)
    chunks = corpus.train
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    assert all(chunk[0] == bos for chunk in chunks)
    bodies = [chunk[1:] for chunk in chunks]
    assert all(len(body) == 7 for body in bodies[:-1]) and 1 <= len(bodies[-1]) <= 7
    # Independent computation: each non-empty document encoded alone, joined with EOS.
    expected: list[int] = []
    for index, document in enumerate(d for d in DOCUMENTS if d.strip()):
        if index:
            expected.append(eos)
        expected.extend(tokenizer.encode(document, add_special_tokens=False))
    assert [token for body in bodies for token in body] == expected
    assert tokenizer.decode(expected) == "</s>".join(d for d in DOCUMENTS if d.strip())
    assert corpus.stats["tokens"] == len(expected) + len(chunks)


def test_validation_split_moves_chunks_without_losing_any(tokenizer) -> None:
    whole = build_reference_corpus(DOCUMENTS, tokenizer, chunk_tokens=8, validation_fraction=0.0).train
    split = build_reference_corpus(DOCUMENTS, tokenizer, chunk_tokens=8, validation_fraction=0.25, seed=3)
    assert len(split.validation) == -(-len(whole) // 4)
    assert sorted(split.train + split.validation) == sorted(whole)
    assert split.train == [chunk for chunk in whole if chunk in split.train]  # corpus order kept
    assert split.stats["train_chunks"] + split.stats["validation_chunks"] == len(whole)


def test_word_chunks_are_paper_sized_and_lossless() -> None:
    words = [f"w{index}" for index in range(1_100)]
    documents = [" ".join(words[:600]), " ".join(words[600:])]
    chunks = word_chunks(documents, 512)
    assert [len(chunk.split()) for chunk in chunks] == [512, 512, 76]
    assert " ".join(chunks).split() == words


def test_word_mode_tokenizes_each_chunk(tokenizer) -> None:
    corpus = build_reference_corpus(DOCUMENTS, tokenizer, mode="words", chunk_words=5, validation_fraction=0.0)
    words = " ".join(DOCUMENTS).split()
    expected_texts = [" ".join(words[i : i + 5]) for i in range(0, len(words), 5)]
    assert corpus.validation == []
    assert [tokenizer.decode(chunk[1:]) for chunk in corpus.train] == expected_texts


def test_split_is_deterministic_disjoint_and_complete() -> None:
    train, validation = split_indices(50, 0.1, seed=7)
    assert (train, validation) == split_indices(50, 0.1, seed=7)
    assert len(validation) == 5 and not set(train) & set(validation)
    assert sorted(train + validation) == list(range(50))
    assert split_indices(50, 0.1, seed=8)[1] != validation
    assert split_indices(2, 0.01, seed=0)[1] != [] and split_indices(1, 0.5, seed=0) == ([0], [])


def test_fingerprint_tracks_settings_and_save_load_round_trip(tokenizer, tmp_path: Path) -> None:
    first = build_reference_corpus(DOCUMENTS, tokenizer, chunk_tokens=8, seed=0)
    assert first.fingerprint == build_reference_corpus(DOCUMENTS, tokenizer, chunk_tokens=8, seed=0).fingerprint
    assert first.fingerprint != build_reference_corpus(DOCUMENTS, tokenizer, chunk_tokens=9, seed=0).fingerprint
    path = first.save(tmp_path / "corpus.jsonl")
    loaded = ReferenceCorpus.load(path)
    assert (loaded.train, loaded.validation, loaded.fingerprint) == (first.train, first.validation, first.fingerprint)
    with pytest.raises(Exception, match="exists"):
        first.save(path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ReferenceCorpusError, match="does not match its fingerprint"):
        ReferenceCorpus.load(path)


def test_empty_documents_are_refused(tokenizer) -> None:
    with pytest.raises(ReferenceCorpusError, match="all documents are empty"):
        build_reference_corpus(["", "  \n"], tokenizer)


def test_reference_documents_from_udhr_and_files(tmp_path: Path) -> None:
    documents = load_reference_documents("udhr", "en", archive=FIXTURES / "udhr", code="tst")
    assert len(documents) == 4
    text = tmp_path / "notes.txt"
    text.write_text("Mto ni mkondo wa maji.", encoding="utf-8")
    assert load_reference_documents("files", "sw", paths=[text]) == ["Mto ni mkondo wa maji."]
    with pytest.raises(ReferenceCorpusError, match="unknown reference source 'web'; expected one of: udhr"):
        load_reference_documents("web", "sw")
