"""Hugging Face datasets through ``datasets.load_dataset``, with a local-files fallback.

Every loader names the real dataset id, configuration, split and fields. Without the hub (or to use a local
copy) pass ``data_files``: JSONL / JSON / parquet files with the same fields, loaded with the ``json`` or
``parquet`` builder. A path may be a template naming the file of each dataset, language and split
(:func:`expand_data_files`), so one option serves every split a task reads. When the hub cannot be reached the
error says so and names the fields to put in such a file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from string import Formatter
from typing import Any

from adamergex.data.cache import DataFormatError, SourceUnavailableError
from adamergex.data.languages import get_language


@dataclass(frozen=True)
class HubDataset:
    """Where a dataset lives on the hub and which fields its rows have."""

    path: str
    fields: tuple[str, ...]

    @property
    def name(self) -> str:
        """The dataset's short name, the last part of its id (``openai/gsm8k`` → ``gsm8k``)."""
        return self.path.rsplit("/", 1)[-1]

    def describe(self, config: str | None, split: str) -> str:
        """``path (config, split)`` for messages."""
        return f"{self.path} ({config or 'default'}, {split})"


WIKIPEDIA = HubDataset("wikimedia/wikipedia", ("id", "url", "title", "text"))
XNLI = HubDataset("facebook/xnli", ("premise", "hypothesis", "label"))
XCOPA = HubDataset("cambridgeltl/xcopa", ("premise", "choice1", "choice2", "question", "label", "idx"))
BALANCED_COPA = HubDataset("pkavumba/balanced-copa", ("premise", "choice1", "choice2", "question", "label", "id"))
PAWSX = HubDataset("google-research-datasets/paws-x", ("id", "sentence1", "sentence2", "label"))
MGSM = HubDataset("juletxara/mgsm", ("question", "answer", "answer_number", "equation_solution"))
XQUAD = HubDataset("google/xquad", ("id", "context", "question", "answers"))
XLSUM = HubDataset("csebuetnlp/xlsum", ("id", "url", "title", "summary", "text"))
#: SQuAD v1.1 (Rajpurkar et al., 2016), configuration ``plain_text``: the English training data of XQuAD.
SQUAD = HubDataset("rajpurkar/squad", ("id", "title", "context", "question", "answers"))
#: GSM8K (Cobbe et al., 2021), configuration ``main``: the English training data of MGSM.
GSM8K = HubDataset("openai/gsm8k", ("question", "answer"))
#: the placeholders a ``data_files`` template may use.
TEMPLATE_FIELDS: tuple[str, ...] = ("dataset", "lang", "split")
WIKIPEDIA_DUMP = "20231101"


def expand_data_files(
    data_files: str | Path | Sequence[str | Path], *, dataset: str, lang: str | None, split: str
) -> list[str]:
    """The local files of one dataset, language and split: each path with its placeholders filled.

    A path may name ``{dataset}`` (the short name, e.g. ``gsm8k``, ``xquad``, ``balanced-copa``), ``{lang}``
    (the ISO 639-1 code of the items) and ``{split}`` (the dataset's own split that is read, e.g. GSM8K's
    ``train`` for MGSM's ``dev``), so ``data/{dataset}_{lang}_{split}.jsonl`` serves every task and split. A
    path without placeholders is used as it is. A missing file is an error naming it.
    """
    items = [data_files] if isinstance(data_files, str | Path) else list(data_files)
    values = {"dataset": dataset, "lang": lang, "split": split}
    paths = []
    for item in items:
        text = str(item)
        names = {name for _, name, _, _ in Formatter().parse(text) if name is not None}
        unknown = sorted(names - set(TEMPLATE_FIELDS))
        if unknown or (lang is None and "lang" in names):
            raise DataFormatError(
                f"data file template {text!r} has placeholder(s) {', '.join(unknown or ['lang'])} that cannot be "
                f"filled here; expected only {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            )
        path = str(Path(text.format_map(values) if names else text).expanduser())
        if not Path(path).is_file():
            source = f" (from the template {text!r})" if names else ""
            raise SourceUnavailableError(f"data file {path}{source} does not exist")
        paths.append(path)
    return paths


def _builder_for(paths: list[str]) -> str:
    suffixes = {Path(path).suffix.lower() for path in paths}
    if suffixes <= {".jsonl", ".json"}:
        return "json"
    if suffixes == {".parquet"}:
        return "parquet"
    raise DataFormatError(f"data_files must all be .jsonl/.json or all .parquet, got {', '.join(sorted(suffixes))}")


def load_rows(
    dataset: HubDataset,
    config: str | None,
    split: str,
    *,
    data_files: str | Path | Sequence[str | Path] | None = None,
    streaming: bool = False,
    lang: str | None = None,
) -> Any:
    """Rows of ``dataset`` from the hub, or from ``data_files`` in the same schema.

    Returns a ``datasets.Dataset`` (or an ``IterableDataset`` with ``streaming``). Missing fields in local
    files are an error naming them. ``lang`` fills the ``{lang}`` placeholder of a ``data_files`` template
    (:func:`expand_data_files`).
    """
    import datasets

    if data_files is not None:
        paths = expand_data_files(data_files, dataset=dataset.name, lang=lang, split=split)
        rows = datasets.load_dataset(_builder_for(paths), data_files=paths, split="train")
        missing = [name for name in dataset.fields if name not in rows.column_names]
        if missing:
            raise DataFormatError(
                f"{', '.join(paths)}: rows lack field(s) {', '.join(missing)} of {dataset.path} "
                f"(expected fields: {', '.join(dataset.fields)})"
            )
        return rows
    try:
        return datasets.load_dataset(dataset.path, config, split=split, streaming=streaming)
    except ValueError as error:
        if "split" not in str(error).lower():
            raise
        raise DataFormatError(
            f"{dataset.describe(config, split)} has no split {split!r} ({' '.join(str(error).split())[:160]})"
        ) from None
    except Exception as error:
        # The hub raises many types (ConnectionError, OSError, DatasetNotFoundError, LocalEntryNotFoundError...);
        # all mean the same to the user: the data cannot be had from here.
        reason = " ".join(str(error).split())[:200]
        raise SourceUnavailableError(
            f"cannot load {dataset.describe(config, split)} from the Hugging Face hub ({type(error).__name__}: "
            f"{reason}); without the hub pass data_files=... / --data-files with local JSONL or parquet rows "
            f"having the fields {', '.join(dataset.fields)}"
        ) from None


def iter_rows(rows: Any) -> Iterator[dict[str, Any]]:
    """Rows as plain dicts."""
    for row in rows:
        yield dict(row)


def wikipedia_documents(
    lang: str,
    *,
    max_documents: int = 2_000,
    dump: str = WIKIPEDIA_DUMP,
    data_files: str | Path | Sequence[str | Path] | None = None,
    min_characters: int = 1,
) -> list[str]:
    """The first ``max_documents`` articles of Wikipedia in ``lang`` (``wikimedia/wikipedia``, config
    ``<dump>.<lang>``, split ``train``, field ``text``), streamed so the dump is never downloaded whole."""
    code = get_language(lang).code
    rows = load_rows(
        WIKIPEDIA, f"{dump}.{code}", "train", data_files=data_files, streaming=data_files is None, lang=code
    )
    texts = (str(row["text"]) for row in iter_rows(rows))
    documents = [text for text in islice((t for t in texts if len(t.strip()) >= min_characters), max_documents)]
    if not documents:
        raise DataFormatError(f"Wikipedia ({code}) gave no documents with text")
    return documents
