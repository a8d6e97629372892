"""vLLM compatibility of adapters: the verdict against an independent model of what vLLM loads, and the merge
outputs (concat, svd) checked to load in vLLM with the same ΔW as in PEFT.

The model of vLLM: a release reads ``r``, ``lora_alpha`` and ``use_rslora`` from the config and scales every
module's ``B A`` by that one scale; per-module ranks come from the tensors. PEFT's own ΔW (``PeftModel``,
``get_pattern_key``) is the reference the vLLM result must equal.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from peft.utils.other import get_pattern_key
from safetensors.torch import load_file

import adamergex
from adamergex.adapters.types import IA3Adapter, IA3Module, LoraAdapter, LoraModule
from adamergex.adapters.vllm import VLLM_MAX_LORA_RANKS, smallest_max_lora_rank, vllm_compatibility
from adamergex.cli import main
from adamergex.merging.combination import combine_lora
from tiny_models import tiny_llama

PREFIX = "base_model.model."
NAMES = ("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.mlp.down_proj")
SHAPE = (6, 5)  # (out, in) of every module in the in-memory adapters


def peft_deltas(folder: Path) -> dict[str, torch.Tensor]:
    """ΔW of every LoRA module as PEFT computes it after loading the folder onto the base model."""
    model = PeftModel.from_pretrained(tiny_llama(), folder)
    return {
        name.removeprefix(PREFIX): module.get_delta_weight("default").detach().double()
        for name, module in model.named_modules()
        if isinstance(module, LoraLayer) and "default" in module.lora_A
    }


def vllm_release_deltas(folder: Path) -> dict[str, torch.Tensor]:
    """ΔW as a vLLM release computes it: one config-wide scale times each module's ``B A``."""
    config = json.loads((folder / "adapter_config.json").read_text())
    rank = config["r"]
    scale = config["lora_alpha"] / (math.sqrt(rank) if config.get("use_rslora") else rank)
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    deltas = {}
    for key, lora_A in tensors.items():
        if key.endswith(".lora_A.weight"):
            name = key.removeprefix(PREFIX).removesuffix(".lora_A.weight")
            lora_B = tensors[key.replace(".lora_A.", ".lora_B.")]
            deltas[name] = scale * (lora_B.double() @ lora_A.double())
    return deltas


