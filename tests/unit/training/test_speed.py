"""Execution settings (training.speed): the device defaults, packed task batches against padded ones, fused AdamW,
PEFT's input cast switch, and that a CPU run with the defaults is unchanged."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from peft import IA3Config, LoraConfig, get_peft_model

from adamergex.provenance import read_provenance
from adamergex.training import TrainingConfig, speed, train_adapter
from adamergex.training.data import Example, collate
from adamergex.training.loss import IGNORE_INDEX, forward_loss
from adamergex.training.speed import Execution, adapter_input_casting, collate_packed, execution_for, make_adamw
from tiny_lm_folders import tiny_model, toy_task_data


def _examples() -> list[Example]:
    """Answer-only examples of different lengths (so a padded batch has padding), ids from a 64-token vocabulary."""
    generator = torch.Generator().manual_seed(0)
    examples = []
    for prompt_length, answer_length in ((5, 1), (11, 2), (3, 3), (8, 1)):
        ids = torch.randint(4, 60, (1 + prompt_length + answer_length,), generator=generator).tolist()
        ids[0] = 2  # BOS
        labels = [IGNORE_INDEX] * (1 + prompt_length) + ids[1 + prompt_length :]
        examples.append(Example(input_ids=ids, labels=labels))
    return examples


def test_defaults_are_the_measured_levers_on_cuda_and_none_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(speed.LIGER_VARIABLE, raising=False)
    assert execution_for("cpu") == Execution()
    assert execution_for(torch.device("cpu")) == Execution(
        fused_adamw=False, adapter_input_cast=True, packed_task_batches=False, liger_kernels=False
    )
    # Packing stays off on CUDA too (measured slower with SDPA), and Liger is opt-in (it patches the process).
    assert execution_for("cuda:0") == Execution(fused_adamw=True, adapter_input_cast=False)
    assert execution_for("cuda").record() == {
        "fused_adamw": True,
        "adapter_input_cast": False,
        "packed_task_batches": False,
        "liger_kernels": False,
    }


@pytest.mark.parametrize(
    ("value", "installed", "expected"),
    [("1", True, True), ("0", True, False), ("", True, False), ("1", False, "not installed"), ("yes", True, "0 or 1")],
)
def test_liger_is_asked_for_by_its_variable(
    value: str, installed: bool, expected: bool | str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adamergex.errors import AdamergexError

    monkeypatch.setenv(speed.LIGER_VARIABLE, value)
    monkeypatch.setattr(speed, "liger_available", lambda: installed)
    if isinstance(expected, str):
        with pytest.raises(AdamergexError, match=expected):
            execution_for("cuda")
    else:
        assert execution_for("cuda").liger_kernels is expected
        assert execution_for("cpu").liger_kernels is False  # never on the CPU (Triton kernels)


def test_liger_kernels_are_applied_once_through_the_architectures_public_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, object]] = []

    def apply_liger_kernel_to_llama(model=None, rope=True, rms_norm=True, swiglu=True, cross_entropy=True):
        calls.append({"model": model, "rope": rope, "rms_norm": rms_norm, "swiglu": swiglu, "ce": cross_entropy})

    fake = types.ModuleType("liger_kernel.transformers")
    fake.apply_liger_kernel_to_llama = apply_liger_kernel_to_llama  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "liger_kernel", types.ModuleType("liger_kernel"))
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", fake)
    model = tiny_model("llama", 64)
    assert speed.apply_liger_kernels(model)
    assert speed.apply_liger_kernels(model)  # a second call patches nothing more
    # Only the keywords the function takes; its losses off (geglu and fused_linear_cross_entropy not taken here).
    assert calls == [{"model": model, "rope": True, "rms_norm": True, "swiglu": True, "ce": False}]
    assert not speed.apply_liger_kernels(tiny_model("gemma3", 64))  # no function for that architecture: untouched


def test_collate_packed_lays_examples_back_to_back() -> None:
    examples = _examples()
    batch = collate_packed(examples)
    total = sum(len(e.input_ids) for e in examples)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["position_ids"].shape == (1, total)
    assert batch["input_ids"][0].tolist() == [t for e in examples for t in e.input_ids]
    assert batch["position_ids"][0].tolist() == [p for e in examples for p in range(len(e.input_ids))]
    assert int(batch["attention_mask"].sum()) == total
    padded = collate(examples, 0)
    # The same label tokens are scored: a row's first label is never predicted, so each example's first is dropped.
    assert int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()) == int((padded["labels"][:, 1:] != IGNORE_INDEX).sum())


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_packed_loss_equals_the_padded_per_example_loss(arch: str) -> None:
    """Position-id restarts give block-diagonal attention: the summed loss of the packed row equals the padded
    batch's, and so does the gradient of every weight."""
    model = tiny_model(arch, 64)
    examples = _examples()
    losses, grads = [], []
    for batch in (collate(examples, 0), collate_packed(examples)):
        model.zero_grad()
        loss = forward_loss(model, batch)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-5)
    for padded, packed in zip(*grads, strict=True):
        torch.testing.assert_close(padded, packed, rtol=1e-4, atol=1e-6)


