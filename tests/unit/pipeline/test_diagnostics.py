"""The language-gap diagnostic against dense ΔW."""

from __future__ import annotations

import pytest
import torch

from adamergex.adapters.types import LoraAdapter, LoraModule
from adamergex.merging.lora import lowrank_inner
from adamergex.pipeline.diagnostics import language_gap_alignment, summarize


def _adapter(seed: int, rank: int, scale: float, names: list[str]) -> LoraAdapter:
    generator = torch.Generator().manual_seed(seed)
    modules = {
        n: LoraModule(torch.randn(rank, 6, generator=generator), torch.randn(5, rank, generator=generator), scale)
        for n in names
    }
    return LoraAdapter(config={"r": rank, "lora_alpha": rank * scale}, modules=modules)


def test_cosine_and_ratio_match_dense() -> None:
    names = ["a", "b"]
    ts, tt, rt, rs = (
        _adapter(1, 4, 2.0, names),
        _adapter(2, 8, 0.5, names),
        _adapter(3, 2, 1.0, names),
        _adapter(4, 4, 3.0, ["a"]),
    )
    result = {d.name: d for d in language_gap_alignment(ts, tt, rt, rs)}
    for name in names:
        task_gap = tt.modules[name].delta_weight(torch.float64) - ts.modules[name].delta_weight(torch.float64)
        ref_gap = rt.modules[name].delta_weight(torch.float64)
        if name in rs.modules:
            ref_gap = ref_gap - rs.modules[name].delta_weight(torch.float64)
        cosine = float((task_gap * ref_gap).sum() / (task_gap.norm() * ref_gap.norm()))
        assert result[name].cosine == pytest.approx(cosine, rel=1e-9)
        assert result[name].norm_ratio == pytest.approx(float(ref_gap.norm() / task_gap.norm()), rel=1e-9)
    assert summarize(list(result.values()))["modules"] == 2


def test_identical_gaps_give_cosine_one() -> None:
    ts, tt = _adapter(1, 4, 1.0, ["a"]), _adapter(2, 4, 1.0, ["a"])
    result = language_gap_alignment(ts, tt, tt, ts)
    assert result[0].cosine == pytest.approx(1.0) and result[0].norm_ratio == pytest.approx(1.0)


def test_lowrank_inner_matches_dense() -> None:
    a1, b1, a2, b2 = torch.randn(3, 7), torch.randn(4, 3), torch.randn(5, 7), torch.randn(4, 5)
    assert lowrank_inner(a1, b1, a2, b2) == pytest.approx(
        float(((b1 @ a1).double() * (b2 @ a2).double()).sum()), rel=1e-5
    )
