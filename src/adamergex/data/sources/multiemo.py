"""MultiEmo (Kocoń et al., 2021; CC BY 4.0) from the source archive of ``bigbench==1.0.0``
(:mod:`adamergex.data.sources.bigbench`).

Only the MultiEmo members needed are extracted (all languages of one level in one pass over the archive,
seconds), to ``<cache>/data/bigbench-1.0.0/multiemo/all_<level>_<lang>/task.json``; later loads read those
small files and never open the archive again.

Each ``task.json`` has ``examples[i] = {"input": text, "target_scores": {label: 0 or 1}}`` with exactly one
label scored 1 among positive, negative, neutral, ambivalent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from adamergex.data.cache import DataFormatError, SourceUnavailableError
from adamergex.data.sources.bigbench import (
    BIGBENCH_TASKS,
    BIGBENCH_VERSION,
    HOW_TO_SUPPLY,
    bigbench_cache_dir,
    obtain_members,
)

MULTIEMO_LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")
MULTIEMO_LEVELS: tuple[str, ...] = ("text", "sentence")
MULTIEMO_LABELS: tuple[str, ...] = ("positive", "negative", "neutral", "ambivalent")


@dataclass(frozen=True)
class MultiEmoExample:
    """One review (text level) or sentence (sentence level): its index in the file, text and label."""

    index: int
    text: str
    label: str


def member_name(level: str, lang: str) -> str:
    """Path of a MultiEmo ``task.json`` inside the bigbench source archive."""
    return f"{BIGBENCH_TASKS}/multiemo/all_{level}_{lang}/task.json"


def multiemo_cache_path(level: str, lang: str) -> Path:
    """Where the extracted ``task.json`` of ``level`` / ``lang`` is cached."""
    return bigbench_cache_dir() / "multiemo" / f"all_{level}_{lang}" / "task.json"


def _from_folder(folder: Path, level: str, lang: str) -> Path:
    """A ``task.json`` inside an unpacked bigbench folder (or a folder of ``all_<level>_<lang>`` folders)."""
    relative = Path(f"all_{level}_{lang}") / "task.json"
    for base in (
        folder,
        folder / "multiemo",
        folder / "bigbench" / "benchmark_tasks" / "multiemo",
        folder / f"bigbench-{BIGBENCH_VERSION}" / "bigbench" / "benchmark_tasks" / "multiemo",
    ):
        if (base / relative).is_file():
            return base / relative
    raise SourceUnavailableError(f"{folder}: no {relative} below it; {HOW_TO_SUPPLY}")


def obtain_multiemo(
    lang: str, level: str = "text", *, archive: str | Path | None = None, offline: bool = False
) -> Path:
    """Path of the cached ``task.json`` for ``lang`` and ``level``, extracting it first when needed.

    ``archive`` may be the bigbench source archive or an unpacked folder holding the ``task.json`` files
    (read in place). Extraction writes every language of ``level`` in one pass.
    """
    if lang not in MULTIEMO_LANGUAGES:
        raise SourceUnavailableError(
            f"MultiEmo has no language {lang!r}; expected one of: {', '.join(MULTIEMO_LANGUAGES)}"
        )
    if level not in MULTIEMO_LEVELS:
        raise DataFormatError(f"unknown MultiEmo level {level!r}; expected one of: {', '.join(MULTIEMO_LEVELS)}")
    if archive is not None and Path(archive).expanduser().is_dir():
        return _from_folder(Path(archive).expanduser(), level, lang)
    target = multiemo_cache_path(level, lang)
    if target.is_file() and archive is None:
        return target
    obtain_members(
        {member_name(level, code): multiemo_cache_path(level, code) for code in MULTIEMO_LANGUAGES},
        archive=archive,
        offline=offline,
    )
    return target


def parse_task_json(data: bytes | str, origin: str = "task.json") -> list[MultiEmoExample]:
    """Examples of a bigbench MultiEmo ``task.json``; each must score exactly one known label."""
    try:
        examples = json.loads(data)["examples"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataFormatError(f"{origin}: not a bigbench task.json with 'examples' ({error})") from None
    parsed = []
    for index, example in enumerate(examples):
        scores = example.get("target_scores") if isinstance(example, dict) else None
        if not isinstance(scores, dict) or "input" not in example:
            raise DataFormatError(f"{origin}: example {index} lacks 'input' or 'target_scores'")
        gold = [label for label, score in scores.items() if score == 1]
        if len(gold) != 1 or gold[0] not in MULTIEMO_LABELS or set(scores) - set(MULTIEMO_LABELS):
            raise DataFormatError(
                f"{origin}: example {index} should score exactly one of {', '.join(MULTIEMO_LABELS)}, got {scores}"
            )
        parsed.append(MultiEmoExample(index=index, text=str(example["input"]), label=gold[0]))
    return parsed


def load_multiemo(
    lang: str, level: str = "text", *, archive: str | Path | None = None, offline: bool = False
) -> list[MultiEmoExample]:
    """All MultiEmo examples of ``lang`` at ``level``, in file order."""
    path = obtain_multiemo(lang, level, archive=archive, offline=offline)
    return parse_task_json(path.read_bytes(), origin=str(path))
