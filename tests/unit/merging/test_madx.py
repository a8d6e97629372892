"""MAD-X stacking: folding an adapter into the base weights gives PEFT's logits and is undone bit for bit; the
stacked adapter (LoRA: ΔW sum, (IA)³: product) gives the logits of PEFT running both adapters at once and of
the adapter on top of the folded reference."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from adamergex.adapters import IA3Module, read_adapter
from adamergex.adapters.fold import fold_adapter, folded, folded_ia3_weight
from adamergex.errors import IncompatibleAdaptersError
from adamergex.merging.ia3 import weighted_product
from adamergex.merging.stacking import stack
from tiny_models import tiny_llama

INPUT_IDS = torch.tensor([[1, 5, 9, 33, 2, 17, 60, 4], [3, 3, 41, 8, 12, 0, 7, 63]])


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=INPUT_IDS).logits.double()


def assert_bit_identical(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    state, expected = model.state_dict(), reference.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[key], expected[key]) for key in expected)


@pytest.fixture
def adapters(make_lora, make_ia3) -> dict[str, tuple[Path, Path]]:
    """(task adapter T', target reference Rt) of each kind, on partly different modules."""
    return {
        "lora": (
            make_lora("task", seed=1, r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]),
            make_lora(
                "ref", seed=2, r=8, alpha=16, use_rslora=True, target_modules=["q_proj", "o_proj", "embed_tokens"]
            ),
        ),
        "ia3": (
            make_ia3("task", seed=1, target_modules=["k_proj", "v_proj", "down_proj"]),
            make_ia3("ref", seed=2, target_modules=["k_proj", "o_proj", "down_proj"]),
        ),
    }


@pytest.mark.parametrize("kind", ["lora", "ia3"])
def test_folded_model_gives_peft_logits_and_restores_exactly(adapters, kind: str) -> None:
    _, reference = adapters[kind]
    expected = logits(PeftModel.from_pretrained(tiny_llama(), reference))
    model = tiny_llama()
    with folded(model, reference) as fold:
        torch.testing.assert_close(logits(model), expected, rtol=1e-5, atol=1e-5)
        assert set(fold.modules) == set(read_adapter(reference).modules)
        assert not torch.allclose(logits(model), logits(tiny_llama()), atol=1e-3)
    assert_bit_identical(model, tiny_llama())


def test_restore_after_the_model_was_wrapped_for_training(adapters) -> None:
    _, reference = adapters["lora"]
    model = tiny_llama()
    fold = fold_adapter(model, reference)
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    fold.restore()
    fold.restore()  # a second call does nothing
    assert_bit_identical(
        wrapped.get_base_model(),
        get_peft_model(tiny_llama(), LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).get_base_model(),
    )


def test_refused_fold_leaves_the_model_untouched(make_lora) -> None:
    wide = make_lora("wide", seed=1, target_modules=["q_proj", "o_proj"])
    adapter = read_adapter(wide)
    name = next(n for n in adapter.modules if n.endswith("o_proj"))
    adapter.modules["model.layers.9.self_attn.q_proj"] = adapter.modules.pop(name)  # a layer the model lacks
    model = tiny_llama()
    with pytest.raises(IncompatibleAdaptersError, match="not in the model"):
        fold_adapter(model, adapter)
    assert_bit_identical(model, tiny_llama())


def test_context_manager_restores_when_the_block_raises(adapters) -> None:
    model = tiny_llama()
    with pytest.raises(RuntimeError), folded(model, adapters["ia3"][1]):
        raise RuntimeError
    assert_bit_identical(model, tiny_llama())


@pytest.mark.parametrize("kind", ["lora", "ia3"])
def test_stack_equals_peft_running_both_adapters_and_the_adapter_on_the_folded_reference(
    adapters, kind: str, tmp_path: Path
) -> None:
    task, reference = adapters[kind]
    stack(task, reference, out=tmp_path / "stacked")
    ours = logits(PeftModel.from_pretrained(tiny_llama(), tmp_path / "stacked"))

    # Peer 1: PEFT with both adapters active at once (LoRA sums the updates, (IA)³ multiplies the scales).
    both = PeftModel.from_pretrained(tiny_llama(), task, adapter_name="task")
    both.load_adapter(reference, adapter_name="ref")
    both.base_model.set_adapter(["task", "ref"])
    torch.testing.assert_close(ours, logits(both), rtol=1e-5, atol=1e-5)

    # Peer 2: the MAD-X setting itself, the task adapter loaded on a base with the reference folded in.
    base = tiny_llama()
    with folded(base, reference):
        torch.testing.assert_close(ours, logits(PeftModel.from_pretrained(base, task)), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ours, logits(PeftModel.from_pretrained(tiny_llama(), task)), atol=1e-3)


def test_weighted_product_hand_worked() -> None:
    a, b = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([3.0, 4.0, 2.0])
    assert torch.equal(weighted_product([a, b], [1.0, 1.0]), torch.tensor([6.0, 2.0, -2.0]))
    assert torch.equal(weighted_product([b], [2.0]), torch.tensor([9.0, 16.0, 4.0]))
    assert torch.allclose(weighted_product([b, b], [1.0, -1.0]), torch.ones(3))


@pytest.mark.parametrize("feedforward", [False, True])
def test_ia3_fold_of_a_linear_with_bias_equals_scaling_its_output_or_input(feedforward: bool) -> None:
    generator = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(5, 3, dtype=torch.float64)
    x = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    vector = 0.5 + torch.rand((1, 5) if feedforward else (3, 1), generator=generator)
    expected = layer(x * vector.double().flatten()) if feedforward else layer(x) * vector.double().flatten()
    weight, bias = folded_ia3_weight(layer.weight, layer.bias, IA3Module(vector.double(), feedforward))
    torch.testing.assert_close(x @ weight.T + bias, expected, rtol=1e-6, atol=1e-6)  # folded in float32
