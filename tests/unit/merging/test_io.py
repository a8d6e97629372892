"""Adapter I/O: atomic folders, .bin reading, provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adamergex.adapters.io import adapter_fingerprint, read_adapter
from adamergex.errors import OutputExistsError
from adamergex.files import atomic_directory
from adamergex.provenance import read_provenance, write_provenance


def test_atomic_directory_leaves_nothing_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "result"
    with pytest.raises(RuntimeError), atomic_directory(out) as tmp:
        (tmp / "half.txt").write_text("partial")
        raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_keeps_old_content_until_complete(tmp_path: Path) -> None:
    out = tmp_path / "result"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(OutputExistsError), atomic_directory(out):
        pass
    with pytest.raises(RuntimeError), atomic_directory(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
        raise RuntimeError
    assert (out / "old.txt").read_text() == "old"
    with atomic_directory(out, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]
    assert [p.name for p in out.iterdir()] == ["new.txt"]


def test_reads_adapter_model_bin(make_lora, tmp_path: Path) -> None:
    folder = make_lora("lora", seed=1, r=4)
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    torch.save(tensors, folder / "adapter_model.bin")
    (folder / "adapter_model.safetensors").unlink()
    adapter = read_adapter(folder)
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    assert torch.equal(adapter.modules["model.layers.0.self_attn.q_proj"].lora_A, tensors[key])
    assert adapter.modules["model.layers.0.self_attn.q_proj"].scale == 16 / 4


def test_rank_and_alpha_patterns_resolve_like_peft(make_lora) -> None:
    folder = make_lora(
        "lora", seed=1, r=8, alpha=16, rank_pattern={"layers.1.self_attn.q_proj": 2}, alpha_pattern={"q_proj": 3}
    )
    adapter = read_adapter(folder)
    assert adapter.modules["model.layers.1.self_attn.q_proj"].rank == 2
    assert adapter.modules["model.layers.1.self_attn.q_proj"].scale == 3 / 2
    assert adapter.modules["model.layers.0.self_attn.q_proj"].scale == 3 / 8
    assert adapter.modules["model.layers.0.self_attn.k_proj"].scale == 16 / 8


def test_provenance_and_fingerprint(make_lora, tmp_path: Path) -> None:
    folder = make_lora("lora", seed=1, r=4)
    before = adapter_fingerprint(folder)
    write_provenance(folder, {"tool": "test", "t": 0.5})
    assert adapter_fingerprint(folder) == before  # the sidecar is not part of the adapter's identity
    record = read_provenance(folder)
    assert record["t"] == 0.5 and record["versions"]["torch"] == torch.__version__
    assert record["versions"]["peft"] and record["created"].endswith("+00:00")
    assert read_provenance(tmp_path) is None
    other = make_lora("other", seed=2, r=4)
    assert adapter_fingerprint(other) != before
