"""The random-direction control: per module the true gap's norm and rank (dense, float64, computed here and by
PEFT), deterministic per seed, nearly orthogonal to the gap, and PEFT folders that the merge applies as is."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file

import adamergex
from adamergex.adapters import IA3Adapter, IA3Module, LoraAdapter, LoraModule, read_adapter, write_adapter
from adamergex.adapters.io import adapter_fingerprint
from adamergex.errors import NumericalError
from adamergex.merging.controls import (
    log_scale_for_ratio_norm,
    random_direction_reference,
    random_log_ratio,
    write_random_direction,
)
from adamergex.provenance import read_provenance
from tiny_models import tiny_llama

PREFIX = "base_model.model."


def peft_deltas(folder: Path) -> dict[str, torch.Tensor]:
    """ΔW of every LoRA module as PEFT computes it, in float64, keyed by the base model's module name."""
    model = PeftModel.from_pretrained(tiny_llama(), folder)
    return {
        name.removeprefix(PREFIX): module.get_delta_weight("default").double()
        for name, module in model.named_modules()
        if isinstance(module, LoraLayer) and "default" in module.lora_A
    }


def dense_gap(target: dict[str, torch.Tensor], source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """ΔW_Rt − ΔW_Rs per module, ΔW = 0 where an adapter lacks the module."""
    gap = {name: delta.clone() for name, delta in target.items()}
    for name, delta in source.items():
        gap[name] = gap[name] - delta if name in gap else -delta
    return gap


def factor_deltas(folder: Path, scale: float) -> dict[str, torch.Tensor]:
    """``scale · B A`` of every module in float64, from the raw tensors of a folder."""
    raw = load_file(str(folder / "adapter_model.safetensors"))
    names = [key.removeprefix(PREFIX).removesuffix(".lora_A.weight") for key in raw if key.endswith(".lora_A.weight")]
    return {
        n: scale * raw[f"{PREFIX}{n}.lora_B.weight"].double() @ raw[f"{PREFIX}{n}.lora_A.weight"].double()
        for n in names
    }


def test_lora_control_has_the_gaps_norm_and_rank_and_peft_loads_it(make_lora, tmp_path: Path) -> None:
    target = make_lora("target", seed=2, r=8, alpha=16, use_rslora=True)
    source = make_lora("source", seed=3, r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"])
    control = random_direction_reference(read_adapter(target), read_adapter(source), seed=7)
    write_adapter(control.reference_target, tmp_path / "rt")
    write_adapter(control.reference_source, tmp_path / "rs")

    # Independent: dense float64 ΔW from the raw factors (rsLoRA: 16/√8; plain: 8/4), and PEFT's own ΔW.
    gap = dense_gap(factor_deltas(target, 16 / math.sqrt(8)), factor_deltas(source, 8 / 4))
    peft_gap = dense_gap(peft_deltas(target), peft_deltas(source))
    drawn = read_adapter(tmp_path / "rt").modules
    peft_drawn, peft_zero = peft_deltas(tmp_path / "rt"), peft_deltas(tmp_path / "rs")
    assert set(drawn) == set(peft_drawn) == set(peft_zero) == set(gap) == set(peft_gap)
    ranks = {}
    for name, expected in gap.items():
        ranks[name] = int(torch.linalg.matrix_rank(expected))
        out, inp = expected.shape
        in_both = name.endswith(("q_proj", "v_proj", "up_proj"))
        assert ranks[name] == (min(12, out, inp) if in_both else 8)  # r_Rt + r_Rs, capped; r_Rt where Rs lacks it
        dense = drawn[name].delta_weight(torch.float64)
        assert drawn[name].rank == int(torch.linalg.matrix_rank(dense)) == ranks[name]
        assert float(dense.norm()) == pytest.approx(float(expected.norm()), rel=1e-5)
        assert float(peft_drawn[name].norm()) == pytest.approx(float(peft_gap[name].norm()), rel=1e-5)
        assert torch.count_nonzero(peft_zero[name]) == 0
        assert not torch.allclose(dense, expected, atol=1e-3)
    assert {m.name: m.rank for m in control.modules} == ranks


@pytest.mark.parametrize("t", [1.0, -0.5])
def test_lora_merge_with_the_control_applies_t_times_the_random_gap(make_lora, tmp_path: Path, t: float) -> None:
    task = make_lora("task", seed=1, r=4, alpha=8)
    target = make_lora("target", seed=2, r=8)
    source = make_lora("source", seed=3, r=8)
    control = random_direction_reference(read_adapter(target), read_adapter(source), seed=0)
    adamergex.merge(task, control.reference_target, control.reference_source, t=t, out=tmp_path / "merged")
    write_adapter(control.reference_target, tmp_path / "rt")
    merged, task_delta, drawn = (peft_deltas(p) for p in (tmp_path / "merged", task, tmp_path / "rt"))
    for name, delta in merged.items():
        torch.testing.assert_close(delta, task_delta[name] + t * drawn[name], rtol=1e-5, atol=1e-5)


def test_lora_rank_deficient_gap_keeps_its_rank() -> None:
    # Rt and Rs share B: ΔW_Rt − ΔW_Rs = B (A_t − A_s) has rank 3, not 6.
    generator = torch.Generator().manual_seed(0)
    shared_B = torch.randn(20, 3, generator=generator)
    a_t, a_s = torch.randn(3, 30, generator=generator), torch.randn(3, 30, generator=generator)
    config = {"peft_type": "LORA", "r": 3, "lora_alpha": 3.0, "base_model_name_or_path": "m"}
    target = LoraAdapter(config, {"m.proj": LoraModule(a_t, shared_B, 1.0)})
    source = LoraAdapter(config, {"m.proj": LoraModule(a_s, shared_B, 1.0)})
    control = random_direction_reference(target, source, seed=1)
    module = control.reference_target.modules["m.proj"]
    expected = shared_B.double() @ (a_t.double() - a_s.double())
    assert module.rank == 3 == int(torch.linalg.matrix_rank(expected))
    assert float(module.delta_weight(torch.float64).norm()) == pytest.approx(float(expected.norm()), rel=1e-6)


def test_zero_gap_is_refused() -> None:
    config = {"peft_type": "LORA", "r": 2, "lora_alpha": 2.0}
    module = LoraModule(torch.ones(2, 5), torch.ones(4, 2), 1.0)
    with pytest.raises(NumericalError, match="gap is zero"):
        random_direction_reference(LoraAdapter(config, {"a": module}), LoraAdapter(config, {"a": module}), seed=0)


def _tensors(adapter: LoraAdapter | IA3Adapter) -> list[torch.Tensor]:
    if isinstance(adapter, LoraAdapter):
        return [t for m in adapter.modules.values() for t in (m.lora_A, m.lora_B)]
    return [m.vector for m in adapter.modules.values()]


@pytest.mark.parametrize("kind", ["lora", "ia3"])
def test_deterministic_per_seed_and_per_module(make_lora, make_ia3, kind: str) -> None:
    make = make_lora if kind == "lora" else make_ia3
    target, source = read_adapter(make("target", seed=2)), read_adapter(make("source", seed=3))
    first = random_direction_reference(target, source, seed=11)
    again = random_direction_reference(target, source, seed=11)
    other = random_direction_reference(target, source, seed=12)
    pairs = zip(_tensors(first.reference_target), _tensors(again.reference_target), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    pairs = zip(_tensors(first.reference_target), _tensors(other.reference_target), strict=True)
    assert not any(torch.equal(a, b) for a, b in pairs)
    # A module's draw does not depend on the other modules the adapters hold.
    kept = next(iter(target.modules))
    narrow = [type(a)(a.config, {kept: a.modules[kept]}) for a in (target, source)]
    alone = random_direction_reference(narrow[0], narrow[1], seed=11).reference_target
    assert all(
        torch.equal(a, b)
        for a, b in zip(_module_tensors(first.reference_target, kept), _module_tensors(alone, kept), strict=True)
    )


def _module_tensors(adapter: LoraAdapter | IA3Adapter, name: str) -> list[torch.Tensor]:
    module = adapter.modules[name]
    return [module.lora_A, module.lora_B] if isinstance(module, LoraModule) else [module.vector]


def _ratio(folder_t: Path, folder_s: Path) -> dict[str, torch.Tensor]:
    raw_t = load_file(str(folder_t / "adapter_model.safetensors"))
    raw_s = load_file(str(folder_s / "adapter_model.safetensors"))
    return {k: raw_t[k].double() / raw_s.get(k, torch.ones_like(raw_t[k])).double() for k in raw_t}


@pytest.mark.parametrize("match", ["ratio", "log"])
def test_ia3_control_matches_the_merges_quantity_and_peft_loads_it(make_ia3, tmp_path: Path, match: str) -> None:
    target = make_ia3("target", seed=2, low=0.7, high=1.4)
    source = make_ia3("source", seed=3, target_modules=["k_proj", "down_proj"], low=0.8, high=1.2)
    control = random_direction_reference(read_adapter(target), read_adapter(source), seed=5, ia3_match=match)
    write_adapter(control.reference_target, tmp_path / "rt")
    write_adapter(control.reference_source, tmp_path / "rs")
    true, drawn = _ratio(target, source), _ratio(tmp_path / "rt", tmp_path / "rs")
    assert set(true) == set(drawn)
    for key, ratio in true.items():
        if match == "ratio":
            assert float((drawn[key] - 1).norm()) == pytest.approx(float((ratio - 1).norm()), rel=1e-5)
        else:
            assert float(drawn[key].log().norm()) == pytest.approx(float(ratio.log().norm()), rel=1e-5)
        assert bool((drawn[key] > 0).all())
    raw_s = load_file(str(tmp_path / "rs" / "adapter_model.safetensors"))
    assert all(torch.equal(v, torch.ones_like(v)) for v in raw_s.values())
    for folder in ("rt", "rs"):
        PeftModel.from_pretrained(tiny_llama(), tmp_path / folder)


def test_ia3_merge_with_the_control_scales_by_one_plus_t_d(make_ia3, tmp_path: Path) -> None:
    task, target, source = (make_ia3(n, seed=s) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    control = random_direction_reference(read_adapter(target), read_adapter(source), seed=4)
    write_adapter(control.reference_target, tmp_path / "rt")
    merged = adamergex.merge(task, control.reference_target, control.reference_source, t=0.6).adapter
    raw_task = load_file(str(task / "adapter_model.safetensors"))
    raw_rt = load_file(str(tmp_path / "rt" / "adapter_model.safetensors"))
    for name, module in merged.modules.items():
        key = f"{PREFIX}{name}.ia3_l"
        expected = raw_task[key].double() * (1 + 0.6 * (raw_rt[key].double() - 1))
        torch.testing.assert_close(module.vector.double(), expected, rtol=1e-6, atol=1e-6)


def test_cosine_with_the_true_gap_is_small_for_big_modules() -> None:
    generator = torch.Generator().manual_seed(3)
    config = {"peft_type": "LORA", "r": 8, "lora_alpha": 8.0}
    modules = [LoraModule(torch.randn(8, 384, generator=generator), torch.randn(256, 8, generator=generator), 1.0)]
    modules.append(LoraModule(torch.randn(8, 384, generator=generator), torch.randn(256, 8, generator=generator), 2.0))
    control = random_direction_reference(
        LoraAdapter(config, {"big": modules[0]}), LoraAdapter(config, {"big": modules[1]}), seed=0
    )
    gap = modules[0].delta_weight(torch.float64) - modules[1].delta_weight(torch.float64)
    drawn = control.reference_target.modules["big"].delta_weight(torch.float64)
    cosine = float((gap * drawn).sum() / (gap.norm() * drawn.norm()))
    assert abs(cosine) < 0.05
    assert control.modules[0].cosine == pytest.approx(cosine, abs=1e-6)

    ia3_config = {"peft_type": "IA3", "feedforward_modules": []}
    l_t = 1 + 0.1 * torch.randn(4096, 1, generator=generator)
    l_s = 1 + 0.1 * torch.randn(4096, 1, generator=generator)
    for match in ("ratio", "log"):
        ia3 = random_direction_reference(
            IA3Adapter(ia3_config, {"v": IA3Module(l_t, False)}),
            IA3Adapter(ia3_config, {"v": IA3Module(l_s, False)}),
            seed=0,
            ia3_match=match,
        )
        true, drawn_ratio = (l_t.double() / l_s.double()), ia3.reference_target.modules["v"].vector.double()
        a, b = (true.log(), drawn_ratio.log()) if match == "log" else (true - 1, drawn_ratio - 1)
        assert abs(float((a * b).sum() / (a.norm() * b.norm()))) < 0.05


def test_log_scale_hand_worked_and_unreachable_target_flips_the_direction() -> None:
    # One positive element: ‖exp(c) − 1‖ = 2 at c = log 3.
    assert log_scale_for_ratio_norm(torch.tensor([1.0]), 2.0) == pytest.approx(math.log(3.0), rel=1e-12)
    assert log_scale_for_ratio_norm(torch.tensor([0.6, 0.8]), 0.0) == 0.0
    # A one-element module with ρ = 3: the draw is ±1; exp(c·(−1)) − 1 never reaches 2, so the sign flips.
    for seed in range(4):
        drawn = random_log_ratio(torch.tensor([3.0]), torch.Generator().manual_seed(seed), "ratio")
        assert float(drawn) == pytest.approx(3.0, rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    out=st.integers(1, 14),
    inp=st.integers(1, 14),
    rank_t=st.integers(1, 6),
    rank_s=st.integers(1, 6),
    scale_t=st.floats(0.1, 4.0),
    scale_s=st.floats(0.1, 4.0),
    seed=st.integers(0, 2**16),
)
def test_property_lora_norm_and_rank(out, inp, rank_t, rank_s, scale_t, scale_s, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    config = {"peft_type": "LORA", "r": rank_t, "lora_alpha": float(rank_t)}
    target = LoraModule(
        torch.randn(rank_t, inp, generator=generator), torch.randn(out, rank_t, generator=generator), scale_t
    )
    source = LoraModule(
        torch.randn(rank_s, inp, generator=generator), torch.randn(out, rank_s, generator=generator), scale_s
    )
    control = random_direction_reference(
        LoraAdapter(config, {"m": target}), LoraAdapter(config, {"m": source}), seed=seed
    )
    gap = target.delta_weight(torch.float64) - source.delta_weight(torch.float64)
    module = control.reference_target.modules["m"]
    assert module.shape == (out, inp)
    assert module.rank == int(torch.linalg.matrix_rank(gap)) == min(rank_t + rank_s, out, inp)
    assert int(torch.linalg.matrix_rank(module.delta_weight(torch.float64))) == module.rank
    assert float(module.delta_weight(torch.float64).norm()) == pytest.approx(float(gap.norm()), rel=1e-5)
    assert control.reference_target.config["r"] == module.rank == control.reference_target.config["lora_alpha"]


@settings(max_examples=30, deadline=None)
@given(size=st.integers(1, 64), spread=st.floats(0.01, 1.0), seed=st.integers(0, 2**16))
def test_property_ia3_norms(size, spread, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    l_t = torch.exp(spread * torch.randn(size, 1, generator=generator, dtype=torch.float64))
    l_s = torch.exp(spread * torch.randn(size, 1, generator=generator, dtype=torch.float64))
    config = {"peft_type": "IA3", "feedforward_modules": []}
    pair = [IA3Adapter(config, {"v": IA3Module(v, False)}) for v in (l_t, l_s)]
    for match in ("ratio", "log"):
        drawn = random_direction_reference(pair[0], pair[1], seed=seed, ia3_match=match).reference_target
        vector = drawn.modules["v"].vector
        assert vector.shape == (size, 1) and bool((vector > 0).all())
        true = l_t / l_s
        got, want = (vector.log(), true.log()) if match == "log" else (vector - 1, true - 1)
        assert float(got.norm()) == pytest.approx(float(want.norm()), rel=1e-9, abs=1e-12)


def test_written_pair_carries_provenance_and_is_reproducible(make_lora, tmp_path: Path) -> None:
    target, source = make_lora("target", seed=2), make_lora("source", seed=3)
    for run in ("a", "b"):
        write_random_direction(target, source, 9, tmp_path / run / "rt", tmp_path / run / "rs")
    for name in ("rt", "rs"):
        files = [(tmp_path / run / name / "adapter_model.safetensors").read_bytes() for run in ("a", "b")]
        assert files[0] == files[1]
        record = read_provenance(tmp_path / "a" / name)
        assert record["method"] == "random-direction" and record["seed"] == 9
        assert record["role"] == {"rt": "reference_target", "rs": "reference_source"}[name]
        assert [i["fingerprint"] for i in record["inputs"]] == [
            adapter_fingerprint(target),
            adapter_fingerprint(source),
        ]
        assert len(record["modules"]) == len(read_adapter(target).modules)
