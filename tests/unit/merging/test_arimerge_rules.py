"""AriMerge for (IA)³ on deviations from identity, and the LoRA cross merge's distance from the additive rule."""

from __future__ import annotations

import pytest
import torch

from adamergex.adapters.io import read_adapter
from adamergex.adapters.types import LoraAdapter, LoraModule
from adamergex.merging.api import combine
from adamergex.merging.cross import cross_vs_additive
from adamergex.merging.ia3 import deviation_sum
from tiny_models import tiny_llama


def test_deviation_sum_hand_worked() -> None:
    task, target = torch.tensor([1.2, 0.8, 1.0]), torch.tensor([1.5, 1.0, 0.5])
    # l_T + t (l_Rt − 1) with t = 0.5: (1.2 + 0.25, 0.8 + 0, 1.0 − 0.25)
    assert torch.allclose(deviation_sum([task, target], [1.0, 0.5]), torch.tensor([1.45, 0.8, 0.75]))
    # identity adapters stay identity; the structure-blind plain sum would give 2
    ones = torch.ones(3)
    assert torch.equal(deviation_sum([ones, ones], [1.0, 1.0]), ones)
    with pytest.raises(ValueError, match="as many weights"):
        deviation_sum([ones], [1.0, 2.0])


def test_combine_ia3_deviation_rule_on_adapters(make_ia3) -> None:
    task, target = make_ia3("task", seed=1), make_ia3("target", seed=2)
    summary = combine([task, target], [1.0, 0.3], ia3_rule="deviation")
    read_task, read_target = read_adapter(task), read_adapter(target)
    for name, module in summary.adapter.modules.items():
        expected = read_task.modules[name].vector + 0.3 * (read_target.modules[name].vector - 1.0)
        torch.testing.assert_close(module.vector, expected)
    assert summary.mode == "deviation"


def test_cross_vs_additive_matches_the_dense_difference_and_vanishes_for_small_updates() -> None:
    torch.manual_seed(0)
    base = {"m": torch.randn(6, 5).double() + 3.0}  # |W₀| well away from 0

    def lora(scale: float, seed: int) -> LoraAdapter:
        generator = torch.Generator().manual_seed(seed)
        module = LoraModule(scale * torch.randn(2, 5, generator=generator), torch.randn(6, 2, generator=generator), 1.0)
        return LoraAdapter(config={"r": 2, "lora_alpha": 2}, modules={"m": module})

    t = 0.8
    for scale, bound in ((1e-1, None), (1e-4, 1e-3)):
        adapters = [lora(scale, s) for s in (1, 2, 3)]
        deltas = [a.modules["m"].delta_weight(torch.float64) for a in adapters]
        w0 = base["m"]
        cross = (w0 + deltas[0]) * (t * ((w0 + deltas[1]) / (w0 + deltas[2]) - 1) + 1) - w0
        additive = deltas[0] + t * (deltas[1] - deltas[2])
        expected = float((cross - additive).norm() / additive.norm())
        value = cross_vs_additive(adapters, base, t)["m"]
        assert value == pytest.approx(expected, rel=1e-9)
        if bound is not None:  # first-order agreement: the relative difference shrinks with ΔW / W₀
            assert value < bound


def test_cross_vs_additive_on_real_shapes(make_lora) -> None:
    adapters = [
        read_adapter(make_lora(n, seed=s, r=4, target_modules=["q_proj"]))
        for n, s in (("task", 1), ("target", 2), ("source", 3))
    ]
    base = {name: m.weight.detach() for name, m in tiny_llama().named_modules() if name.endswith("q_proj")}
    values = cross_vs_additive(adapters, base, 1.0)  # type: ignore[arg-type]
    assert set(values) == set(adapters[0].modules) and all(v > 0 for v in values.values())
