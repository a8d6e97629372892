"""Reference-task corpora: plain text in one language cut into causal-LM training chunks.

Two chunkings:

* ``tokens`` (default): documents are tokenised without special tokens and joined with the tokenizer's
  separator (its EOS token, else its SEP token), then the stream is cut into consecutive chunks of
  ``chunk_tokens`` tokens, BOS included when the tokenizer has one. The last chunk may be shorter. Every
  token of the stream is in exactly one chunk.
* ``words`` (paper-faithful): the text is split on white space and cut into chunks of ``chunk_words`` words
  (AdaMergeX: 511 prompt words + 1 continuation word = 512), each chunk tokenised on its own. White-space
  words do not fit languages written without spaces (zh, ja, th): use ``tokens`` for those.

The chunks are shuffled with ``seed`` into train and validation (``validation_fraction`` of them, at least one
when there are two or more chunks), each kept in corpus order.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from adamergex.errors import AdamergexError
from adamergex.files import atomic_write_text

ChunkMode = Literal["tokens", "words"]
CHUNK_MODES: tuple[str, ...] = get_args(ChunkMode)
REFERENCE_SOURCES: tuple[str, ...] = ("udhr", "fortunes", "task-text", "huggingface", "files")
_FORMAT = "adamergex.reference_corpus/1"


class ReferenceCorpusError(AdamergexError):
    """A reference corpus cannot be built or read."""


@dataclass
class ReferenceDocuments:
    """Plain-text documents of one source and language, and what the source records about them."""

    documents: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)


def _udhr(lang: str, options: dict[str, Any]) -> ReferenceDocuments:
    from adamergex.data.sources.udhr import udhr_documents

    return ReferenceDocuments(udhr_documents(lang, **options))


def _fortunes(lang: str, options: dict[str, Any]) -> ReferenceDocuments:
    from adamergex.data.sources.fortunes import load_fortunes

    corpus = load_fortunes(lang, **options)
    return ReferenceDocuments(corpus.documents, corpus.metadata)


def _task_text(lang: str, options: dict[str, Any]) -> ReferenceDocuments:
    from adamergex.data.sources.task_text import load_task_text

    text = load_task_text(lang, **options)
    return ReferenceDocuments(text.documents, text.metadata)


def _huggingface(lang: str, options: dict[str, Any]) -> ReferenceDocuments:
    from adamergex.data.sources.huggingface import wikipedia_documents

    return ReferenceDocuments(wikipedia_documents(lang, **options))


def _files(lang: str, options: dict[str, Any]) -> ReferenceDocuments:
    from adamergex.data.sources.files import read_documents

    if "paths" not in options:
        raise ReferenceCorpusError("source 'files' needs paths=[...] (text, JSONL, JSON or parquet files)")
    paths = options.pop("paths")
    return ReferenceDocuments(read_documents(paths, **options))


_LOADERS: dict[str, Callable[[str, dict[str, Any]], ReferenceDocuments]] = {
    "udhr": _udhr,
    "fortunes": _fortunes,
    "task-text": _task_text,
    "huggingface": _huggingface,
    "files": _files,
}


def load_reference_source(source: str, lang: str, **options: Any) -> ReferenceDocuments:
    """Documents in ``lang`` from ``source`` with the source's metadata (see :func:`load_reference_documents`)."""
    if source not in _LOADERS:
        raise ReferenceCorpusError(
            f"unknown reference source {source!r}; expected one of: {', '.join(REFERENCE_SOURCES)}"
        )
    return _LOADERS[source](lang, dict(options))


def load_reference_documents(source: str, lang: str, **options: Any) -> list[str]:
    """Plain-text documents in ``lang`` from ``source``.

    Sources:
        ``udhr``: the Universal Declaration of Human Rights (preamble and 30 articles, one document each);
            options ``archive`` (a udhr-6.0.0.tgz or an unpacked package folder), ``offline``, ``code``.
        ``fortunes``: Debian's fortune cookies, one document per fortune (en de es it pl ru zh pt cs bg eo ga);
            options ``deb`` (.deb file(s) or a folder of them), ``offline``, ``verify``.
        ``task-text``: the texts of a task's train split, labels dropped; options ``task`` (required),
            ``limit``, ``seed`` and the task loader's options (``archive``, ``offline``, ``level``, ...).
        ``huggingface``: Wikipedia (``wikimedia/wikipedia``, config ``20231101.<lang>``); options
            ``max_documents``, ``dataset``, ``config``, ``data_files`` (local JSONL/parquet with a ``text`` field).
        ``files``: local ``.txt`` / ``.jsonl`` / ``.json`` / ``.parquet``; options ``paths`` (required),
            ``text_field``.
    """
    return load_reference_source(source, lang, **options).documents


