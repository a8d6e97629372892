"""Sharded (data-parallel) evaluation: each process scores its share of the batches, every process gets the
whole result, and that result equals a one-process run's.

Two kinds of test: in-process, with the processes played by threads that exchange results through a barrier
(the batch plan, the scoring and the merge are the real code; only the transport is a stand-in), and end to
end, ``adamergex eval`` under ``accelerate launch`` with two CPU processes over gloo.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adamergex.data.sources.bigbench import BIGBENCH_VERSION
from adamergex.evaluation.runner import evaluate
from adamergex.evaluation.sharding import SINGLE_PROCESS, Shard, current_shard
from synthetic_multiemo import write_multiemo_folder

FIXTURES = Path(__file__).parents[2] / "fixtures" / "evaluation"


@dataclass
class _Exchange:
    """What ``all_gather_object`` does, for threads: every thread posts a value, all read every value. It also
    counts the batches each thread takes, to show that each computes only its share."""

    size: int
    slots: list[Any] = field(default_factory=list)
    taken: list[int] = field(default_factory=list)
    barrier: threading.Barrier = field(init=False)

    def __post_init__(self) -> None:
        self.slots = [None] * self.size
        self.taken = [0] * self.size
        self.barrier = threading.Barrier(self.size, timeout=120)


@dataclass(frozen=True)
class _ThreadShard(Shard):
    exchange: _Exchange | None = None

    def take(self, batches: Any) -> list[Any]:
        share = super().take(batches)
        assert self.exchange is not None
        self.exchange.taken[self.rank] += len(share)
        return share

    def _all_gather(self, value: Any) -> list[Any]:
        assert self.exchange is not None
        self.exchange.slots[self.rank] = value
        self.exchange.barrier.wait()
        gathered = list(self.exchange.slots)
        self.exchange.barrier.wait()  # nobody overwrites a slot before everyone has read it
        return gathered


def _run_sharded(world_size: int, run: Any) -> tuple[list[Any], list[int]]:
    """``run(shard)`` in ``world_size`` threads, one shard each; the results and the batches taken, by rank."""
    exchange = _Exchange(world_size)
    results: list[Any] = [None] * world_size
    errors: list[BaseException] = []

    def target(rank: int) -> None:
        try:
            results[rank] = run(_ThreadShard(rank, world_size, exchange))
        except BaseException as error:  # surfaced below; a dead thread would leave the others at the barrier
            errors.append(error)
            exchange.barrier.abort()

    threads = [threading.Thread(target=target, args=(rank,)) for rank in range(world_size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results, exchange.taken


def _comparable(result: Any) -> dict[str, Any]:
    record = result.to_json()
    return {key: record[key] for key in ("n", "batch_size", "metrics", "predictions")}


def test_every_batch_is_taken_by_exactly_one_process() -> None:
    batches = [f"batch {index}" for index in range(7)]
    for world_size in (1, 2, 3, 8):
        shares = [Shard(rank, world_size).take(batches) for rank in range(world_size)]
        assert sorted(batch for share in shares for batch in share) == sorted(batches)
        assert all(share == sorted(share, key=batches.index) for share in shares)
    assert Shard(1, 3).take(batches) == ["batch 1", "batch 4"]
    with pytest.raises(ValueError, match="rank 2"):
        Shard(2, 2)


def test_outside_a_launch_there_is_one_process() -> None:
    assert current_shard() == SINGLE_PROCESS
    assert SINGLE_PROCESS.merge({1: "a"}) == {1: "a"} and SINGLE_PROCESS.smallest(5) == 5


@pytest.mark.parametrize(
    ("task", "lang", "split", "options"),
    [
        ("xnli", "de", "validation", {"data_files": str(FIXTURES / "xnli_de.jsonl")}),
        ("mgsm", "de", "test", {"data_files": str(FIXTURES / "mgsm_de.jsonl")}),
    ],
)
def test_sharded_evaluation_equals_one_process(llama, tokenizer, task, lang, split, options) -> None:
    """Multiple choice and generation: two and three processes give the one-process result, on every process."""
    settings = {"split": split, "batch_size": 1, "progress": False, "load_options": options}
    single = _comparable(evaluate(llama, tokenizer, task, lang, **settings))
    for world_size in (2, 3):
        sharded, taken = _run_sharded(
            world_size, lambda shard: evaluate(llama, tokenizer, task, lang, shard=shard, **settings)
        )
        assert [_comparable(result) for result in sharded] == [single] * world_size
        assert sum(taken) == single["n"] and min(taken) >= 1  # batches of one item, each computed once


def test_processes_agree_on_the_smallest_batch_size(llama, tokenizer, tmp_path: Path) -> None:
    """Batch sizes chosen per process (as "auto" may) become one plan: the smallest, as one process runs it."""
    folder = write_multiemo_folder(tmp_path, {"en": 8_215})
    settings = {"split": "test", "limit": 12, "progress": False, "load_options": {"archive": str(folder)}}
    single = _comparable(evaluate(llama, tokenizer, "multiemo", "en", batch_size=2, **settings))

    def run(shard: Shard) -> Any:
        return evaluate(llama, tokenizer, "multiemo", "en", batch_size=[5, 2][shard.rank], shard=shard, **settings)

    results, taken = _run_sharded(2, run)
    assert [_comparable(result) for result in results] == [single, single]
    assert taken == [3, 3]  # six batches of two
    assert single["batch_size"] == 2 and single["n"] == 12


def _launch_command() -> list[str]:
    """``accelerate launch`` with two processes. On a machine without CUDA the torchrun-based ``--multi_gpu``
    launcher runs them on CPU over gloo (``--cpu --num_processes 2`` starts one process unless MPI is set up)."""
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    settings = ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
    return launcher + settings


def test_accelerate_launch_with_two_processes_equals_one_process(saved_llama: Path, tmp_path: Path) -> None:
    """``accelerate launch --num_processes 2 adamergex eval`` on CPU: the main process alone writes the results,
    and they equal those of a one-process run (both run as subprocesses with the same thread count)."""
    script = shutil.which("adamergex", path=str(Path(sys.executable).parent))
    assert script is not None, "the adamergex console script is not installed (pip install -e .)"
    cache = tmp_path / "cache"
    write_multiemo_folder(cache / "data" / f"bigbench-{BIGBENCH_VERSION}" / "multiemo", {"en": 8_215, "de": 8_215})
    env = {**os.environ, "ADAMERGEX_CACHE": str(cache), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}

    def args(out: Path) -> list[str]:
        common = ["eval", "--base", str(saved_llama), "--task", "multiemo", "--lang", "en", "--lang", "de"]
        return [*common, "--limit", "10", "--batch-size", "2", "--device", "cpu", "--out", str(out)]

    single_out, sharded_out = tmp_path / "single.json", tmp_path / "sharded.json"
    single = subprocess.run([script, *args(single_out)], env=env, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    launched = subprocess.run(
        [*_launch_command(), script, *args(sharded_out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    # The main process's progress bar counts its share: 3 of the 5 batches of 2 prompts.
    assert "scoring choices: 100%" in single.stderr and "| 10/10 " in single.stderr
    assert "| 6/6 " in launched.stderr and "/10 " not in launched.stderr
    assert launched.stdout.split().count(str(sharded_out)) == 1  # only the main process reports
    assert launched.stderr.count("multiemo / de / test") == 1  # and announces
    expected = json.loads(single_out.read_text())["results"]
    produced = json.loads(sharded_out.read_text())["results"]
    assert [result["language"] for result in produced] == ["en", "de"]
    for mine, theirs in zip(produced, expected, strict=True):
        assert (mine["n"], mine["batch_size"]) == (theirs["n"], theirs["batch_size"]) == (10, 2)
        assert mine["predictions"] == theirs["predictions"]
        assert mine["metrics"] == theirs["metrics"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cache", "sharded.json", "single.json"]
