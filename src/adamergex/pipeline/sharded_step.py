"""One evaluation step computed by several processes (data-parallel), as a Ray task of the ``ray`` executor
runs it when its kind asks for ``processes`` > 1.

The Ray task starts ``accelerate launch --num_processes P -m adamergex.pipeline.sharded_step CONFIG STEP
TIMINGS`` (one GPU per process among those Ray reserved, or CPU processes over gloo). Every process builds the
pipeline from the config and resolves the step with a :class:`ShardedComputer`, the in-process resolver's path
with two differences: the main process alone takes the step's claim in the cache and tells the others whether
the step is sealed already; if not, every process computes its share of the batches
(:mod:`adamergex.evaluation.sharding`: the gathered result equals one process's) and the main process alone
writes and seals what a one-process step writes, then the step's timing to TIMINGS.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console

from adamergex.errors import AdamergexError
from adamergex.evaluation.sharding import Shard, current_shard, end_processes, main_process_first, process_device
from adamergex.files import atomic_write_text
from adamergex.pipeline.config import ExperimentConfig
from adamergex.pipeline.resolver import Computer
from adamergex.pipeline.runner import StepTiming
from adamergex.pipeline.steps import Step, step_from_json

#: How a process of the launch reports a user error (one line on stderr), for the task that launched it.
ERROR_PREFIX = "error: "


def launch_command(processes: int) -> list[str]:
    """``accelerate launch`` of this module on ``processes`` processes of this machine. The torchrun-based
    ``--multi_gpu`` launcher also runs CPU processes (over gloo) where no GPU is visible."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
    settings = ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
    return [*launcher, *settings, "-m", "adamergex.pipeline.sharded_step"]


def launch(config_json: str, step: Step, processes: int, *, gpus: bool) -> list[StepTiming]:
    """Compute ``step`` in ``processes`` processes (on the GPUs this process sees when ``gpus``, else on CPUs,
    sharing this process's threads); its timing, or nothing when it was sealed meanwhile."""
    env = dict(os.environ)
    threads = int(env.get("OMP_NUM_THREADS", "0") or 0) or os.cpu_count() or 1
    env["OMP_NUM_THREADS"] = str(max(1, threads // processes))
    if not gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    with tempfile.TemporaryDirectory(prefix="adamergex-step-") as folder:
        config, planned, timings = (Path(folder) / name for name in ("config.json", "step.json", "timings.json"))
        config.write_text(config_json)
        planned.write_text(json.dumps(step.to_json()))
        command = [*launch_command(processes), str(config), str(planned), str(timings)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        sys.stderr.write(done.stderr)  # the launch's log, in the worker's log
        if done.returncode != 0:
            raise _failure(step, processes, done.returncode, done.stderr)
        return [StepTiming(**timing) for timing in json.loads(timings.read_text())] if timings.is_file() else []


def _failure(step: Step, processes: int, code: int, stderr: str) -> Exception:
    """A process's user error as itself (one line); anything else names the step and the launch's last line."""
    errors = [line.removeprefix(ERROR_PREFIX) for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    if errors:
        return AdamergexError(errors[-1])
    lines = stderr.strip().splitlines()
    return RuntimeError(
        f"{step.kind} step {step.name} failed in its {processes}-process launch (exit code {code}): "
        f"{lines[-1] if lines else 'no output'}"
    )


class ShardedComputer(Computer):
    """Resolves a data-parallel step as one process of its launch (see the module docstring)."""

    def __init__(self, config: ExperimentConfig, shard: Shard, **options: Any) -> None:
        super().__init__(config, **options)
        self.shard = shard

    @contextlib.contextmanager
    def claim(self, step: Step) -> Iterator[Path | None]:
        """The main process's claim; every process learns from it whether the step is sealed."""
        held = super().claim(step) if self.shard.is_main else contextlib.nullcontext(None)
        with held as found:
            sealed = _from_main(self.shard, found is not None)
            yield (found or self.cache.path(step.kind, step.key)) if sealed else None

    def note(self, step: Step, state: str) -> None:
        if self.shard.is_main:
            super().note(step, state)

    def miss(self, step: Step, produce: Any = None, *, started: float | None = None) -> Any:
        started = time.perf_counter()
        result = step.result(self.env, self.shard)
        if not self.shard.is_main:
            return result
        return super().miss(step, lambda folder: step.write(folder, result), started=started)

    @property
    def worker(self) -> str:
        return f"{os.getpid()}@{socket.gethostname()} ({self.shard.world_size} processes)"


def compute(resolver: ShardedComputer, step: Step) -> list[StepTiming]:
    """Compute the data-parallel ``step`` as this process's share (every process of the launch calls this); the
    main process seals it and returns its timing, the others return nothing, as all do when it was sealed
    already."""
    if not step.data_parallel:
        raise AdamergexError(f"{step.kind} step {step.name}: only evaluation steps run data-parallel")
    before = len(resolver.log.timings)
    resolver.compute(step)
    return resolver.log.timings[before:]


def _from_main(shard: Shard, value: bool) -> bool:
    """The main process's ``value`` in every process (each calls this at the same point)."""
    if shard.world_size == 1:
        return value
    import torch

    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return bool(box[0])


def main(argv: Sequence[str] | None = None) -> int:
    """One process of the launch: CONFIG (the run's config JSON), STEP (the planned step's JSON), TIMINGS (where
    the main process writes the step's timing)."""
    config_path, step_path, timings_path = argv if argv is not None else sys.argv[1:]
    shard = current_shard()
    try:
        config = ExperimentConfig.model_validate_json(Path(config_path).read_text())
        step = step_from_json(json.loads(Path(step_path).read_text()))
        console = Console(stderr=True) if shard.is_main else Console(file=io.StringIO())
        resolver = ShardedComputer(config, shard, progress=False, console=console, device=process_device(shard))
        with main_process_first(shard):  # a GGUF file is converted (and cached) once
            resolver.env.base  # noqa: B018  # loaded here, in turn
        timings = compute(resolver, step)
    except AdamergexError as error:
        print(f"{ERROR_PREFIX}{error}", file=sys.stderr)
        return AdamergexError.exit_code
    if shard.is_main:
        atomic_write_text(timings_path, json.dumps([asdict(timing) for timing in timings]), force=True)
    end_processes(shard)
    return 0


if __name__ == "__main__":
    sys.exit(main())