def test_packed_rows_do_not_attend_across_examples() -> None:
    """Independent check: changing the first example leaves the second example's loss unchanged when packed."""
    model = tiny_model("llama", 64)
    first, second = _examples()[:2]
    changed = Example(input_ids=[2, *[(t + 7) % 60 + 4 for t in first.input_ids[1:]]], labels=first.labels)
    with torch.no_grad():
        alone = forward_loss(model, collate_packed([second]))
        after_first = forward_loss(model, collate_packed([first, second])) - forward_loss(
            model, collate_packed([first])
        )
        after_changed = forward_loss(model, collate_packed([changed, second])) - forward_loss(
            model, collate_packed([changed])
        )
    torch.testing.assert_close(after_first, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(after_changed, alone, rtol=1e-5, atol=1e-5)


def test_make_adamw_selects_the_fused_kernel_only_when_asked() -> None:
    parameter = torch.nn.Parameter(torch.ones(3))
    assert not make_adamw([parameter], lr=1e-3, weight_decay=0.0, fused=False).defaults["fused"]
    fused = make_adamw([parameter], lr=1e-3, weight_decay=0.1, fused=True)
    assert fused.defaults["fused"] and fused.defaults["weight_decay"] == 0.1


def test_input_cast_switch_reaches_every_lora_layer() -> None:
    model = get_peft_model(tiny_model("llama", 64), LoraConfig(r=2, target_modules=["q_proj", "down_proj"]))
    layers = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    assert layers
    with adapter_input_casting(model, Execution(adapter_input_cast=False)):
        assert not any(m.cast_input_dtype_enabled for m in layers)
    assert all(m.cast_input_dtype_enabled for m in layers)
    with adapter_input_casting(model, Execution()):
        assert all(m.cast_input_dtype_enabled for m in layers)


def test_input_cast_switch_leaves_ia3_layers_alone() -> None:
    """(IA)³ layers have no input-cast switch (the first GPU run failed there: PEFT's helper assumed every layer
    had one); the context must pass over them."""
    model = get_peft_model(
        tiny_model("llama", 64), IA3Config(target_modules=["k_proj", "down_proj"], feedforward_modules=["down_proj"])
    )
    with adapter_input_casting(model, Execution(adapter_input_cast=False)):
        pass


def _train_task(llama_dir: Path, out: Path, execution: Execution | None) -> list[float]:
    config = TrainingConfig(
        base=str(llama_dir),
        data="task:toy",
        lang="en",
        out=out,
        max_steps=4,
        batch_size=4,
        lora_dropout=0.0,
        learning_rate=2e-2,
        device="cpu",
    )
    result = train_adapter(config, data=toy_task_data(), progress=False, execution=execution)
    assert read_provenance(result.out)["execution"] == (execution or Execution()).record()
    return [record["loss"] for record in result.history]


def test_training_with_packed_task_batches_follows_the_padded_run(llama_dir: Path, tmp_path: Path) -> None:
    padded = _train_task(llama_dir, tmp_path / "padded", None)
    packed = _train_task(llama_dir, tmp_path / "packed", Execution(packed_task_batches=True, fused_adamw=True))
    assert packed == pytest.approx(padded, rel=1e-4)
