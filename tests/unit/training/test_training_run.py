"""End-to-end adapter training on tiny random Llama / Gemma-3 models, checked against PEFT and transformers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from adamergex.adapters.io import adapter_fingerprint
from adamergex.errors import OutputExistsError
from adamergex.models import UnknownModelError, load_base_model
from adamergex.provenance import read_provenance
from adamergex.training import (
    NonFiniteLossError,
    TargetModuleError,
    TrainingConfig,
    default_lora_targets,
    prepare_training_data,
    train_adapter,
)
from adamergex.training.data import Example, collate
from tiny_lm_folders import toy_task_data

SEVEN = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def hf_mean_loss(model: torch.nn.Module, examples: list[Example], pad_id: int) -> float:
    """Token-weighted mean of transformers' own causal-LM loss (independent of adamergex's loss code)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for example in examples:
            batch = collate([example], pad_id)
            loss = model(**batch).loss
            total += float(loss) * example.label_tokens
            count += example.label_tokens
    return total / count


def adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "adapter_model.safetensors"))


def reference_config(model_dir: Path, corpus: Path, out: Path, **extra: Any) -> TrainingConfig:
    values: dict[str, Any] = {
        "base": str(model_dir),
        "data": str(corpus),
        "lang": "en",
        "out": out,
        "max_length": 32,
        "max_steps": 30,
        "learning_rate": 2e-2,
        **extra,
    }
    return TrainingConfig(**values)


