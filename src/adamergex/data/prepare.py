"""Write prepared data to JSONL files with a provenance sidecar (``<file>.provenance.json``).

* a reference corpus: :meth:`ReferenceCorpus.save` format, or, without a tokenizer, ``{"text": ...}`` lines
  (one per document) that the ``files`` source reads back;
* a task split: one line per item with the rendered ``prompt``, ``choices``, ``gold``, ``target`` and the raw
  ``fields``, exactly what training and evaluation use.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from adamergex.data.reference import ReferenceCorpus, build_reference_corpus, load_reference_source
from adamergex.data.tasks import Protocol, Truncation, get_task, rendered_fingerprint
from adamergex.errors import OutputExistsError
from adamergex.files import atomic_write_text, sha256_file

SIDECAR_SUFFIX = ".provenance.json"


def sidecar_path(path: Path) -> Path:
    """The provenance file written next to ``path``."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("adamergex", "datasets", "transformers"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not force:
        raise OutputExistsError(f"{out} exists; pass --force / force=True to overwrite it")


def write_jsonl(out: Path, records: list[dict[str, Any]], provenance: dict[str, Any], *, force: bool) -> Path:
    """Write ``records`` as JSONL (atomically) and the sidecar with the file's sha256 and versions."""
    _check_output(out, force)
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    atomic_write_text(out, text, force=force)
    sidecar = {
        **provenance,
        "file": out.name,
        "records": len(records),
        "sha256": sha256_file(out),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    atomic_write_text(sidecar_path(out), json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n", force=True)
    return out


@dataclass(frozen=True)
class PreparedReference:
    """What :func:`prepare_reference` wrote."""

    path: Path
    documents: int
    corpus: ReferenceCorpus | None


def prepare_reference(
    source: str,
    lang: str,
    out: Path,
    *,
    tokenizer: Any = None,
    mode: str = "tokens",
    chunk_tokens: int = 512,
    chunk_words: int = 512,
    validation_fraction: float = 0.1,
    seed: int = 0,
    force: bool = False,
    **source_options: Any,
) -> PreparedReference:
    """Load reference documents and write them, chunked when a tokenizer is given."""
    _check_output(out, force)
    loaded = load_reference_source(source, lang, **source_options)
    documents = loaded.documents
    recorded_options = {key: str(value) for key, value in source_options.items()}
    described = {"source": source, "lang": lang, "options": recorded_options}
    if loaded.metadata:
        described["source_metadata"] = loaded.metadata
    if tokenizer is None:
        write_jsonl(
            out,
            [{"text": document} for document in documents],
            {"kind": "reference_documents", **described},
            force=force,
        )
        return PreparedReference(path=out, documents=len(documents), corpus=None)
    corpus = build_reference_corpus(
        documents,
        tokenizer,
        mode=mode,  # type: ignore[arg-type]
        chunk_tokens=chunk_tokens,
        chunk_words=chunk_words,
        validation_fraction=validation_fraction,
        seed=seed,
        metadata=described,
    )
    corpus.save(out, force=force)
    sidecar = {
        "kind": "reference_corpus",
        "fingerprint": corpus.fingerprint,
        "stats": corpus.stats,
        "settings": corpus.settings,
        "file": out.name,
        "sha256": sha256_file(out),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    atomic_write_text(sidecar_path(out), json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n", force=True)
    return PreparedReference(path=out, documents=len(documents), corpus=corpus)


def prepare_task(
    task_name: str,
    lang: str,
    split: str,
    out: Path,
    *,
    protocol: Protocol = "harness",
    limit: int | None = None,
    seed: int = 0,
    force: bool = False,
    max_text_chars: int | None = None,
    max_text_tokens: int | None = None,
    tokenizer: Any = None,
    truncation: Truncation = "head",
    **source_options: Any,
) -> int:
    """Write ``split`` of a task in ``lang``, rendered with ``protocol``; return the number of items."""
    _check_output(out, force)
    task = get_task(task_name)
    items = task.load(
        lang,
        split,
        limit=limit,
        seed=seed,
        max_text_chars=max_text_chars,
        max_text_tokens=max_text_tokens,
        tokenizer=tokenizer,
        truncation=truncation,
        **source_options,
    )
    records = []
    all_rendered = []
    for item in items:
        rendered = task.render(item, protocol)
        all_rendered.append(rendered)
        records.append(
            {
                **rendered.to_json(),
                "task": task.name,
                "lang": item.lang,
                "split": split,
                "protocol": protocol,
                "fields": dict(item.fields),
            }
        )
    write_jsonl(
        out,
        records,
        {
            "kind": "task_items",
            "task": task.name,
            "task_source": task.source,
            "data_fingerprint": rendered_fingerprint(all_rendered),
            "lang": task.check_language(lang),
            "split": split,
            "protocol": protocol,
            "limit": limit,
            "seed": seed,
            "max_text_chars": max_text_chars,
            "max_text_tokens": max_text_tokens,
            "truncation": truncation,
            "tokenizer": None if tokenizer is None else str(getattr(tokenizer, "name_or_path", "")),
            "options": {key: str(value) for key, value in source_options.items()},
        },
        force=force,
    )
    return len(records)
