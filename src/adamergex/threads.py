"""How many CPU threads torch computes with, fixed per run so that a step's output does not depend on the process.

float32 training on the CPU is not bit-identical across thread counts: torch splits a reduction (a matrix
product's inner dimension, a sum) into one partial result per thread and adds the partials, and the order of
those additions moves the last bits. A task adapter trained with one thread therefore differs, in its last bits,
from the same adapter trained with two — and so does everything computed from it. A run therefore fixes the
intra-op thread count of every step it computes (``executor.threads``, by default the CPUs this process may use
when the run starts, read from the affinity mask rather than from torch's current setting), in this process and
in every Ray worker alike, and a computation whose result is reported as a number (the assumption diagnostic) runs
on one thread, so that it is a function of its stored inputs alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

import torch

P = ParamSpec("P")
R = TypeVar("R")


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, so ``taskset -c 0`` gives 1), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Compute with ``count`` intra-op threads inside the block; the previous setting is restored after it."""
    if count < 1:
        raise ValueError(f"thread count must be at least 1, got {count}")
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def single_threaded(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` computed on one thread: its reductions add in one fixed order whatever the process's setting."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with torch_threads(1):
            return function(*args, **kwargs)

    return wrapper