def test_reference_lora_learns_loads_in_peft_and_records_provenance(
    llama_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    config = reference_config(llama_dir, corpus_file, tmp_path / "ref-en", eval_steps=10)
    base = load_base_model(str(llama_dir))
    data = prepare_training_data(config, base.tokenizer)
    before = hf_mean_loss(base.model, data.validation, base.tokenizer.pad_token_id)

    result = train_adapter(config, progress=False)

    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(llama_dir), config.out).eval()
    after = hf_mean_loss(peft, data.validation, base.tokenizer.pad_token_id)
    assert after == pytest.approx(result.validation_loss, rel=1e-5)
    assert after < before - 0.3
    assert result.history[-1]["loss"] < result.history[0]["loss"] - 0.3
    assert [r["step"] for r in result.history if "validation_loss" in r] == [10, 20]
    # The loss before training is the base model's, computed by transformers independently.
    assert result.initial_validation_loss == pytest.approx(before, rel=1e-5)

    log = [json.loads(line) for line in (config.out / "training_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [*range(31), 30]
    assert log[0]["validation_loss"] == pytest.approx(before, rel=1e-5)
    assert log[-1]["final"] and log[-1]["validation_loss"] == pytest.approx(after, rel=1e-5)
    assert [r["loss"] for r in log[1:-1]] == [r["loss"] for r in result.history]
    assert all(r["tokens_per_second"] > 0 and r["lr"] >= 0 for r in log[1:-1])

    adapter_config = json.loads((config.out / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "LORA"
    assert (adapter_config["r"], adapter_config["lora_alpha"], adapter_config["lora_dropout"]) == (8, 16, 0.05)
    assert set(adapter_config["target_modules"]) == SEVEN

    record = read_provenance(config.out)
    assert record is not None
    assert record["base_model"] == {"name": str(llama_dir), "fingerprint": base.fingerprint, "source": "folder"}
    assert record["adapter"] == "lora" and record["task"] == "reference" and record["language"] == "en"
    assert record["data"]["fingerprint"] == data.fingerprint
    assert record["adapter_fingerprint"] == adapter_fingerprint(config.out)
    assert record["steps"] == 30
    assert record["final_validation_loss"] == pytest.approx(after, rel=1e-5)
    assert record["initial_validation_loss"] == pytest.approx(before, rel=1e-5)
    assert record["hyperparameters"]["init_seed"] == config.adapter_init_seed
    assert record["final_train_loss"] == pytest.approx(sum(r["loss"] for r in result.history[-10:]) / 10)
    assert record["hyperparameters"]["lora_r"] == 8 and record["hyperparameters"]["learning_rate"] == 2e-2
    assert record["wall_time_s"] > 0 and record["throughput"]["tokens"] == sum(r["tokens"] for r in result.history)
    assert {"torch", "transformers", "peft", "python"} <= set(record["versions"])
    assert not config.checkpoint_root.exists()


def test_task_lora_on_gemma3_learns_the_answer(gemma_dir: Path, tmp_path: Path) -> None:
    data = toy_task_data()
    config = TrainingConfig(
        base=str(gemma_dir), data="task:toy", lang="en", out=tmp_path / "task", max_steps=25, learning_rate=0.1
    )
    base = load_base_model(str(gemma_dir))
    before = hf_mean_loss(base.model, data.validation, base.tokenizer.pad_token_id)
    result = train_adapter(config, base=base, data=data, progress=False)
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(gemma_dir), config.out).eval()
    after = hf_mean_loss(peft, data.validation, base.tokenizer.pad_token_id)
    assert after == pytest.approx(result.validation_loss, rel=1e-5)
    assert after < before / 2
    # The base model was handed back without adapter layers.
    assert not any("lora" in name for name, _ in base.model.named_modules())
    assert read_provenance(config.out)["task"] == "toy"


def test_resume_gives_the_same_adapter_as_an_uninterrupted_run(
    llama_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    common = {"max_steps": 6, "save_steps": 2, "grad_accum": 2, "batch_size": 2, "epochs": 1.0}
    uninterrupted = train_adapter(reference_config(llama_dir, corpus_file, tmp_path / "a", **common), progress=False)

    interrupted = reference_config(llama_dir, corpus_file, tmp_path / "b", **common)

    def crash_at_step_4(step: int, record: dict[str, Any]) -> None:
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_adapter(interrupted, callbacks=(crash_at_step_4,), progress=False)
    assert not interrupted.out.exists()
    checkpoints = sorted(p.name for p in interrupted.checkpoint_root.iterdir())
    assert checkpoints == ["step-0000002", "step-0000004", "training_log.jsonl"]  # the live log too
    live = (interrupted.checkpoint_root / "training_log.jsonl").read_text().splitlines()
    assert len(live) == 1 + 4  # step 0 and the four steps taken

    resumed = train_adapter(interrupted.model_copy(update={"resume": True}), progress=False)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in uninterrupted.history]
    assert resumed.initial_validation_loss == uninterrupted.initial_validation_loss
    expected, actual = adapter_tensors(tmp_path / "a"), adapter_tensors(tmp_path / "b")
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, actual[name]), name


def test_ia3_trains_with_peft_defaults(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    config = reference_config(llama_dir, corpus_file, tmp_path / "ia3", adapter="ia3", learning_rate=0.1)
    base = load_base_model(str(llama_dir))
    data = prepare_training_data(config, base.tokenizer)
    before = hf_mean_loss(base.model, data.validation, base.tokenizer.pad_token_id)
    result = train_adapter(config, progress=False)
    adapter_config = json.loads((config.out / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == "IA3"
    assert set(adapter_config["target_modules"]) == {"k_proj", "v_proj", "down_proj"}
    assert set(adapter_config["feedforward_modules"]) == {"down_proj"}
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(llama_dir), config.out).eval()
    after = hf_mean_loss(peft, data.validation, base.tokenizer.pad_token_id)
    assert after == pytest.approx(result.validation_loss, rel=1e-5)
    assert after < before - 0.5
    assert any(not torch.allclose(t, torch.ones_like(t)) for t in adapter_tensors(config.out).values())


def test_gradient_checkpointing_gives_the_same_losses(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    settings = {"max_steps": 3, "lora_dropout": 0.0}
    plain = train_adapter(reference_config(llama_dir, corpus_file, tmp_path / "p", **settings), progress=False)
    base = load_base_model(str(llama_dir))
    seen: list[bool] = []
    checkpointed = train_adapter(
        reference_config(llama_dir, corpus_file, tmp_path / "c", gradient_checkpointing=True, **settings),
        base=base,
        callbacks=(lambda step, record: seen.append(base.model.is_activation_checkpointing),),
        progress=False,
    )
    assert seen == [True, True, True] and not base.model.is_activation_checkpointing
    for a, b in zip(plain.history, checkpointed.history, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)


def test_non_finite_loss_stops_without_output(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    config = reference_config(llama_dir, corpus_file, tmp_path / "nan", learning_rate=1e30, max_steps=5)
    with pytest.raises(NonFiniteLossError, match=r"training loss is (nan|inf) at step \d of 5"):
        train_adapter(config, progress=False)
    assert not config.out.exists()


def test_unknown_target_module_lists_linear_modules(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    config = reference_config(llama_dir, corpus_file, tmp_path / "x", target_modules=["q_proj", "query_key"])
    with pytest.raises(TargetModuleError) as error:
        train_adapter(config, progress=False)
    message = str(error.value)
    assert "'query_key'" in message
    assert message.endswith("down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj")
    assert "\n" not in message


def test_existing_output_is_refused_before_loading(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    config = reference_config(tmp_path / "no-such-model", corpus_file, out)
    with pytest.raises(OutputExistsError, match="already exists"):
        train_adapter(config, progress=False)
    assert (out / "keep.txt").read_text() == "mine"


def test_unknown_model_is_refused(corpus_file: Path, tmp_path: Path) -> None:
    config = reference_config(tmp_path / "no-such-model", corpus_file, tmp_path / "out")
    with pytest.raises(UnknownModelError, match="unknown model"):
        train_adapter(config, progress=False)


def test_lora_targets_resolve_per_architecture() -> None:
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_embd=16, n_layer=1, n_head=2, n_positions=32))
    assert default_lora_targets(gpt2) == ["c_attn", "c_proj", "c_fc"]


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [("constant", [0.0, 0.5, 1.0, 1.0, 1.0, 1.0]), ("linear", [0.0, 0.5, 1.0, 0.75, 0.5, 0.25])],
)
def test_learning_rate_schedules(
    llama_dir: Path, corpus_file: Path, tmp_path: Path, schedule: str, expected: list[float]
) -> None:
    # 6 steps, warm-up 2 (round(0.34 · 6)), peak 1e-3: the logged rate per step, worked out by hand.
    config = reference_config(
        llama_dir,
        corpus_file,
        tmp_path / schedule,
        max_steps=6,
        warmup_ratio=0.34,
        learning_rate=1e-3,
        lr_scheduler=schedule,
    )
    result = train_adapter(config, progress=False)
    assert [r["lr"] for r in result.history] == pytest.approx([1e-3 * x for x in expected])


def test_a_snapshot_equals_the_run_of_that_many_steps(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    """One constant-rate run of 6 steps keeps the adapter after steps 2 and 4; each is bit for bit the adapter of a
    2- or 4-step run (the dose series of the dose study from one run), with its own validation loss."""
    common = {"lr_scheduler": "constant", "warmup_ratio": 0.0, "batch_size": 2, "save_steps": 3, "eval_steps": 3}
    config = reference_config(llama_dir, corpus_file, tmp_path / "long", max_steps=6, snapshot_steps=[2, 4], **common)
    assert config.snapshots_exact
    long = train_adapter(config, progress=False)
    assert sorted(long.snapshots) == [2, 4]
    assert not config.checkpoint_root.exists()  # the snapshots moved into the output with it
    for steps in (2, 4):
        short = train_adapter(
            reference_config(llama_dir, corpus_file, tmp_path / f"short{steps}", max_steps=steps, **common),
            progress=False,
        )
        snapshot = long.snapshots[steps]
        assert snapshot == tmp_path / "long" / "snapshots" / f"step-{steps:07d}"
        expected, actual = adapter_tensors(short.out), adapter_tensors(snapshot)
        assert expected.keys() == actual.keys()
        for name, tensor in expected.items():
            assert torch.equal(tensor, actual[name]), (steps, name)
        record = read_provenance(snapshot)
        assert record["snapshot"] == {"step": steps, "of_steps": 6, "equals_run_of_steps": True}
        assert record["final_validation_loss"] == short.validation_loss
        assert record["initial_validation_loss"] == short.initial_validation_loss
        assert record["steps"] == steps
        assert record["final_train_loss"] == short.train_loss  # the same last-steps window as the short run's
        assert record["total_time_s"] >= record["wall_time_s"] > 0
        # The run's settings (its max_steps, not the snapshot's step), without snapshot_steps (run control).
        assert record["hyperparameters"] == {**short.record["hyperparameters"], "max_steps": 6}
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(llama_dir), snapshot)  # a real PEFT folder


def test_snapshots_survive_an_interruption(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    common = {"lr_scheduler": "constant", "warmup_ratio": 0.0, "batch_size": 2, "save_steps": 2}
    whole = train_adapter(
        reference_config(llama_dir, corpus_file, tmp_path / "a", max_steps=6, snapshot_steps=[3], **common),
        progress=False,
    )
    interrupted = reference_config(llama_dir, corpus_file, tmp_path / "b", max_steps=6, snapshot_steps=[3], **common)

    def crash_at_step_5(step: int, record: dict[str, Any]) -> None:
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_adapter(interrupted, callbacks=(crash_at_step_5,), progress=False)
    resumed = train_adapter(interrupted.model_copy(update={"resume": True}), progress=False)
    for a, b in ((whole.out, resumed.out), (whole.snapshots[3], resumed.snapshots[3])):
        expected, actual = adapter_tensors(a), adapter_tensors(b)
        assert all(torch.equal(tensor, actual[name]) for name, tensor in expected.items())


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([0, 2], "increasing positive"),
        ([4, 2], "increasing positive"),
        ([2, 2], "increasing positive"),
        ([6], "before the last"),
    ],
)
def test_bad_snapshot_steps_are_refused(steps: list[int], message: str, tmp_path: Path) -> None:
    from adamergex.errors import AdamergexError

    with pytest.raises(AdamergexError, match=message):
        TrainingConfig.build(
            {"base": "m", "data": "d", "lang": "en", "out": tmp_path / "x", "max_steps": 6, "snapshot_steps": steps}
        )


def test_only_a_constant_rate_without_warmup_makes_snapshots_exact(tmp_path: Path) -> None:
    base = {"base": "m", "data": "d", "lang": "en", "out": tmp_path / "x", "max_steps": 6, "snapshot_steps": [2]}
    assert TrainingConfig(**base, lr_scheduler="constant", warmup_ratio=0.0).snapshots_exact
    assert not TrainingConfig(**base, lr_scheduler="constant", warmup_ratio=0.1).snapshots_exact  # warm-up ∝ steps
    assert not TrainingConfig(**base, lr_scheduler="cosine", warmup_ratio=0.0).snapshots_exact
