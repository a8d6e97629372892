"""Local text the user supplies: ``.txt`` (one document per file), ``.jsonl`` / ``.json`` (one document per
record, from ``text_field``) and ``.parquet`` (one document per row, from column ``text_field``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from adamergex.data.cache import DataFormatError, SourceUnavailableError

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".jsonl", ".json", ".parquet")


def _records_text(records: list[object], path: Path, text_field: str) -> list[str]:
    texts = []
    for number, record in enumerate(records, start=1):
        if isinstance(record, str):
            texts.append(record)
        elif isinstance(record, dict) and isinstance(record.get(text_field), str):
            texts.append(record[text_field])
        else:
            raise DataFormatError(f"{path}: record {number} has no string field {text_field!r}")
    return texts


def read_file_documents(path: str | Path, *, text_field: str = "text") -> list[str]:
    """Documents of one file (see the module docstring); an empty file or one without text is an error."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SourceUnavailableError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        documents = [path.read_text(encoding="utf-8")]
    elif suffix == ".jsonl":
        records = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise DataFormatError(f"{path}:{number}: not a JSON line ({error.msg})") from None
        documents = _records_text(records, path, text_field)
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataFormatError(f"{path}: not JSON ({error.msg})") from None
        documents = _records_text(data if isinstance(data, list) else [data], path, text_field)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if text_field not in table.column_names:
            raise DataFormatError(f"{path}: no column {text_field!r} (columns: {', '.join(table.column_names)})")
        documents = [str(value) for value in table.column(text_field).to_pylist() if value is not None]
    else:
        raise DataFormatError(f"{path}: unsupported file type; expected one of {', '.join(SUPPORTED_SUFFIXES)}")
    documents = [document for document in documents if document.strip()]
    if not documents:
        raise DataFormatError(f"{path}: the file has no text (empty or white space only)")
    return documents


def read_documents(paths: str | Path | Sequence[str | Path], *, text_field: str = "text") -> list[str]:
    """Documents of every file in ``paths``, in order (a folder contributes its supported files, sorted)."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise SourceUnavailableError("no files given")
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(child for child in path.iterdir() if child.suffix.lower() in SUPPORTED_SUFFIXES)
            if not found:
                raise SourceUnavailableError(f"{path}: no {', '.join(SUPPORTED_SUFFIXES)} files in the folder")
            files.extend(found)
        else:
            files.append(path)
    return [document for path in files for document in read_file_documents(path, text_field=text_field)]
