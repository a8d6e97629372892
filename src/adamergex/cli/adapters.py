"""``adamergex merge``, ``adamergex combine`` and ``adamergex inspect``."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from adamergex.adapters.inspect import describe, module_type
from adamergex.adapters.io import read_adapter
from adamergex.errors import AdapterFormatError
from adamergex.merging.api import COMPUTE_DTYPES, MergeSummary, combine, merge
from adamergex.merging.combination import EXACT_LORA_MODES, IA3_MODES, LORA_MODES, MODULES_TO_SAVE
from adamergex.provenance import read_provenance
from adamergex.tensors import DTYPES

_DIR = click.Path(exists=False, file_okay=False, path_type=Path)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _ranks(values: list[int | None]) -> str:
    present = sorted({v for v in values if v is not None})
    if not present:
        return "–"
    return str(present[0]) if len(present) == 1 else f"{present[0]}–{present[-1]}"


def print_summary(summary: MergeSummary, console: Console) -> None:
    """A short table by module type, then totals, notes and where the output went."""
    groups: dict[str, list] = defaultdict(list)
    for report in summary.modules:
        groups[module_type(report.name)].append(report)
    title = f"{summary.kind} · mode {summary.mode}" + (f" · t = {summary.t:g}" if summary.t is not None else "")
    table = Table(title=title)
    table.add_column("module")
    table.add_column("n", justify="right")
    for role in summary.roles:
        table.add_column(f"r {role}", justify="right")
    table.add_column("r out", justify="right")
    table.add_column("kept energy (min)", justify="right")
    table.add_column("ΔW change (max rel.)", justify="right")
    if summary.clamped:
        table.add_column("clamped", justify="right")
    for name, reports in groups.items():
        row = [name, str(len(reports))]
        row += [_ranks([r.input_ranks[i] for r in reports]) for i in range(len(summary.roles))]
        row.append(_ranks([r.output_rank for r in reports]))
        kept = [r.kept_energy for r in reports if r.kept_energy is not None]
        row.append(_fmt(min(kept)) if kept else "–")
        row.append(_fmt(max(r.relative_change for r in reports)))
        if summary.clamped:
            row.append(str(sum(r.clamped for r in reports)))
        table.add_row(*row)
    console.print(table)
    console.print(
        f"{len(summary.modules)} modules in {summary.elapsed_s:.2f} s" + (f" → {summary.out}" if summary.out else "")
    )
    for role, absent in summary.missing.items():
        console.print(f"[yellow]note:[/] {role} lacks {len(absent)} module(s) (treated as identity), e.g. {absent[0]}")
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {note}")


def print_vllm(report: dict[str, Any], console: Console) -> None:
    """One line on vLLM serving (with the ``max_lora_rank`` to start it with), then the problems and notes."""
    if report["compatible"]:
        console.print(f"vLLM: compatible; serve with --max-lora-rank {report['max_lora_rank']} or more")
    else:
        console.print("vLLM: [red]not compatible[/]")
    for problem in report["problems"]:
        console.print(f"  - {escape(problem)}", highlight=False)
    for note in report["notes"]:
        console.print(f"  [yellow]note:[/] {escape(note)}", highlight=False)


_Command = TypeVar("_Command", bound=Callable[..., Any])

_common_options = [
    click.option("--out", type=_DIR, required=True, help="Output adapter folder (written atomically)."),
    click.option("--rank", type=click.IntRange(min=1), default=None, help="Output rank for --mode svd."),
    click.option("--dtype", type=click.Choice(list(DTYPES)), default=None, help="Output dtype [default: task's]."),
    click.option("--compute-dtype", type=click.Choice(COMPUTE_DTYPES), default="float32", help="Arithmetic dtype."),
    click.option(
        "--modules-to-save",
        type=click.Choice(MODULES_TO_SAVE),
        default="refuse",
        show_default=True,
        help="Full module copies cannot be merged: refuse, or copy the task adapter's.",
    ),
    click.option("--allow-base-mismatch", is_flag=True, help="Accept different base model names (shapes checked)."),
    click.option("--force", is_flag=True, help="Replace an existing output folder."),
    click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table."),
]


def _with_common(function: _Command) -> _Command:
    for option in reversed(_common_options):
        function = option(function)
    return function


def _report(summary: MergeSummary, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        print_summary(summary, Console())


@click.command("merge")
@click.option("--task", "task", type=_DIR, required=True, help="Task adapter trained in the source language (T).")
@click.option("--ref-target", type=_DIR, required=True, help="Reference-task adapter, target language (Rt).")
@click.option("--ref-source", type=_DIR, required=True, help="Reference-task adapter, source language (Rs).")
@click.option("--t", "t", type=float, default=1.0, show_default=True, help="Coefficient of (Rt ⊖ Rs).")
@click.option(
    "--mode",
    type=click.Choice(LORA_MODES + IA3_MODES),
    default=None,
    help="LoRA: concat (exact, default), svd (rank-k), factor (released code). (IA)³: multiplicative "
    "(default) or additive (cross ablation).",
)
@click.option(
    "--clamp",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="(IA)³: clamp |l_Rs| < EPS to ±EPS instead of refusing.",
)
@_with_common
def merge_command(
    task: Path,
    ref_target: Path,
    ref_source: Path,
    t: float,
    mode: str | None,
    clamp: float | None,
    out: Path,
    rank: int | None,
    dtype: str | None,
    compute_dtype: str,
    modules_to_save: str,
    allow_base_mismatch: bool,
    force: bool,
    as_json: bool,
) -> None:
    """AdaMergeX: write T ⊕ t·(Rt ⊖ Rs) as a PEFT adapter folder."""
    options = {"clamp": True, "min_abs": clamp} if clamp is not None else {}
    summary = merge(
        task,
        ref_target,
        ref_source,
        t,
        out,
        mode=mode,  # type: ignore[arg-type]
        rank=rank,
        dtype=dtype,
        compute_dtype=compute_dtype,
        modules_to_save=modules_to_save,  # type: ignore[arg-type]
        allow_base_mismatch=allow_base_mismatch,
        force=force,
        **options,  # type: ignore[arg-type]
    )
    _report(summary, as_json)


@click.command("combine")
@click.option("--adapter", "adapters", type=_DIR, multiple=True, required=True, help="An adapter (repeat).")
@click.option("--weight", "weights", type=float, multiple=True, required=True, help="Its weight (repeat, in order).")
@click.option("--mode", type=click.Choice(EXACT_LORA_MODES), default="concat", show_default=True)
@_with_common
def combine_command(
    adapters: tuple[Path, ...],
    weights: tuple[float, ...],
    mode: str,
    out: Path,
    rank: int | None,
    dtype: str | None,
    compute_dtype: str,
    modules_to_save: str,
    allow_base_mismatch: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Write Σ wᵢ·adapterᵢ (LoRA: exact on ΔW; (IA)³: Σ wᵢ lᵢ), e.g. AriMerge = T + Rt."""
    summary = combine(
        list(adapters),
        list(weights),
        out,
        mode=mode,  # type: ignore[arg-type]
        rank=rank,
        dtype=dtype,
        compute_dtype=compute_dtype,
        modules_to_save=modules_to_save,  # type: ignore[arg-type]
        allow_base_mismatch=allow_base_mismatch,
        force=force,
    )
    _report(summary, as_json)


