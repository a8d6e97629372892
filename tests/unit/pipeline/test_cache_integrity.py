"""The step cache never reuses a damaged entry, and several processes can share it.

Hashes are checked against an independent ``hashlib`` digest of the bytes; locks against real processes that
hold them, are killed, or race for the same step.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from adamergex.pipeline.cache import JOURNAL, MANIFEST, StepCache, step_key
from adamergex.pipeline.config import load_config
from adamergex.pipeline.runner import run_experiment


def _cache(root: Path, lines: list[str] | None = None) -> StepCache:
    return StepCache(root, report=(lines.append if lines is not None else None))


def _seal(cache: StepCache, step: str, inputs: dict, files: dict[str, bytes]) -> tuple[str, Path]:
    key = step_key(step, inputs)
    with cache.produce(step, key, inputs) as folder:
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
    return key, cache.path(step, key)


def test_manifest_records_sha256_of_every_file(tmp_path: Path) -> None:
    files = {"adapter/adapter_model.safetensors": os.urandom(4096), "result.json": b'{"a": 1}'}
    _, folder = _seal(_cache(tmp_path), "train", {"x": 1}, files)
    record = json.loads((folder / MANIFEST).read_text())
    assert record["files"] == {
        name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()
    }


def test_same_size_corruption_is_reported_removed_and_recomputed(tmp_path: Path) -> None:
    lines: list[str] = []
    cache = _cache(tmp_path, lines)
    data = bytearray(os.urandom(10_000))
    key, folder = _seal(cache, "train", {"x": 1}, {"adapter.bin": bytes(data)})
    data[5_000] ^= 0x01  # one flipped bit, size unchanged
    (folder / "adapter.bin").write_bytes(bytes(data))

    fresh = _cache(tmp_path, lines)  # a later run: nothing remembered
    assert fresh.lookup("train", key) is None
    assert len(lines) == 1 and "adapter.bin does not match its sha256" in lines[0] and "recomputing" in lines[0]
    assert not folder.exists()
    with fresh.claim("train", key) as found:
        assert found is None
        with fresh.produce("train", key, {"x": 1}) as out:
            (out / "adapter.bin").write_bytes(b"recomputed")
    assert (fresh.lookup("train", key) / "adapter.bin").read_bytes() == b"recomputed"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda f: (f / "extra.txt").write_text("stray"), "extra.txt was added after sealing"),
        (lambda f: (f / "a.bin").unlink(), "a.bin is missing"),
        (lambda f: (f / "a.bin").write_bytes(b"short"), "a.bin has 5 bytes, 100 when sealed"),
        (lambda f: (f / MANIFEST).write_text("{not json"), "manifest step.json is unreadable"),
    ],
)
def test_other_damage_is_detected(tmp_path: Path, damage, expected: str) -> None:
    lines: list[str] = []
    key, folder = _seal(_cache(tmp_path), "s", {"x": 1}, {"a.bin": b"\1" * 100})
    damage(folder)
    assert _cache(tmp_path, lines).lookup("s", key) is None
    assert expected in lines[0]


def test_entry_sealed_by_an_older_version_without_hashes_is_recomputed(tmp_path: Path) -> None:
    lines: list[str] = []
    key = step_key("s", {"x": 1})
    folder = _cache(tmp_path).path("s", key)
    folder.mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"old")
    (folder / MANIFEST).write_text(json.dumps({"step": "s", "key": key, "inputs": {}, "files": {"a.bin": 3}}))
    assert _cache(tmp_path, lines).lookup("s", key) is None
    assert "without content hashes" in lines[0]


def test_read_only_cache_reports_damage_but_keeps_the_folder(tmp_path: Path) -> None:
    lines: list[str] = []
    key, folder = _seal(_cache(tmp_path), "s", {"x": 1}, {"a.bin": b"\1" * 100})
    (folder / "a.bin").write_bytes(b"\2" * 100)
    assert StepCache(tmp_path, report=lines.append, read_only=True).lookup("s", key) is None
    assert folder.exists() and "a run will recompute it" in lines[0]


def test_verify_all_checks_every_entry_reachable_or_not(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    _, good = _seal(cache, "eval", {"x": 1}, {"result.json": b"{}"})
    _, bad = _seal(cache, "merge", {"x": 2}, {"adapter.bin": b"\0" * 64})
    (bad / "adapter.bin").write_bytes(b"\1" * 64)
    lines: list[str] = []
    checked, damaged = _cache(tmp_path, lines).verify_all()
    assert checked == 2 and len(damaged) == 1 and damaged[0].startswith(f"merge/{bad.name}:")
    assert good.exists() and not bad.exists()


def test_each_seal_is_journaled_once(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    keys = [_seal(cache, "s", {"x": i}, {"a": b"1"})[0] for i in range(3)]
    journal = [json.loads(line) for line in (tmp_path / JOURNAL).read_text().splitlines()]
    assert [entry["key"] for entry in journal] == keys and {entry["pid"] for entry in journal} == {os.getpid()}


def test_a_damaged_adapter_is_reported_and_retrained(experiment, tmp_path: Path) -> None:
    output = tmp_path / "run"
    config = load_config(experiment(output, methods=["eng-ft"]))
    run_experiment(config, progress=False)
    weights = next((output / "cache" / "task").glob("*/adapter/adapter_model.safetensors"))
    before = weights.read_bytes()
    damaged = bytearray(before)
    damaged[-1] ^= 0x01  # one bit of the last tensor value: same size, still a readable safetensors file
    weights.write_bytes(bytes(damaged))

    console = io.StringIO()
    pipeline, _, _ = run_experiment(config, progress=False, console=Console(file=console, width=200))
    assert [step for step in pipeline.log.executed if not step.startswith("eval:")] == ["task:multiemo/lora/en/seed0"]
    assert f"cache entry task/{weights.parents[1].name} is damaged" in console.getvalue()
    assert "adapter/adapter_model.safetensors does not match its sha256" in console.getvalue()
    assert weights.read_bytes() == before  # retrained, bit-identical


# -- locks held by other processes ------------------------------------------------------------------------------

_HOLDER = textwrap.dedent(
    """
    import sys, time
    from adamergex.pipeline.cache import StepCache
    cache = StepCache(sys.argv[1])
    with cache.produce("s", sys.argv[2], {}) as folder:
        (folder / "partial.bin").write_bytes(b"half")
        print("holding", flush=True)
        sys.stdin.readline()  # hold until told (or killed)
    """
)


def _start_holder(root: Path, key: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(root), key], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "holding"
    return process


def test_sweep_spares_a_live_producer_and_a_dead_ones_lock_is_broken(tmp_path: Path) -> None:
    key = step_key("s", {"x": 1})
    holder = _start_holder(tmp_path, key)
    try:
        temporary = list((tmp_path / "s").glob(".*.tmp-*"))
        assert len(temporary) == 1
        cache = _cache(tmp_path)
        assert cache.sweep() == 0 and temporary[0].exists()  # its owner is alive and holds the step lock
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert cache.sweep() == 1 and not temporary[0].exists()  # the kernel released the dead holder's lock
        with cache.claim("s", key) as found:  # not blocked by the dead process
            assert found is None
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_waiting_claim_sees_the_holders_result(tmp_path: Path) -> None:
    key = step_key("s", {"x": 1})
    holder = _start_holder(tmp_path, key)
    waiter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
            import sys
            from adamergex.pipeline.cache import StepCache
            cache = StepCache(sys.argv[1], report=lambda line: print("report:", line, flush=True))
            with cache.claim("s", sys.argv[2], "step s") as found:
                print("found", sorted(p.name for p in found.iterdir()) if found else None, flush=True)
            """
            ),
            str(tmp_path),
            key,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert waiter.stdout is not None
    first = waiter.stdout.readline()
    assert first.startswith("report: waiting for another run (pid ") and "step s" in first
    holder.communicate("go\n")
    out, _ = waiter.communicate()
    assert holder.returncode == 0 and waiter.returncode == 0
    assert out.strip() == "found ['partial.bin', 'step.json']"


def test_atomic_writer_respects_the_umask(tmp_path: Path) -> None:
    from adamergex.files import atomic_write_text

    previous = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        path = atomic_write_text(tmp_path / "b.txt", "x")
        assert path.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(previous)
