"""``adamergex run``, ``adamergex report`` and ``adamergex demo``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import click
from rich.console import Console

import adamergex
from adamergex.pipeline.config import ExecutorSpec, ExperimentConfig, load_config


def _execute(config: ExperimentConfig, dry_run: bool, calibrate: bool = False) -> None:
    from adamergex.pipeline.executors import execute

    console = Console(stderr=True)
    pipeline, _, results = execute(config, dry_run=dry_run, console=console)
    log = pipeline.log
    if dry_run:
        click.echo(f"{len(log.planned)} step(s) to run, {len(log.cached)} cached")
        _estimate(pipeline, calibrate, console)
        return
    click.echo(f"{len(log.executed)} step(s) run, {len(log.cached)} taken from the cache")
    if results is not None:
        Console().print((results / "results.md").read_text())
        click.echo(f"results: {results}")


def _estimate(pipeline: Any, calibrate: bool, console: Console) -> None:
    """Print the planned steps with estimated times (measuring the costs first with ``calibrate``)."""
    from adamergex.pipeline import estimate

    config, plan = pipeline.config, list(pipeline.log.plan.values())
    calibration: estimate.Calibration | None
    if calibrate:
        calibration = estimate.calibrate(pipeline, plan, say=lambda line: console.print(line, markup=False))
        path = estimate.write_calibration(config.output, calibration)
        console.print(f"calibration written to {path}", markup=False)
    else:
        calibration = estimate.read_calibration(config.output)
        if calibration is None:
            click.echo("no time estimate: add --calibrate to measure step costs on this machine first")
            return
    estimates = estimate.estimate_plan(plan, calibration, config.source_lang)
    for line in estimate.format_estimate(estimates, calibration, estimate.cost_settings(config)):
        click.echo(line)


@click.command("run")
@click.argument("config_path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="List the steps that would run and those already cached.")
@click.option(
    "--calibrate",
    is_flag=True,
    help="With --dry-run: first measure step costs on this machine (a few training steps and items; about two "
    "minutes) and print the plan with estimated times; later dry runs reuse the measurement.",
)
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="Override output.")
@click.option(
    "--executor",
    type=click.Choice(get_args(ExecutorSpec.model_fields["name"].annotation)),
    default=None,
    help="Override executor.name: local (every step in this process) or ray (every step a Ray task; extra ray).",
)
@click.option(
    "--ray-address",
    default=None,
    help="Override executor.address: the Ray cluster to join (default: a local Ray instance).",
)
@click.option("--print-schema", is_flag=True, help="Print the config's JSON schema and exit.")
@click.option(
    "--verify",
    is_flag=True,
    help="First check the content hashes of every cache entry, also those this config no longer uses; "
    "damaged ones are reported and removed (a dry run only reports them).",
)
def run_command(
    config_path: Path | None,
    dry_run: bool,
    calibrate: bool,
    output: Path | None,
    executor: str | None,
    ray_address: str | None,
    print_schema: bool,
    verify: bool,
) -> None:
    """Run the experiment in CONFIG_PATH (YAML): train, merge, evaluate, report; cached and resumable."""
    if print_schema:
        click.echo(json.dumps(ExperimentConfig.model_json_schema(), indent=2))
        return
    if config_path is None:
        raise click.UsageError("CONFIG_PATH is required (or --print-schema)")
    if calibrate and not dry_run:
        raise click.UsageError("--calibrate goes with --dry-run (it estimates a plan)")
    config = _with_executor(load_config(config_path, output=output), executor, ray_address)
    if verify:
        _verify_cache(config, dry_run)
    _execute(config, dry_run, calibrate)


def _with_executor(config: ExperimentConfig, name: str | None, address: str | None) -> ExperimentConfig:
    """``config`` with the command line's executor settings in place of its own."""
    chosen = {"name": name, "address": address}
    spec = config.executor.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    if spec.address is not None and spec.name != "ray":
        raise click.UsageError("--ray-address goes with the ray executor (--executor ray or executor.name: ray)")
    return config.model_copy(update={"executor": spec})


def _verify_cache(config: ExperimentConfig, dry_run: bool) -> None:
    """Check every sealed step folder under the run's cache against its manifest's sha256s."""
    from adamergex.pipeline.cache import StepCache

    console = Console(stderr=True)

    def report(line: str) -> None:
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    cache = StepCache(config.output / "cache", read_only=dry_run, report=report)
    checked, damaged = cache.verify_all()
    click.echo(f"verified {checked} cache entr{'y' if checked == 1 else 'ies'}: {len(damaged)} damaged")


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the report here instead of RUN_DIR/results.",
)
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
def report_command(run_dir: Path, out: Path | None, force: bool) -> None:
    """Rebuild the report (tables, plots, diagnostic) from RUN_DIR's predictions.csv and records.json."""
    from adamergex.pipeline.report import write_report

    results = write_report(run_dir, out, force=force or out is None)
    Console().print((results / "results.md").read_text())
    click.echo(f"results: {results}")


@click.command("demo")
@click.option("--quick", is_flag=True, help="The small variant (about 5 minutes on 2 CPU cores).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="Run folder.")
@click.option("--dry-run", is_flag=True, help="List the steps without running them.")
def demo_command(quick: bool, output: Path | None, dry_run: bool) -> None:
    """The offline experiment: Gemma-3-270M, UDHR reference adapters, MultiEmo, all methods, t tuned."""
    name = "demo-quick.yaml" if quick else "demo.yaml"
    config_path = Path(adamergex.__file__).parent / "configs" / name
    _execute(load_config(config_path, output=output), dry_run)
