"""The language-gap diagnostic against dense ΔW."""

from __future__ import annotations

import pytest
import torch

from adamergex.adapters.types import IA3Adapter, IA3Module, LoraAdapter, LoraModule
from adamergex.errors import AdamergexError
from adamergex.pipeline.diagnostics import gap_alignment, language_gap_alignment, random_cosine_rms, summarize
from adamergex.tensors import lowrank_inner


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


@pytest.mark.parametrize(("rank_x", "rank_y"), [(1, 1), (2, 8), (6, 6)])
def test_random_direction_null_by_simulation(rank_x: int, rank_y: int) -> None:
    """E[cos²] = 1/(out·in) for independent random low-rank directions, whatever their ranks: 4,000 pairs of
    B·A with Gaussian factors (out = 5, in = 6) give a mean cos² within 10% of 1/30 and a mean cos near 0."""
    generator = torch.Generator().manual_seed(7)
    out, inp, draws = 5, 6, 4000
    x = torch.randn(draws, out, rank_x, generator=generator, dtype=torch.float64) @ torch.randn(
        draws, rank_x, inp, generator=generator, dtype=torch.float64
    )
    y = torch.randn(draws, out, rank_y, generator=generator, dtype=torch.float64) @ torch.randn(
        draws, rank_y, inp, generator=generator, dtype=torch.float64
    )
    cos = (x * y).sum(dim=(1, 2)) / (x.flatten(1).norm(dim=1) * y.flatten(1).norm(dim=1))
    expected = random_cosine_rms(out * inp) ** 2
    assert float(cos.pow(2).mean()) == pytest.approx(expected, rel=0.1)
    assert abs(float(cos.mean())) < 4 * random_cosine_rms(out * inp) / draws**0.5


def test_summary_carries_the_null_of_the_mean() -> None:
    names = ["a", "b"]
    ts, tt, rt, rs = (_adapter(s, 4, 1.0, names) for s in (1, 2, 3, 4))
    summary = summarize(language_gap_alignment(ts, tt, rt, rs))
    # two modules of 5 × 6: sd of the mean cosine = sqrt(2 / 30) / 2
    assert summary["null_sd_of_mean"] == pytest.approx((2 / 30) ** 0.5 / 2)


def test_ia3_gap_alignment_on_log_scales() -> None:
    def ia3(vectors: dict[str, list[float]]) -> IA3Adapter:
        return IA3Adapter(
            config={}, modules={n: IA3Module(torch.tensor(v)[:, None], False) for n, v in vectors.items()}
        )

    ts, tt = ia3({"m": [1.0, 1.0, 1.0]}), ia3({"m": [2.0, 1.0, 0.5]})
    rs, rt = ia3({"m": [1.0, 2.0, 1.0]}), ia3({"m": [4.0, 2.0, 1.0]})
    (result,) = gap_alignment(ts, tt, rt, rs)
    task_gap = torch.tensor([2.0, 1.0, 0.5]).log()
    ref_gap = torch.tensor([4.0, 1.0, 1.0]).log()
    expected = float(task_gap @ ref_gap / (task_gap.norm() * ref_gap.norm()))  # (log 2)(2 log 2) / …
    assert result.cosine == pytest.approx(expected) and result.size == 3
    assert result.norm_ratio == pytest.approx(float(ref_gap.norm() / task_gap.norm()))


def test_gap_stability_is_the_same_cosine_across_seeds() -> None:
    rs1, rt1 = _adapter(1, 4, 1.0, ["a"]), _adapter(2, 4, 1.0, ["a"])
    # the same pair again: the reference gap is perfectly stable
    assert gap_alignment(rs1, rt1, rt1, rs1)[0].cosine == pytest.approx(1.0)
    with pytest.raises(AdamergexError, match="one kind"):
        gap_alignment(rs1, rt1, rt1, IA3Adapter(config={}, modules={}))


def _wide_adapter(seed: int, rank: int) -> LoraAdapter:
    """Modules of realistic width, whose Gram products a multi-threaded matrix product would split."""
    generator = torch.Generator().manual_seed(seed)
    modules = {
        f"m{i}": LoraModule(
            torch.randn(rank, 640, generator=generator), torch.randn(2048, rank, generator=generator), 2.0
        )
        for i in range(3)
    }
    return LoraAdapter(config={"r": rank, "lora_alpha": 2 * rank}, modules=modules)


def test_the_diagnostic_does_not_depend_on_the_thread_setting() -> None:
    adapters = [_wide_adapter(seed, 8) for seed in range(4)]
    previous = torch.get_num_threads()
    summaries = []
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            summaries.append(summarize(gap_alignment(*adapters)))
            assert torch.get_num_threads() == threads  # the caller's setting is left as it was
    finally:
        torch.set_num_threads(previous)
    assert summaries[0] == summaries[1] == summaries[2]  # bit for bit
