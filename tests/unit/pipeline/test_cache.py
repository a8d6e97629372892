"""The step cache: keys, atomic sealing, and never reusing a damaged entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from adamergex.pipeline.cache import StepCache, step_key


def test_key_depends_on_every_input_and_not_on_order() -> None:
    assert step_key("train", {"a": 1, "b": [1, 2]}) == step_key("train", {"b": [1, 2], "a": 1})
    assert step_key("train", {"a": 1}) != step_key("train", {"a": 2})
    assert step_key("train", {"a": 1}) != step_key("eval", {"a": 1})


def test_produce_then_lookup(tmp_path: Path) -> None:
    cache = StepCache(tmp_path)
    key = step_key("s", {"x": 1})
    assert cache.lookup("s", key) is None
    with cache.produce("s", key, {"x": 1}) as folder:
        (folder / "out.txt").write_text("done")
    found = cache.lookup("s", key)
    assert found is not None and (found / "out.txt").read_text() == "done"


def test_killed_step_leaves_no_entry_and_is_swept(tmp_path: Path) -> None:
    cache = StepCache(tmp_path)
    key = step_key("s", {"x": 1})
    with pytest.raises(KeyboardInterrupt), cache.produce("s", key, {}) as folder:
        (folder / "half.bin").write_bytes(b"\0" * 10)
        raise KeyboardInterrupt
    assert cache.lookup("s", key) is None
    assert not list((tmp_path / "s").iterdir())


def test_damaged_entry_is_not_reused(tmp_path: Path) -> None:
    cache = StepCache(tmp_path)
    key = step_key("s", {"x": 1})
    with cache.produce("s", key, {}) as folder:
        (folder / "weights.bin").write_bytes(b"\1" * 100)
    (cache.path("s", key) / "weights.bin").write_bytes(b"\1" * 50)  # truncated after the fact
    assert cache.lookup("s", key) is None
    assert not cache.path("s", key).exists()


def test_sweep_removes_leftovers(tmp_path: Path) -> None:
    cache = StepCache(tmp_path)
    (tmp_path / "s" / ".abc.tmp-1234").mkdir(parents=True)
    assert cache.sweep() == 1
