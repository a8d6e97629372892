"""The config's ``executor`` section: where the steps run, with how many threads, and what each kind reserves."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from adamergex.pipeline.spec import Strict
from adamergex.pipeline.steps import STEP_KINDS, StepKind


class StepResources(Strict):
    """What one step of a kind reserves on a Ray cluster (Ray starts it only where these are free)."""

    num_cpus: float = Field(1, gt=0, description="CPU cores per step (also its torch threads under Ray).")
    num_gpus: float | None = Field(
        None,
        ge=0,
        description="GPUs per step (a fraction shares one); default: 1 for training and evaluation when the "
        "cluster has GPUs, else 0; merges run on the CPU.",
    )
    memory_gib: float | None = Field(None, gt=0, description="Memory reserved per step, in GiB (default: none).")
    processes: int | None = Field(
        None,
        ge=1,
        description="Data-parallel processes per evaluation step (accelerate launch inside the Ray task, one GPU "
        "each, or CPU processes when num_gpus is 0); default: num_gpus when it is a whole number above 1, else 1. "
        "Training and merge steps run in one process.",
    )

    def processes_for(self, kind: StepKind) -> int:
        """How many processes a step of ``kind`` runs in: data-parallel kinds only (see ``processes``)."""
        if not STEP_KINDS[kind].data_parallel:
            return 1
        gpus = self.num_gpus
        whole = int(gpus) if gpus is not None and gpus.is_integer() and gpus > 1 else 1
        return self.processes or whole


class ExecutorSpec(Strict):
    """Where the steps run: one after another in this process (local, the reference), or as Ray tasks."""

    name: Literal["local", "ray"] = Field(
        "local",
        description="local: every step in this process, in order; ray: every step a Ray task that starts when "
        "its inputs are sealed in the cache (which must be on a filesystem every node shares).",
    )
    address: str | None = Field(
        None, description="Ray cluster address (e.g. auto, or ray://host:10001); default: a local Ray instance."
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op CPU threads every step computes with, in this process and in every Ray worker "
        "alike (float32 training is not bit-identical across thread counts); default: the CPUs this process may "
        "use when the run starts. A cached step keeps the bits of the run that computed it.",
    )
    resources: dict[StepKind, StepResources] = Field(
        default_factory=dict,
        description="Per step kind (reference, task, merge, eval), what a step reserves (default: 1 CPU, GPUs "
        "as described under num_gpus).",
    )

    def resources_for(self, kind: StepKind) -> StepResources:
        return self.resources.get(kind, StepResources())

    def threads_or_default(self) -> int:
        """:attr:`threads`, or the CPUs this process may use."""
        from adamergex.threads import available_cpus

        return self.threads if self.threads is not None else available_cpus()

    @model_validator(mode="after")
    def _processes_fit(self) -> ExecutorSpec:
        """Several processes only for evaluation steps, each on a GPU of its own or all on CPUs."""
        for kind, wanted in self.resources.items():
            processes = wanted.processes
            if processes is None or processes == 1:
                continue
            if not STEP_KINDS[kind].data_parallel:
                parallel = " and ".join(name for name, step in STEP_KINDS.items() if step.data_parallel)
                raise ValueError(
                    f"resources.{kind}.processes: only {parallel} steps run data-parallel; {kind} steps run in one "
                    "process (leave processes out or set it to 1)"
                )
            if wanted.num_gpus not in (None, 0, processes):
                raise ValueError(
                    f"resources.{kind}: num_gpus {wanted.num_gpus:g} with processes {processes}; each process "
                    f"needs a GPU of its own (num_gpus {processes}) or none (num_gpus 0)"
                )
        return self