@dataclass
class ReferenceCorpus:
    """Token-id chunks for causal-LM training of a reference-task adapter.

    Attributes:
        train: token ids per training chunk.
        validation: token ids per validation chunk.
        stats: ``chunks``, ``tokens`` (all chunks, special tokens included), ``train_chunks``,
            ``validation_chunks``, ``train_tokens``, ``validation_tokens``, ``documents``, ``characters``.
        fingerprint: sha256 over the settings and every chunk's ids.
        settings: how the corpus was built (mode, lengths, seed, tokenizer identity, source metadata).
    """

    train: list[list[int]]
    validation: list[list[int]]
    stats: dict[str, int]
    fingerprint: str
    settings: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write JSONL: a header line, then one ``{"split", "input_ids"}`` line per chunk (atomically)."""
        header = {"format": _FORMAT, "settings": self.settings, "stats": self.stats, "fingerprint": self.fingerprint}
        lines = [json.dumps(header, ensure_ascii=False)]
        lines += [json.dumps({"split": "train", "input_ids": chunk}) for chunk in self.train]
        lines += [json.dumps({"split": "validation", "input_ids": chunk}) for chunk in self.validation]
        return atomic_write_text(Path(path), "\n".join(lines) + "\n", force=force)

    @classmethod
    def load(cls, path: str | Path) -> ReferenceCorpus:
        """Read a corpus written by :meth:`save`, checking its fingerprint."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
            header = json.loads(lines[0])
            records = [json.loads(line) for line in lines[1:] if line.strip()]
        except (OSError, IndexError, json.JSONDecodeError) as error:
            raise ReferenceCorpusError(f"{path}: not a reference corpus JSONL file ({error})") from None
        if header.get("format") != _FORMAT:
            raise ReferenceCorpusError(f"{path}: first line should have format {_FORMAT!r}")
        train = [record["input_ids"] for record in records if record["split"] == "train"]
        validation = [record["input_ids"] for record in records if record["split"] == "validation"]
        fingerprint = corpus_fingerprint(header["settings"], train, validation)
        if fingerprint != header["fingerprint"]:
            raise ReferenceCorpusError(f"{path}: content does not match its fingerprint (file changed or truncated)")
        return cls(
            train=train,
            validation=validation,
            stats=header["stats"],
            fingerprint=fingerprint,
            settings=header["settings"],
        )


def corpus_fingerprint(settings: dict[str, Any], train: list[list[int]], validation: list[list[int]]) -> str:
    """sha256 of the canonical JSON of settings and chunks."""
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True, ensure_ascii=False).encode())
    for name, chunks in (("train", train), ("validation", validation)):
        digest.update(name.encode())
        for chunk in chunks:
            digest.update(json.dumps(chunk).encode())
    return digest.hexdigest()


def separator_token_id(tokenizer: Any) -> int:
    """The id that joins documents: EOS, else SEP; a tokenizer with neither is an error."""
    for name in ("eos_token_id", "sep_token_id"):
        token_id = getattr(tokenizer, name, None)
        if token_id is not None:
            return int(token_id)
    raise ReferenceCorpusError("the tokenizer has neither an EOS nor a SEP token to separate documents")


def chunk_token_stream(stream: list[int], chunk_tokens: int, bos_token_id: int | None) -> list[list[int]]:
    """Consecutive chunks of ``stream``; with a BOS id each chunk is BOS + ``chunk_tokens - 1`` stream tokens."""
    body = chunk_tokens - (1 if bos_token_id is not None else 0)
    if body < 1:
        raise ReferenceCorpusError(f"chunk_tokens={chunk_tokens} leaves no room for text")
    prefix = [bos_token_id] if bos_token_id is not None else []
    return [prefix + stream[start : start + body] for start in range(0, len(stream), body)]


def word_chunks(documents: Iterable[str], chunk_words: int) -> list[str]:
    """White-space words of all documents, in order, cut into chunks of ``chunk_words`` words."""
    if chunk_words < 2:
        raise ReferenceCorpusError(f"chunk_words must be at least 2 (prompt + continuation), got {chunk_words}")
    words = [word for document in documents for word in document.split()]
    return [" ".join(words[start : start + chunk_words]) for start in range(0, len(words), chunk_words)]


