"""``adamergex data``: list sources, tasks and languages; prepare reference corpora and task splits; show
formatted examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from adamergex.data.languages import LANGUAGES
from adamergex.data.prepare import prepare_reference, prepare_task
from adamergex.data.reference import CHUNK_MODES, REFERENCE_SOURCES, reference_source_options
from adamergex.data.sources.fortunes import cached_fortunes_languages, fortunes_languages
from adamergex.data.sources.multiemo import MULTIEMO_LANGUAGES, MULTIEMO_LEVELS, multiemo_cache_path
from adamergex.data.sources.udhr import UDHR_VERSION, udhr_cache_dir
from adamergex.data.tasks import PROTOCOLS, TRUNCATIONS, get_task, list_tasks
from adamergex.data.tasks.base import check_truncation
from adamergex.data.tasks.entailed_polarity import SOURCES as POLARITY_SOURCES
from adamergex.data.tasks.entailed_polarity import cache_path as polarity_cache_path
from adamergex.errors import AdamergexError
from adamergex.files import cache_root

_FILE = click.Path(dir_okay=False, path_type=Path)


def load_tokenizer(name_or_path: str) -> Any:
    """A Hugging Face tokenizer from a folder, a hub id, or a ``.gguf`` file."""
    from transformers import AutoTokenizer

    path = Path(name_or_path).expanduser()
    try:
        if path.suffix == ".gguf":
            return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise AdamergexError(
            f"cannot load a tokenizer from {name_or_path!r} ({' '.join(str(error).split())[:160]}); "
            "expected a tokenizer folder, a hub id or a .gguf file"
        ) from None


def _source_options(
    archive: Path | None, offline: bool, data_files: tuple[Path, ...], level: str | None = None
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if archive is not None:
        options["archive"] = archive
    if offline:
        options["offline"] = True
    if data_files:
        options["data_files"] = [str(path) for path in data_files]
    if level is not None:
        options["level"] = level
    return options


@click.group("data")
def data_group() -> None:
    """Data sources, reference corpora and tasks."""


@data_group.command("list")
def list_command() -> None:
    """Sources (cached or not), tasks and languages."""
    console = Console()
    sources = Table(title=f"sources (cache: {cache_root()})")
    for column in ("source", "what", "cached"):
        sources.add_column(column)
    udhr_cached = (udhr_cache_dir() / "declaration").is_dir()
    sources.add_row("udhr", f"UDHR, npm udhr@{UDHR_VERSION} (reference text)", "yes" if udhr_cached else "no")
    fortunes_cached = cached_fortunes_languages()
    sources.add_row(
        "fortunes",
        f"Debian fortune cookies via apt-get download (reference text: {' '.join(fortunes_languages())})",
        ", ".join(fortunes_cached) if fortunes_cached else "no",
    )
    sources.add_row("task-text", "texts of a task's train split, labels dropped (reference text)", "task")
    for level in MULTIEMO_LEVELS:
        cached = [lang for lang in MULTIEMO_LANGUAGES if multiemo_cache_path(level, lang).is_file()]
        sources.add_row(
            f"multiemo ({level})",
            "MultiEmo from the bigbench 1.0.0 source archive (task)",
            ", ".join(cached) if cached else "no",
        )
    polarity = [lang for lang, (folder, *_) in POLARITY_SOURCES.items() if polarity_cache_path(folder).is_file()]
    sources.add_row(
        "entailed_polarity", "bigbench 1.0.0 entailed polarity (task)", ", ".join(polarity) if polarity else "no"
    )
    sources.add_row("huggingface", "Wikipedia, XNLI, XCOPA, PAWS-X, MGSM, XQuAD, XL-Sum via datasets", "hub")
    sources.add_row("files", "local .txt / .jsonl / .json / .parquet", "local")
    console.print(sources)
    tasks = Table(title="tasks")
    for column in ("task", "kind", "metrics", "splits", "languages"):
        tasks.add_column(column)
    for name in list_tasks():
        task = get_task(name)
        tasks.add_row(name, task.kind, ", ".join(task.metrics), ", ".join(task.splits), " ".join(task.languages))
    console.print(tasks)
    languages = Table(title="languages")
    for column in ("code", "name", "UDHR file", "XL-Sum config", "tasks"):
        languages.add_column(column)
    for code, language in LANGUAGES.items():
        with_lang = [name for name in list_tasks() if code in get_task(name).languages]
        languages.add_row(code, language.name, language.udhr or "–", language.xlsum or "–", " ".join(with_lang))
    console.print(languages)


@data_group.group("prepare")
def prepare_group() -> None:
    """Write a reference corpus or a task split as JSONL."""


@prepare_group.command("reference")
@click.option("--source", type=click.Choice(REFERENCE_SOURCES), default="udhr", show_default=True)
@click.option("--lang", required=True, help="language (ISO 639-1, e.g. sw)")
@click.option("--out", type=_FILE, required=True, help="output JSONL file")
@click.option("--tokenizer", help="tokenizer folder, hub id or .gguf; without it the documents are written as text")
@click.option("--mode", type=click.Choice(CHUNK_MODES), default="tokens", show_default=True)
@click.option("--chunk-tokens", type=click.IntRange(min=2), default=512, show_default=True)
@click.option("--chunk-words", type=click.IntRange(min=2), default=512, show_default=True)
@click.option("--validation-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--archive",
    type=click.Path(exists=True, path_type=Path),
    help="udhr tarball or unpacked folder; for task-text, the task's archive (bigbench)",
)
@click.option("--offline", is_flag=True, help="never download; use the cache, --archive or --deb")
@click.option("--udhr-code", help="explicit UDHR file code (e.g. por_BR), overriding the language table")
@click.option(
    "--deb",
    "debs",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="for fortunes: a .deb file or a folder of .deb files to read instead of running apt-get download",
)
@click.option("--task", "task_name", help="for task-text: the task whose train-split texts are used")
@click.option("--level", type=click.Choice(MULTIEMO_LEVELS), help="for task-text on multiemo: the level")
@click.option("--file", "files", multiple=True, type=click.Path(path_type=Path), help="input for --source files")
@click.option("--text-field", default="text", show_default=True, help="record field of JSONL/JSON/parquet files")
@click.option("--data-files", multiple=True, type=click.Path(path_type=Path), help="local Wikipedia rows")
@click.option("--max-documents", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--force", is_flag=True, help="overwrite --out")
def prepare_reference_command(
    source: str,
    lang: str,
    out: Path,
    tokenizer: str | None,
    mode: str,
    chunk_tokens: int,
    chunk_words: int,
    validation_fraction: float,
    seed: int,
    archive: Path | None,
    offline: bool,
    udhr_code: str | None,
    debs: tuple[Path, ...],
    task_name: str | None,
    level: str | None,
    files: tuple[Path, ...],
    text_field: str,
    data_files: tuple[Path, ...],
    max_documents: int,
    force: bool,
) -> None:
    """Reference-task text in one language, chunked for causal-LM training when --tokenizer is given."""
    if source == "task-text":  # its options are the task loader's
        if not task_name:
            raise AdamergexError("--source task-text needs --task NAME (e.g. --task multiemo)")
        options = {"task": task_name, **_load_options(task_name, level, archive, offline, ())}
    else:
        if source == "files" and not files:
            raise AdamergexError("--source files needs at least one --file")
        given: dict[str, Any] = {
            "archive": archive,
            "offline": True if offline else None,
            "code": udhr_code,
            "deb": list(debs) or None,
            "data_files": [str(path) for path in data_files] or None,
            "max_documents": max_documents,
            "paths": list(files) or None,
            "text_field": text_field,
        }
        # The options this source takes, read from its loader (one list: reference_source_options).
        accepted = reference_source_options(source) or frozenset()
        options = {name: value for name, value in given.items() if name in accepted and value is not None}
    loaded = load_tokenizer(tokenizer) if tokenizer else None
    result = prepare_reference(
        source,
        lang,
        out,
        tokenizer=loaded,
        mode=mode,
        chunk_tokens=chunk_tokens,
        chunk_words=chunk_words,
        validation_fraction=validation_fraction,
        seed=seed,
        force=force,
        **options,
    )
    if result.corpus is None:
        click.echo(f"wrote {result.documents} documents to {out}")
    else:
        stats = result.corpus.stats
        click.echo(
            f"wrote {stats['chunks']} chunks ({stats['tokens']} tokens; train {stats['train_chunks']}, "
            f"validation {stats['validation_chunks']}) from {result.documents} documents to {out}"
        )


def _task_options(function: Any) -> Any:
    for decorator in reversed(
        [
            click.argument("task"),
            click.option("--lang", required=True, help="language (ISO 639-1)"),
            click.option("--split", default="test", show_default=True),
            click.option("--protocol", type=click.Choice(PROTOCOLS), default="harness", show_default=True),
            click.option("--limit", type=click.IntRange(min=1), help="deterministic subset of this many items"),
            click.option("--seed", type=int, default=0, show_default=True, help="seed of the --limit subset"),
            click.option("--level", type=click.Choice(MULTIEMO_LEVELS), help="MultiEmo level (default text)"),
            click.option("--archive", type=click.Path(exists=True, path_type=Path), help="bigbench archive/folder"),
            click.option("--offline", is_flag=True, help="never download; use the cache or --archive"),
            click.option("--data-files", multiple=True, type=click.Path(path_type=Path), help="local HF rows"),
            click.option("--max-text-chars", type=click.IntRange(min=1), help="cut the long text field"),
            click.option("--max-text-tokens", type=click.IntRange(min=1), help="cut it to tokens (--tokenizer)"),
            click.option(
                "--truncation",
                type=click.Choice(TRUNCATIONS),
                default="head",
                show_default=True,
                help="what a cut keeps: the head, or the head and the tail joined by ' … '",
            ),
            click.option("--tokenizer", help="tokenizer for --max-text-tokens"),
        ]
    ):
        function = decorator(function)
    return function


def _load_options(
    task: str, level: str | None, archive: Path | None, offline: bool, data_files: tuple[Path, ...]
) -> dict[str, Any]:
    name = get_task(task).name
    if name in ("multiemo", "entailed_polarity"):
        if data_files:
            raise AdamergexError(f"{name} reads the bigbench archive; use --archive, not --data-files")
        if level is not None and name != "multiemo":
            raise AdamergexError("--level applies to multiemo only")
        return _source_options(archive, offline, (), level)
    if archive is not None or level is not None:
        raise AdamergexError(f"--archive and --level apply to the bigbench tasks only, not {task!r}; use --data-files")
    return _source_options(None, False, data_files)


@prepare_group.command("task")
@_task_options
@click.option("--out", type=_FILE, required=True, help="output JSONL file")
@click.option("--force", is_flag=True, help="overwrite --out")
def prepare_task_command(
    task: str,
    lang: str,
    split: str,
    protocol: str,
    limit: int | None,
    seed: int,
    level: str | None,
    archive: Path | None,
    offline: bool,
    data_files: tuple[Path, ...],
    max_text_chars: int | None,
    max_text_tokens: int | None,
    truncation: str,
    tokenizer: str | None,
    out: Path,
    force: bool,
) -> None:
    """One split of a task in one language, rendered with --protocol, as JSONL."""
    count = prepare_task(
        task,
        lang,
        split,
        out,
        protocol=protocol,  # type: ignore[arg-type]
        limit=limit,
        seed=seed,
        force=force,
        max_text_chars=max_text_chars,
        max_text_tokens=max_text_tokens,
        tokenizer=load_tokenizer(tokenizer) if tokenizer else None,
        truncation=check_truncation(truncation),
        **_load_options(task, level, archive, offline, data_files),
    )
    click.echo(f"wrote {count} items to {out}")


@data_group.command("show")
@_task_options
@click.option("-n", "--count", type=click.IntRange(min=1), default=3, show_default=True)
def show_command(
    task: str,
    lang: str,
    split: str,
    protocol: str,
    limit: int | None,
    seed: int,
    level: str | None,
    archive: Path | None,
    offline: bool,
    data_files: tuple[Path, ...],
    max_text_chars: int | None,
    max_text_tokens: int | None,
    truncation: str,
    tokenizer: str | None,
    count: int,
) -> None:
    """Print examples exactly as the model sees them: the prompt, then each continuation after it."""
    definition = get_task(task)
    items = definition.load(
        lang,
        split,
        limit=limit or count,
        seed=seed,
        max_text_chars=max_text_chars,
        max_text_tokens=max_text_tokens,
        tokenizer=load_tokenizer(tokenizer) if tokenizer else None,
        truncation=truncation,  # type: ignore[arg-type]
        **_load_options(task, level, archive, offline, data_files),
    )
    for item in items[:count]:
        rendered = definition.render(item, protocol)  # type: ignore[arg-type]
        click.secho(f"── {rendered.id} ({protocol}) ──", bold=True)
        click.echo(rendered.prompt, nl=False)
        click.secho("⟨end of prompt⟩", dim=True)
        if rendered.choices is not None:
            for index, choice in enumerate(rendered.choices):
                marker = "*" if index == rendered.gold else " "
                click.echo(f"{marker} choice {index}: {choice!r}")
        else:
            click.echo(f"  target: {rendered.target!r}")
            click.echo(f"  gold:   {rendered.gold!r}")
        click.echo()


@data_group.command("stats")
@click.argument("task")
@click.option("--lang", "langs", multiple=True, required=True, help="language (ISO 639-1); repeat for several")
@click.option("--split", "splits", multiple=True, help="split; repeat for several (default: all of the task's)")
@click.option("--tokenizer", required=True, help="tokenizer folder, hub id or .gguf")
@click.option("--max-text-tokens", type=click.IntRange(min=1), help="count the texts longer than this")
@click.option("--limit", type=click.IntRange(min=1), help="deterministic subset of this many items per split")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the --limit subset")
@click.option("--level", type=click.Choice(MULTIEMO_LEVELS), help="MultiEmo level (default text)")
@click.option("--archive", type=click.Path(exists=True, path_type=Path), help="bigbench archive/folder")
@click.option("--offline", is_flag=True, help="never download; use the cache or --archive")
@click.option("--data-files", multiple=True, type=click.Path(path_type=Path), help="local HF rows")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object per language and split")
def stats_command(
    task: str,
    langs: tuple[str, ...],
    splits: tuple[str, ...],
    tokenizer: str,
    max_text_tokens: int | None,
    limit: int | None,
    seed: int,
    level: str | None,
    archive: Path | None,
    offline: bool,
    data_files: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Token-length distribution of a task's text per language and split, and how many --max-text-tokens cuts."""
    import json

    from adamergex.data.lengths import task_length_stats

    definition = get_task(task)
    for split in splits:
        definition.check_split(split)
    options = _load_options(task, level, archive, offline, data_files)
    loaded = load_tokenizer(tokenizer)
    table = Table(title=f"{definition.name}: tokens per text ({getattr(loaded, 'name_or_path', tokenizer)})")
    for column in ("lang", "split", "items", "min", "median", "p90", "max", "mean", "cut"):
        table.add_column(column, justify="left" if column in ("lang", "split") else "right")
    for lang in langs:
        for split in splits or definition.splits:
            stats = task_length_stats(
                definition.name, lang, split, loaded, max_text_tokens=max_text_tokens, limit=limit, seed=seed, **options
            )
            if as_json:
                click.echo(json.dumps({"task": definition.name, "lang": lang, "split": split, **stats.to_json()}))
                continue
            cut = "–" if max_text_tokens is None else f"{stats.cut} (> {max_text_tokens})"
            table.add_row(
                lang,
                split,
                str(stats.items),
                str(stats.min),
                f"{stats.median:g}",
                str(stats.p90),
                str(stats.max),
                f"{stats.mean:.1f}",
                cut,
            )
    if not as_json:
        Console().print(table)
