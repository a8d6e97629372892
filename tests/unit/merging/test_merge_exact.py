"""Merged LoRA folders against ΔW computed by PEFT itself from each input (an independent computation)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer

import adamergex
from adamergex.adapters.io import read_adapter
from tiny_models import tiny_llama

PREFIX = "base_model.model."


def peft_delta_weights(folder: Path) -> dict[str, torch.Tensor]:
    """ΔW of every LoRA module as PEFT computes it after loading the folder onto the base model."""
    model = PeftModel.from_pretrained(tiny_llama(), folder)
    deltas = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and "default" in module.lora_A:
            deltas[name.removeprefix(PREFIX)] = module.get_delta_weight("default").detach().double()
    return deltas


def expected_delta(task: Path, target: Path, source: Path, t: float) -> dict[str, torch.Tensor]:
    parts = [(1.0, peft_delta_weights(task)), (t, peft_delta_weights(target)), (-t, peft_delta_weights(source))]
    names = set().union(*(d for _, d in parts))
    return {n: sum(w * d[n] for w, d in parts if n in d) for n in names}


def assert_deltas_equal(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(actual) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=2e-5, atol=2e-5, msg=name)


@pytest.mark.parametrize("t", [1.0, 0.37, -0.8, 0.0])
def test_concat_is_exact_for_mixed_ranks_alphas_rslora_and_patterns(make_lora, tmp_path, t) -> None:
    task = make_lora("task", seed=1, r=4, alpha=8)
    target = make_lora("target", seed=2, r=16, alpha=4, use_rslora=True)
    source = make_lora(
        "source",
        seed=3,
        r=8,
        alpha=32,
        rank_pattern={"layers.1.self_attn.q_proj": 2, "down_proj": 6},
        alpha_pattern={"up_proj": 5},
    )
    summary = adamergex.merge(task, target, source, t=t, out=tmp_path / "merged")
    assert_deltas_equal(peft_delta_weights(tmp_path / "merged"), expected_delta(task, target, source, t))
    ranks = {m.name: m.output_rank for m in summary.modules}
    expected_rank = 4 if t == 0 else 4 + 16 + 8
    assert ranks["model.layers.0.self_attn.q_proj"] == expected_rank
    assert ranks["model.layers.1.self_attn.q_proj"] == (4 if t == 0 else 4 + 16 + 2)


def test_concat_with_different_target_module_sets(make_lora, tmp_path) -> None:
    task = make_lora("task", seed=1, r=4, target_modules=["q_proj", "v_proj", "down_proj"])
    target = make_lora("target", seed=2, r=8, target_modules=["q_proj", "k_proj"])
    source = make_lora("source", seed=3, r=8, target_modules=["q_proj", "gate_proj"])
    summary = adamergex.merge(task, target, source, t=0.6, out=tmp_path / "merged")
    assert_deltas_equal(peft_delta_weights(tmp_path / "merged"), expected_delta(task, target, source, 0.6))
    assert "model.layers.0.self_attn.k_proj" in summary.missing["task"]
    assert "model.layers.0.mlp.down_proj" in summary.missing["reference_target"]


def test_svd_at_full_rank_equals_concat(make_lora, tmp_path) -> None:
    task = make_lora("task", seed=1, r=4)
    target = make_lora("target", seed=2, r=8, alpha=8)
    source = make_lora("source", seed=3, r=2, alpha=4)
    adamergex.merge(task, target, source, t=0.5, out=tmp_path / "concat")
    summary = adamergex.merge(task, target, source, t=0.5, out=tmp_path / "svd", mode="svd", rank=14)
    assert_deltas_equal(peft_delta_weights(tmp_path / "svd"), peft_delta_weights(tmp_path / "concat"))
    assert summary.min_kept_energy == pytest.approx(1.0)


def test_svd_truncated_equals_dense_truncated_svd(make_lora, tmp_path) -> None:
    task, target, source = (make_lora(n, seed=s, r=8) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    summary = adamergex.merge(task, target, source, t=1.0, out=tmp_path / "svd", mode="svd")  # default rank: 8
    merged = peft_delta_weights(tmp_path / "svd")
    expected = expected_delta(task, target, source, 1.0)
    kept = {m.name: m.kept_energy for m in summary.modules}
    for name, dense in expected.items():
        u, s, vh = torch.linalg.svd(dense, full_matrices=False)
        k = min(8, *dense.shape)
        torch.testing.assert_close(merged[name], (u[:, :k] * s[:k]) @ vh[:k], rtol=1e-4, atol=1e-4, msg=name)
        assert kept[name] == pytest.approx(float(s[:k].pow(2).sum() / s.pow(2).sum()), rel=1e-4)
    assert all(m.output_rank == 8 for m in summary.modules)


def test_factor_mode_reproduces_the_released_rule(make_lora, tmp_path) -> None:
    task, target, source = (make_lora(n, seed=s, r=4) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    adamergex.merge(task, target, source, t=0.5, out=tmp_path / "factor", mode="factor")
    merged = read_adapter(tmp_path / "factor")
    inputs = [read_adapter(p) for p in (task, target, source)]
    name = "model.layers.0.mlp.up_proj"
    a = sum(w * x.modules[name].lora_A for w, x in zip((1.0, 0.5, -0.5), inputs, strict=True))
    b = sum(w * x.modules[name].lora_B for w, x in zip((1.0, 0.5, -0.5), inputs, strict=True))
    torch.testing.assert_close(merged.modules[name].lora_A, a)
    torch.testing.assert_close(merged.modules[name].lora_B, b)
    assert merged.config["r"] == 4 and merged.config["lora_alpha"] == 16


def test_t_zero_gives_back_the_task_adapter(make_lora, tmp_path) -> None:
    task, target, source = (make_lora(n, seed=s, r=4) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    adamergex.merge(task, target, source, t=0.0, out=tmp_path / "merged")
    assert_deltas_equal(peft_delta_weights(tmp_path / "merged"), peft_delta_weights(task))


def test_combine_is_exact_weighted_sum(make_lora, tmp_path) -> None:
    task = make_lora("task", seed=1, r=4)
    target = make_lora("target", seed=2, r=8, target_modules=["q_proj", "o_proj"])
    summary = adamergex.combine([task, target], [1.0, 1.0], out=tmp_path / "arimerge")
    deltas_t, deltas_r = peft_delta_weights(task), peft_delta_weights(target)
    expected = {n: d + deltas_r.get(n, 0) for n, d in deltas_t.items()}
    assert_deltas_equal(peft_delta_weights(tmp_path / "arimerge"), expected)
    assert summary.t is None and summary.weights == [1.0, 1.0]


def test_in_memory_merge_writes_nothing(make_lora, tmp_path) -> None:
    task, target, source = (make_lora(n, seed=s, r=4) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    before = set(tmp_path.iterdir())
    summary = adamergex.merge(task, target, source, t=1.0, dtype="bfloat16")
    assert summary.out is None and set(tmp_path.iterdir()) == before
    assert summary.adapter.dtype == torch.bfloat16
