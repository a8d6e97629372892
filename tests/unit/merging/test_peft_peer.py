"""Merged folders load in PEFT and give the logits of independent constructions of the same model."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file

import adamergex
from tiny_models import tiny_llama

INPUT_IDS = torch.tensor([[1, 5, 9, 33, 2, 17, 60, 4], [3, 3, 41, 8, 12, 0, 7, 63]])


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=INPUT_IDS).logits.double()


@pytest.mark.parametrize("t", [1.0, -0.4])
def test_lora_logits_equal_peft_cat_and_dense_delta(make_lora, tmp_path: Path, t: float) -> None:
    task = make_lora("task", seed=1, r=4, alpha=8)
    target = make_lora("target", seed=2, r=8, alpha=16, use_rslora=True)
    source = make_lora("source", seed=3, r=16, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"])
    adamergex.merge(task, target, source, t=t, out=tmp_path / "merged")

    ours = logits(PeftModel.from_pretrained(tiny_llama(), tmp_path / "merged"))

    # Peer: PEFT's own exact combination of the same three adapters.
    peer = PeftModel.from_pretrained(tiny_llama(), task, adapter_name="task")
    peer.load_adapter(target, adapter_name="target")
    peer.load_adapter(source, adapter_name="source")
    peer.add_weighted_adapter(["task", "target", "source"], [1.0, t, -t], "merged", combination_type="cat")
    peer.set_adapter("merged")
    torch.testing.assert_close(ours, logits(peer), rtol=1e-4, atol=1e-4)

    # Independent: the base model with ΔW_T + t(ΔW_Rt − ΔW_Rs) added to its weights densely.
    dense = tiny_llama()
    weights = dict(dense.named_modules())
    for adapter_name, weight in (("task", 1.0), ("target", t), ("source", -t)):
        for name, module in peer.named_modules():
            if isinstance(module, LoraLayer) and adapter_name in module.lora_A:
                with torch.no_grad():
                    weights[name.removeprefix("base_model.model.")].weight += weight * module.get_delta_weight(
                        adapter_name
                    )
    torch.testing.assert_close(ours, logits(dense), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(ours, logits(tiny_llama()), atol=1e-3)  # the adapter does change the model


@pytest.mark.parametrize("t", [1.0, 0.5, -0.3])
def test_ia3_logits_equal_vectors_set_by_hand(make_ia3, tmp_path: Path, t: float) -> None:
    task = make_ia3("task", seed=1)
    target = make_ia3("target", seed=2)
    source = make_ia3("source", seed=3, target_modules=["k_proj", "down_proj"])  # no v_proj: l = 1 there
    adamergex.merge(task, target, source, t=t, out=tmp_path / "merged")
    ours = logits(PeftModel.from_pretrained(tiny_llama(), tmp_path / "merged"))

    raw = {
        name: load_file(str(p / "adapter_model.safetensors"))
        for name, p in (("T", task), ("Rt", target), ("Rs", source))
    }
    by_hand = PeftModel.from_pretrained(tiny_llama(), task)
    with torch.no_grad():
        for name, parameter in by_hand.named_parameters():
            if "ia3_l" not in name:
                continue
            key = name.replace(".default", "")
            l_t, l_rt = raw["T"][key], raw["Rt"][key]
            l_rs = raw["Rs"].get(key, torch.ones_like(l_t))
            parameter.copy_(l_t * (t * (l_rt / l_rs - 1) + 1))
    torch.testing.assert_close(ours, logits(by_hand), rtol=1e-5, atol=1e-5)


def test_ia3_t_zero_returns_task(make_ia3, tmp_path: Path) -> None:
    task, target, source = (make_ia3(n, seed=s) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    adamergex.merge(task, target, source, t=0.0, out=tmp_path / "merged")
    merged = load_file(str(tmp_path / "merged" / "adapter_model.safetensors"))
    original = load_file(str(task / "adapter_model.safetensors"))
    assert merged.keys() == original.keys()
    for key in original:
        assert torch.equal(merged[key], original[key])


def test_ia3_additive_cross_ablation(make_ia3, tmp_path: Path) -> None:
    task, target, source = (make_ia3(n, seed=s) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    adamergex.merge(task, target, source, t=0.5, out=tmp_path / "cross", mode="additive")
    merged = load_file(str(tmp_path / "cross" / "adapter_model.safetensors"))
    raw = [load_file(str(p / "adapter_model.safetensors")) for p in (task, target, source)]
    for key, value in merged.items():
        torch.testing.assert_close(value, raw[0][key] + 0.5 * (raw[1][key] - raw[2][key]))


def test_transformers_load_adapter_accepts_output(make_lora, tmp_path: Path) -> None:
    task, target, source = (make_lora(n, seed=s, r=4) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    adamergex.merge(task, target, source, t=1.0, out=tmp_path / "merged", mode="svd", rank=6)
    model = tiny_llama()
    model.load_adapter(str(tmp_path / "merged"))
    via_peft = PeftModel.from_pretrained(tiny_llama(), tmp_path / "merged")
    torch.testing.assert_close(logits(model), logits(via_peft))


def test_merged_lora_round_trips_through_peft_save(make_lora, tmp_path: Path) -> None:
    task, target, source = (make_lora(n, seed=s, r=4) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    adamergex.merge(task, target, source, t=1.0, out=tmp_path / "merged")
    model = PeftModel.from_pretrained(tiny_llama(), tmp_path / "merged")
    model.save_pretrained(tmp_path / "resaved")
    again = PeftModel.from_pretrained(tiny_llama(), tmp_path / "resaved")
    torch.testing.assert_close(logits(model), logits(copy.deepcopy(again)))