@click.command("inspect")
@click.argument("adapter", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inspect_command(adapter: Path, as_json: bool) -> None:
    """Describe a PEFT adapter folder: kind, base model, modules, ranks, parameters, norms, vLLM compatibility."""
    info = describe(read_adapter(adapter))
    try:
        provenance, provenance_problem = read_provenance(adapter), None
    except AdapterFormatError as error:
        provenance, provenance_problem = None, str(error)
    if as_json:
        click.echo(
            json.dumps(
                {**info, "provenance": provenance, "provenance_error": provenance_problem}, indent=2, default=str
            )
        )
        return
    console = Console()
    if provenance_problem:
        console.print(f"[yellow]note:[/] provenance {escape(provenance_problem)}", highlight=False)
    console.print(
        f"[bold]{info['path']}[/]: {info['kind']} adapter for {info['base_model'] or '(base model not named)'}, "
        f"{info['modules']} modules, {info['parameters']:,} parameters, {info['dtype']}"
    )
    table = Table()
    if info["kind"] == "lora":
        columns = ["module", "n", "shape", "rank", "scale", "‖ΔW‖_F mean", "‖ΔW‖_F max"]
        rows = [
            [
                k,
                str(v["count"]),
                "×".join(map(str, v["shape"])),
                _ranks(v["ranks"]),
                ", ".join(map(str, v["scales"])),
                _fmt(v["delta_norm_mean"]),
                _fmt(v["delta_norm_max"]),
            ]
            for k, v in info["by_type"].items()
        ]
    else:
        columns = ["module", "n", "size", "feed-forward", "l min", "l mean", "l max"]
        rows = [
            [
                k,
                str(v["count"]),
                str(v["size"]),
                str(v["feedforward"]),
                _fmt(v["l_min"]),
                _fmt(v["l_mean"]),
                _fmt(v["l_max"]),
            ]
            for k, v in info["by_type"].items()
        ]
    for column in columns:
        table.add_column(column, justify="left" if column == "module" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if info["modules_to_save"]:
        console.print(f"modules_to_save: {info['modules_to_save']}")
    print_vllm(info["vllm"], console)
    if provenance:
        console.print(
            f"provenance: {provenance.get('tool', '?')} {provenance.get('method', '')} mode={provenance.get('mode')} "
            f"t={provenance.get('t')} created {provenance.get('created')}"
        )
