"""The LoRA cross ablation against the dense formula on a real base model's weights."""

from __future__ import annotations

import torch

from adamergex.adapters.io import read_adapter
from adamergex.merging.cross import multiplicative_lora_cross
from tiny_models import tiny_llama


def test_cross_equals_dense_multiplicative_formula_at_full_rank(make_lora) -> None:
    adapters = [
        read_adapter(make_lora(n, seed=s, r=4, target_modules=["q_proj", "down_proj"]))
        for n, s in (("task", 1), ("target", 2), ("source", 3))
    ]
    model = tiny_llama()
    base = {name: module.weight.detach() for name, module in model.named_modules() if hasattr(module, "weight")}
    t = 0.7
    result = multiplicative_lora_cross(adapters, base, t, rank=64)
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj"):
        w0 = base[name].double()
        w_t, w_rt, w_rs = (w0 + a.modules[name].delta_weight(torch.float64) for a in adapters)
        expected = w_t * (t * (w_rt / w_rs - 1) + 1) - w0
        merged = result.adapter.modules[name]
        torch.testing.assert_close(merged.delta_weight(torch.float64), expected, rtol=1e-4, atol=1e-4)