def same_deltas(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(
        torch.allclose(first[name], second[name], rtol=1e-5, atol=1e-6) for name in first
    )


def inspect_json(folder: Path) -> dict:
    result = CliRunner().invoke(main, ["inspect", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["vllm"]


@pytest.mark.parametrize("mode", ["svd", "concat"])
def test_merged_outputs_load_in_vllm_with_peft_delta_weights(make_lora, tmp_path: Path, mode: str) -> None:
    """Inputs with mixed ranks, rsLoRA and rank/alpha patterns, which vLLM releases would load wrongly, give
    merged outputs that vLLM loads with exactly PEFT's ΔW."""
    task = make_lora("task", seed=1, r=4, alpha=8)
    target = make_lora("target", seed=2, r=16, alpha=4, use_rslora=True)
    source = make_lora(
        "source", seed=3, r=8, alpha=32, rank_pattern={"layers.1.self_attn.q_proj": 2}, alpha_pattern={"up_proj": 5}
    )
    assert not same_deltas(vllm_release_deltas(source), peft_deltas(source))
    assert inspect_json(source)["compatible"] is False
    options = {"mode": mode, "rank": 5} if mode == "svd" else {"mode": mode}
    out = tmp_path / "merged"
    adamergex.merge(task, target, source, t=0.7, out=out, **options)
    report = inspect_json(out)
    assert report["compatible"] is True and report["problems"] == []
    # svd: rank 5 everywhere (→ 8); concat: 4 + 16 + 8 = 28 (→ 32), with layer 1's q_proj at 4 + 16 + 2.
    assert (report["largest_rank"], report["max_lora_rank"]) == ((5, 8) if mode == "svd" else (28, 32))
    config = json.loads((out / "adapter_config.json").read_text())
    assert bool(config["rank_pattern"]) is (mode == "concat")
    assert same_deltas(vllm_release_deltas(out), peft_deltas(out))


def test_ia3_and_module_copies_are_refused_with_a_reason(make_ia3, make_lora) -> None:
    ia3 = inspect_json(make_ia3("ia3", seed=1))
    assert ia3["compatible"] is False and ia3["max_lora_rank"] is None
    assert "LoRA adapters only" in ia3["problems"][0] and "fold" in ia3["problems"][0]
    with_copies = inspect_json(make_lora("copies", seed=1, r=8, modules_to_save=["lm_head"]))
    assert with_copies["compatible"] is False
    assert any("modules_to_save" in problem for problem in with_copies["problems"])
    plain = make_lora("plain", seed=1, r=8)
    assert inspect_json(plain) == {
        "compatible": True,
        "largest_rank": 8,
        "max_lora_rank": 8,
        "problems": [],
        "notes": [],
    }
    result = CliRunner().invoke(main, ["inspect", str(plain)])
    assert "vLLM: compatible; serve with --max-lora-rank 8 or more" in result.output


def test_smallest_max_lora_rank() -> None:
    assert [smallest_max_lora_rank(rank) for rank in (1, 2, 8, 9, 300, 321, 512, 513)] == [
        1,
        8,
        8,
        16,
        320,
        512,
        512,
        None,
    ]


def _adapter(config: dict, ranks: dict[str, int], seed: int = 0) -> LoraAdapter:
    """An in-memory LoRA with the given rank per module and PEFT's scale, resolved by PEFT's own pattern rule."""
    modules = {}
    for index, name in enumerate(NAMES):
        rank_key = get_pattern_key(list(config["rank_pattern"]), name)
        alpha_key = get_pattern_key(list(config["alpha_pattern"]), name)
        alpha = config["alpha_pattern"].get(alpha_key, config["lora_alpha"])
        rank = config["rank_pattern"].get(rank_key, config["r"])
        assert rank == ranks[name]
        scale = alpha / (math.sqrt(rank) if config["use_rslora"] else rank)
        generator = torch.Generator().manual_seed(seed + index)
        lora_A = torch.randn(rank, SHAPE[1], generator=generator)
        lora_B = torch.randn(SHAPE[0], rank, generator=generator)
        modules[name] = LoraModule(lora_A, lora_B, scale)
    return LoraAdapter(config=config, modules=modules)


_patterns = st.dictionaries(st.sampled_from(["q_proj", "v_proj", "layers.1.mlp.down_proj"]), st.integers(1, 600))


@settings(max_examples=60, deadline=None)
@given(
    rank=st.integers(1, 600),
    alpha=st.sampled_from([1.0, 4.0, 8.0, 16.0, 33.0]),
    use_rslora=st.booleans(),
    rank_pattern=_patterns,
    alpha_pattern=st.dictionaries(st.sampled_from(["q_proj", "down_proj"]), st.sampled_from([1.0, 8.0, 16.0])),
)
def test_verdict_matches_what_vllm_releases_load(rank, alpha, use_rslora, rank_pattern, alpha_pattern) -> None:
    """Compatible exactly when every module's PEFT scale equals the config-wide scale and the largest rank fits
    vLLM's largest max_lora_rank; the max_lora_rank is the smallest allowed value covering every rank."""
    config = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": alpha,
        "use_rslora": use_rslora,
        "rank_pattern": rank_pattern,
        "alpha_pattern": alpha_pattern,
    }
    ranks = {name: config["rank_pattern"].get(get_pattern_key(list(rank_pattern), name), rank) for name in NAMES}
    adapter = _adapter(config, ranks)
    report = vllm_compatibility(adapter)
    uniform = alpha / (math.sqrt(rank) if use_rslora else rank)
    same_scale = all(math.isclose(module.scale, uniform, rel_tol=1e-6) for module in adapter.modules.values())
    largest = max([rank, *rank_pattern.values()])
    assert report.largest_rank == largest
    assert report.compatible is (same_scale and largest <= 512)
    fitting = [allowed for allowed in VLLM_MAX_LORA_RANKS if allowed >= largest]
    assert report.max_lora_rank == (min(fitting) if fitting else None)
    assert any("scale other than" in problem for problem in report.problems) is (not same_scale)


@settings(max_examples=40, deadline=None)
@given(
    ranks=st.lists(st.integers(1, 12), min_size=3, max_size=3),
    scales=st.lists(st.floats(0.1, 4.0), min_size=3, max_size=3),
    t=st.floats(-2.0, 2.0),
    mode=st.sampled_from(["svd", "concat"]),
    k=st.integers(1, 40),
)
def test_every_svd_and_concat_merge_is_vllm_compatible(ranks, scales, t, mode, k) -> None:
    """Whatever the input ranks and scales: the output has scale 1 in every module under the config-wide
    lora_alpha / r, so vLLM loads it as PEFT does; svd outputs never exceed rank k."""
    adapters = []
    for index, (rank, scale) in enumerate(zip(ranks, scales, strict=True)):
        config = {"peft_type": "LORA", "r": rank, "lora_alpha": scale * rank, "rank_pattern": {}, "alpha_pattern": {}}
        config["use_rslora"] = False
        adapters.append(_adapter(config, dict.fromkeys(NAMES, rank), seed=10 * index))
    combined = combine_lora(adapters, [1.0, t, -t], ["task", "target", "source"], mode=mode, rank=k).adapter
    report = vllm_compatibility(combined)
    assert report.compatible, report.problems
    largest = max(module.rank for module in combined.modules.values())
    assert report.largest_rank == largest and largest <= (k if mode == "svd" else sum(ranks))
    config = combined.config
    uniform = config["lora_alpha"] / config["r"]
    assert not config["use_rslora"]
    for module in combined.modules.values():
        assert module.scale == 1.0 and uniform == 1.0


def test_ia3_in_memory_and_non_lora_tensors() -> None:
    ia3 = IA3Adapter(config={"peft_type": "IA3"}, modules={NAMES[0]: IA3Module(torch.ones(6, 1), False)})
    assert vllm_compatibility(ia3).compatible is False
    config = {"peft_type": "LORA", "r": 4, "lora_alpha": 4, "rank_pattern": {}, "alpha_pattern": {}}
    config["use_rslora"] = False
    adapter = _adapter(config, dict.fromkeys(NAMES, 4))
    adapter.extra_tensors["base_model.model.model.embed_tokens.base_layer.weight"] = torch.ones(9, 6)
    report = vllm_compatibility(adapter)
    assert report.compatible is True and "skips the saved base embedding weights" in report.notes[0]
    adapter.extra_tensors["base_model.model.model.norm.weight"] = torch.ones(6)
    report = vllm_compatibility(adapter)
    assert report.compatible is False and "not LoRA factors" in report.problems[0]