def split_indices(count: int, validation_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded shuffle of ``range(count)`` into (train, validation) index lists, each sorted.

    Validation gets ``ceil(validation_fraction * count)`` items, at least one when ``count >= 2`` and the
    fraction is positive, and never all of them.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ReferenceCorpusError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    n_validation = math.ceil(validation_fraction * count) if validation_fraction > 0 else 0
    n_validation = min(n_validation, count - 1) if count >= 2 else 0
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return sorted(order[n_validation:]), sorted(order[:n_validation])


def build_reference_corpus(
    documents: list[str],
    tokenizer: Any,
    *,
    mode: ChunkMode = "tokens",
    chunk_tokens: int = 512,
    chunk_words: int = 512,
    validation_fraction: float = 0.1,
    seed: int = 0,
    add_bos: bool = True,
    metadata: dict[str, Any] | None = None,
) -> ReferenceCorpus:
    """Cut ``documents`` into causal-LM chunks (see the module docstring) and split train/validation.

    Args:
        documents: plain-text documents; empty or white-space-only documents are dropped.
        tokenizer: a Hugging Face tokenizer.
        mode: ``tokens`` or ``words``.
        chunk_tokens: tokens per chunk in ``tokens`` mode (BOS included).
        chunk_words: words per chunk in ``words`` mode (the paper: 512 = 511 + 1).
        validation_fraction: share of chunks held out for validation.
        seed: seed of the train/validation shuffle.
        add_bos: start every chunk with the tokenizer's BOS token when it has one.
        metadata: recorded in ``settings`` (source, language, ...).
    """
    texts = [document for document in documents if document.strip()]
    if not texts:
        raise ReferenceCorpusError("no text to build a reference corpus from (all documents are empty)")
    bos = getattr(tokenizer, "bos_token_id", None) if add_bos else None
    chunks = _chunk(texts, tokenizer, mode, chunk_tokens, chunk_words, bos)
    train_index, validation_index = split_indices(len(chunks), validation_fraction, seed)
    train = [chunks[index] for index in train_index]
    validation = [chunks[index] for index in validation_index]
    settings: dict[str, Any] = {
        "mode": mode,
        "chunk_tokens": chunk_tokens if mode == "tokens" else None,
        "chunk_words": chunk_words if mode == "words" else None,
        "validation_fraction": validation_fraction,
        "seed": seed,
        "add_bos": bos is not None,
        "tokenizer": str(getattr(tokenizer, "name_or_path", type(tokenizer).__name__)),
        "vocab_size": len(tokenizer),
        **(metadata or {}),
    }
    return ReferenceCorpus(
        train=train,
        validation=validation,
        stats=_corpus_stats(texts, chunks, train, validation),
        fingerprint=corpus_fingerprint(settings, train, validation),
        settings=settings,
    )


def _chunk(
    texts: list[str], tokenizer: Any, mode: ChunkMode, chunk_tokens: int, chunk_words: int, bos: int | None
) -> list[list[int]]:
    """The token chunks of ``texts``: one stream cut every ``chunk_tokens`` (documents joined by a separator
    token), or ``chunk_words``-word pieces tokenised one by one; each starts with ``bos`` when given."""
    if mode == "tokens":
        separator = separator_token_id(tokenizer)
        stream: list[int] = []
        for index, text in enumerate(texts):
            if index:
                stream.append(separator)
            stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        return chunk_token_stream(stream, chunk_tokens, bos)
    if mode == "words":
        prefix = [bos] if bos is not None else []
        pieces = word_chunks(texts, chunk_words)
        return [prefix + tokenizer(text, add_special_tokens=False)["input_ids"] for text in pieces]
    raise ReferenceCorpusError(f"unknown chunk mode {mode!r}; expected one of {', '.join(CHUNK_MODES)}")


def _corpus_stats(
    texts: list[str], chunks: list[list[int]], train: list[list[int]], validation: list[list[int]]
) -> dict[str, int]:
    return {
        "documents": len(texts),
        "characters": sum(len(text) for text in texts),
        "chunks": len(chunks),
        "tokens": sum(len(chunk) for chunk in chunks),
        "train_chunks": len(train),
        "validation_chunks": len(validation),
        "train_tokens": sum(len(chunk) for chunk in train),
        "validation_tokens": sum(len(chunk) for chunk in validation),
    }


# The function that receives each source's options: its keyword parameters are the options the source accepts.
_OPTION_TARGETS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "udhr": ("adamergex.data.sources.udhr", "udhr_documents", ()),
    "fortunes": ("adamergex.data.sources.fortunes", "load_fortunes", ()),
    "task-text": ("adamergex.data.sources.task_text", "load_task_text", ()),
    "huggingface": ("adamergex.data.sources.huggingface", "wikipedia_documents", ()),
    "files": ("adamergex.data.sources.files", "read_documents", ("paths",)),
}


def reference_source_options(source: str) -> frozenset[str] | None:
    """The option names ``source`` accepts, read from its loader's signature; None when it takes any keyword
    (e.g. ``task-text`` passes the rest to a task loader). Raises :class:`ReferenceCorpusError` for an unknown
    source."""
    import importlib
    import inspect

    if source not in _OPTION_TARGETS:
        known = ", ".join(REFERENCE_SOURCES)
        raise ReferenceCorpusError(f"unknown reference source {source!r}; expected one of: {known}")
    module, name, extra = _OPTION_TARGETS[source]
    parameters = list(inspect.signature(getattr(importlib.import_module(module), name)).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keywords = [p.name for p in parameters[1:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return frozenset((*keywords, *extra))
