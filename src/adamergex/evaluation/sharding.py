"""Data-parallel evaluation: the batches of one evaluation spread over the processes of a distributed launch,
and their per-item results gathered back in the original order.

Sharding is by batch, not by item. Every process builds the batch plan a single process would build (the same
items, sorted the same way, the same batch size) and computes every ``world_size``-th batch from its rank on.
Each batch then has the same rows and the same padding as in a one-process run, so the gathered results are
identical to that run's, not merely close (floating-point sums depend on what else is in a padded batch).
The processes meet twice per scoring call: to agree on the batch size (the smallest any of them chose, so
``"auto"`` cannot give two plans) and to gather the results, which every process receives.

The process group is torch.distributed's: the one ``accelerate launch`` or ``torchrun`` describes in the
environment (accelerate's ``PartialState`` creates it), or one a caller has initialised itself, such as a
worker group of a cluster scheduler.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

_T = TypeVar("_T")
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True)
class Shard:
    """This process's place among ``world_size`` evaluating processes (rank 0 is the main process)."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not one of the {self.world_size} processes")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def take(self, batches: Sequence[_T]) -> list[_T]:
        """This process's batches: every ``world_size``-th one, starting at its rank."""
        return list(batches[self.rank :: self.world_size])

    def smallest(self, value: int) -> int:
        """The smallest ``value`` any process passes (each process must call this at the same point)."""
        return value if self.world_size == 1 else min(self._all_gather(value))

    def merge(self, part: dict[_K, _V]) -> dict[_K, _V]:
        """The union of every process's ``part`` (the keys are disjoint: each process scored its own batches)."""
        if self.world_size == 1:
            return part
        merged: dict[_K, _V] = {}
        for piece in self._all_gather(part):
            merged.update(piece)
        return merged

    def _all_gather(self, value: _T) -> list[_T]:
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, value)
        return gathered


SINGLE_PROCESS = Shard()


def _launched_processes() -> int:
    """How many processes the launcher's environment names (``WORLD_SIZE``, set by accelerate and torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def current_shard() -> Shard:
    """This process's shard: torch.distributed's rank and world size when a process group exists or the
    launcher's environment describes one (created then through accelerate's ``PartialState``), else
    :data:`SINGLE_PROCESS`."""
    distributed = torch.distributed.is_available()
    if not (distributed and torch.distributed.is_initialized()):
        if not distributed or _launched_processes() <= 1:
            return SINGLE_PROCESS
        from accelerate.state import PartialState

        PartialState()
    return Shard(torch.distributed.get_rank(), torch.distributed.get_world_size())


def process_device(shard: Shard) -> str | None:
    """The device accelerate gives this process in a multi-process launch (``cuda:<local rank>``, or ``cpu``
    without CUDA); None for a single process, whose device is chosen as usual."""
    if shard.world_size == 1:
        return None
    from accelerate.state import PartialState

    return str(PartialState().device)


@contextmanager
def main_process_first(shard: Shard) -> Iterator[None]:
    """Run the block in the main process first and in the others after it (a model conversion or download
    that fills a shared cache happens once)."""
    if shard.world_size == 1:
        context: Any = nullcontext()
    else:
        from accelerate.state import PartialState

        context = PartialState().main_process_first()
    with context:
        yield


def end_processes(shard: Shard) -> None:
    """Leave the process group cleanly at the end of a multi-process command."""
    if shard.world_size > 1:
        from accelerate.state import PartialState

        PartialState().destroy_process_group()
