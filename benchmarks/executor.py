"""The Ray executor against the in-process run on one config (default: the quick demo), each from an empty folder.

Three runs of the same config, each in its own output folder under --workdir (model and data come from the
shared data cache, so only the steps differ):

    local   the in-process run (torch uses every core)
    ray-1   Ray, one step at a time holding every core: the executor's own overhead (planning passes, task
            dispatch, worker start-up and model loading per worker)
    ray-N   Ray, N steps at once with cores/N each: the step-level parallelism the graph allows

Reported per run: wall time (the driver's, Ray start-up apart), the sum of the step times the run computed
(run.json), parallelism = step sum / wall, and the ratio to the in-process wall time; and whether every run
wrote the same records.json and predictions.csv.

Usage: python benchmarks/executor.py [CONFIG] [--workdir DIR] [--workers N] [--cores C]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import ray
from rich.console import Console

import adamergex
from adamergex.pipeline.config import ExecutorSpec, ExperimentConfig, StepResources, load_config
from adamergex.pipeline.executors import execute

KINDS = ("reference", "task", "merge", "eval")


def with_executor(config: ExperimentConfig, output: Path, name: str, cores: float) -> ExperimentConfig:
    resources = {kind: StepResources(num_cpus=cores) for kind in KINDS}
    return config.model_copy(update={"output": output, "executor": ExecutorSpec(name=name, resources=resources)})


def measure(config: ExperimentConfig, cluster_cpus: int | None) -> dict[str, Any]:
    """One run from an empty folder; under Ray, on a fresh local instance of ``cluster_cpus`` CPUs."""
    shutil.rmtree(config.output, ignore_errors=True)
    init = 0.0
    if cluster_cpus is not None:
        started = time.perf_counter()
        ray.init(num_cpus=cluster_cpus, include_dashboard=False, log_to_driver=False)
        init = time.perf_counter() - started
    try:
        started = time.perf_counter()
        execute(config, progress=False, console=Console(file=io.StringIO()))
        wall = time.perf_counter() - started
    finally:
        if cluster_cpus is not None:
            ray.shutdown()
    facts = json.loads((config.output / "run.json").read_text())
    steps = facts["log"]["timings"]
    step_sum = sum(step["seconds"] for step in steps)
    return {
        "ray_start_s": round(init, 1),
        "wall_s": round(wall, 1),
        "steps": len(steps),
        "step_sum_s": round(step_sum, 1),
        "parallelism": round(step_sum / wall, 2),
        "workers": len({step["worker"] for step in steps}),
        "by_kind_s": {
            kind: round(sum(s["seconds"] for s in steps if s["kind"] == kind), 1)
            for kind in KINDS
            if any(s["kind"] == kind for s in steps)
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(adamergex.__file__).parent / "configs" / "demo-quick.yaml"
    parser.add_argument("config", type=Path, nargs="?", default=default)
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/_work/executor"))
    parser.add_argument("--workers", type=int, default=2, help="Steps at once in the parallel Ray run.")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="CPU cores the runs may use.")
    args = parser.parse_args()
    config = load_config(args.config)
    runs = {
        "local": (with_executor(config, args.workdir / "local", "local", args.cores), None),
        "ray-1": (with_executor(config, args.workdir / "ray-1", "ray", args.cores), args.cores),
        f"ray-{args.workers}": (
            with_executor(config, args.workdir / f"ray-{args.workers}", "ray", args.cores / args.workers),
            args.cores,
        ),
    }
    results = {name: measure(run_config, cpus) for name, (run_config, cpus) in runs.items()}
    local = results["local"]["wall_s"]
    for result in results.values():
        result["wall_vs_local"] = round(result["wall_s"] / local, 2)
    outputs = [run_config.output for run_config, _ in runs.values()]
    same = {
        name: len({(output / name).read_bytes() for output in outputs}) == 1
        for name in ("records.json", "predictions.csv")
    }
    print(json.dumps({"config": str(args.config), "cores": args.cores, "runs": results, "identical": same}, indent=2))


if __name__ == "__main__":
    main()
