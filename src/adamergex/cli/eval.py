"""``adamergex eval``: score a base model, optionally with an adapter, on a task in one or more languages.

Under ``accelerate launch --num_processes N`` (or torchrun) the items are shared among the N processes
(:mod:`adamergex.evaluation.sharding`); only the main process prints and writes the results.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from adamergex.data.tasks.base import PROTOCOLS
from adamergex.errors import AdamergexError, OutputExistsError
from adamergex.evaluation.runner import BatchSize, EvalResult, write_results


def _parse_batch_size(value: str) -> BatchSize:
    if value == "auto":
        return "auto"
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise AdamergexError(f"--batch-size must be 'auto' or a positive integer, got {value!r}")


def results_table(results: list[EvalResult]) -> Table:
    """One row per evaluated language: n, each metric with its 95% interval, items per second."""
    names = list(dict.fromkeys(name for result in results for name in result.metrics))
    table = Table(title="adamergex eval")
    for column in ("task", "lang", "protocol", "split", "n", *names, "items/s"):
        table.add_column(column, justify="right" if column not in ("task", "lang", "protocol", "split") else "left")
    for result in results:
        cells = []
        for name in names:
            metric = result.metrics.get(name)
            cells.append(
                "" if metric is None else f"{100 * metric.value:.1f} [{100 * metric.low:.1f}, {100 * metric.high:.1f}]"
            )
        table.add_row(
            result.task,
            result.language,
            result.protocol,
            result.split,
            str(result.n),
            *cells,
            f"{result.items_per_second:.2f}",
        )
    return table


@click.command("eval")
@click.option("--base", required=True, help="Base model: short name (gemma-3-270m), folder, .gguf file or hub id.")
@click.option(
    "--adapter",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="PEFT adapter folder to apply; refused when it was made for another base model.",
)
@click.option("--task", "task_name", required=True, help="Task name (e.g. multiemo, xnli, xcopa, mgsm).")
@click.option("--lang", "langs", multiple=True, required=True, help="Language code; repeat for several.")
@click.option("--split", default="test", show_default=True, help="Split to evaluate.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate a seeded subset of this many items.")
@click.option(
    "--protocol",
    type=click.Choice(PROTOCOLS),
    default="harness",
    show_default=True,
    help="harness: lm-evaluation-harness prompts; paper: the AdaMergeX prompts; xlt: the cross-lingual-thought "
    "prompt (the XLT baseline, meant for the base model without an adapter).",
)
@click.option("--batch-size", "batch_size_text", default="auto", show_default=True, help="'auto' or a number.")
@click.option(
    "--data-files",
    multiple=True,
    help="Local JSONL/parquet rows in the dataset's schema, instead of the hub (repeatable); a path may name "
    "{dataset}, {lang} and {split} (e.g. data/{dataset}_{lang}_{split}.jsonl) to pick each language's file.",
)
@click.option("--max-text-tokens", type=click.IntRange(min=1), help="Cut each item's long text to this many tokens.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the subset and the bootstrap.")
@click.option("--dtype", default=None, help="Weights dtype (float32, bfloat16, float16); default per device.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1, ...; default: cuda when available.")
@click.option("--predictions/--no-predictions", default=True, show_default=True, help="Keep per-item predictions.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Results JSON file.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def eval_command(
    base: str,
    adapter: Path | None,
    task_name: str,
    langs: tuple[str, ...],
    split: str,
    limit: int | None,
    protocol: str,
    batch_size_text: str,
    data_files: tuple[str, ...],
    max_text_tokens: int | None,
    seed: int,
    dtype: str | None,
    device: str | None,
    predictions: bool,
    out: Path,
    force: bool,
) -> None:
    """Evaluate BASE (with ADAPTER) on TASK in each --lang; write results with 95% intervals to --out.

    Data-parallel: run it under `accelerate launch --num_processes N`; results equal one process's.
    """
    from adamergex.adapters.fit import recorded_base
    from adamergex.data.tasks import get_task
    from adamergex.evaluation.adapter import evaluate_adapter
    from adamergex.evaluation.sharding import current_shard, end_processes, main_process_first, process_device
    from adamergex.models import load_base_model

    if out.exists() and not force:
        raise OutputExistsError(f"{out} already exists; pass --force to overwrite it")
    batch_size = _parse_batch_size(batch_size_text)
    task = get_task(task_name)
    languages = [task.check_language(lang) for lang in langs]
    task.check_split(split)
    if adapter is not None:
        recorded_base(adapter)  # a broken adapter folder fails before the model load
    shard = current_shard()
    with main_process_first(shard):  # a GGUF file is converted (and cached) once
        loaded = load_base_model(base, dtype=dtype, device=device or process_device(shard))
    results = evaluate_adapter(
        loaded,
        adapter,
        task,
        languages,
        options={"data_files": list(data_files)} if data_files else None,
        max_text_tokens=max_text_tokens,
        announce=(lambda lang: click.echo(f"{task.name} / {lang} / {split} ({protocol})", err=True))
        if shard.is_main
        else None,
        split=split,
        limit=limit,
        protocol=protocol,
        batch_size=batch_size,
        seed=seed,
        keep_predictions=predictions,
        shard=shard,
    )
    end_processes(shard)
    if not shard.is_main:
        return
    write_results(results, out, force=force)
    Console(stderr=True).print(results_table(results))
    click.echo(str(out))
