"""``adamergex eval`` end to end on a saved tiny Llama, and the adapter/base-model check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from peft import LoraConfig, get_peft_model

from adamergex.adapters.fit import check_adapter_base
from adamergex.adapters.io import adapter_fingerprint
from adamergex.cli import main
from adamergex.errors import IncompatibleAdaptersError
from adamergex.evaluation.adapter import attach_adapter
from adamergex.models import load_base_model
from adamergex.provenance import PROVENANCE_FILE

FIXTURES = Path(__file__).parents[2] / "fixtures" / "evaluation"


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory: pytest.TempPathFactory, saved_llama: Path) -> Path:
    """A LoRA adapter with random (non-zero) B, made for the saved tiny Llama."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(saved_llama)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    folder = tmp_path_factory.mktemp("adapter") / "lora"
    model.save_pretrained(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(saved_llama)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_eval_writes_results_for_each_language(saved_llama: Path, lora_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    code, _, stderr = _run(
        "eval",
        "--base",
        str(saved_llama),
        "--adapter",
        str(lora_dir),
        "--task",
        "xnli",
        "--lang",
        "de",
        "--lang",
        "zh",
        "--split",
        "validation",
        "--batch-size",
        "2",
        "--data-files",
        str(FIXTURES / "xnli_de.jsonl"),
        "--out",
        str(out),
    )
    assert code == 0, stderr
    results = json.loads(out.read_text())["results"]
    assert [r["language"] for r in results] == ["de", "zh"]
    assert results[0]["adapter_fingerprint"] == adapter_fingerprint(lora_dir)
    assert results[0]["model_fingerprint"] == load_base_model(str(saved_llama)).fingerprint
    assert results[0]["n"] == 4 and "accuracy" in results[0]["metrics"] and "predictions" in results[0]
    assert "accuracy" in stderr and "xnli" in stderr  # the summary table
    code, _, stderr = _run(
        "eval",
        "--base",
        str(saved_llama),
        "--task",
        "xnli",
        "--lang",
        "de",
        "--split",
        "validation",
        "--data-files",
        str(FIXTURES / "xnli_de.jsonl"),
        "--out",
        str(out),
    )
    assert code == 2 and "already exists" in stderr


def test_adapter_changes_scores_and_base_run_differs(saved_llama: Path, lora_dir: Path) -> None:
    loaded = load_base_model(str(saved_llama))
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        base_logits = loaded.model(ids).logits
    model, fingerprint = attach_adapter(loaded, lora_dir)
    with torch.no_grad():
        adapted = model(ids).logits
    assert fingerprint == adapter_fingerprint(lora_dir)
    assert not torch.allclose(base_logits, adapted)


def test_adapter_for_another_base_is_refused(saved_llama: Path, lora_dir: Path, tmp_path: Path) -> None:
    loaded = load_base_model(str(saved_llama))
    (lora_dir / PROVENANCE_FILE).write_text(
        json.dumps({"base_model": {"name": "gemma-3-270m", "fingerprint": "f" * 64}})
    )
    try:
        with pytest.raises(IncompatibleAdaptersError, match="gemma-3-270m"):
            check_adapter_base(lora_dir, loaded)
        code, _, stderr = _run(
            "eval",
            "--base",
            str(saved_llama),
            "--adapter",
            str(lora_dir),
            "--task",
            "xnli",
            "--lang",
            "de",
            "--split",
            "validation",
            "--data-files",
            str(FIXTURES / "xnli_de.jsonl"),
            "--out",
            str(tmp_path / "r.json"),
        )
        assert code == 2 and "gemma-3-270m" in stderr and "fingerprint" in stderr
        assert not (tmp_path / "r.json").exists()
    finally:
        (lora_dir / PROVENANCE_FILE).unlink()
    other = tmp_path / "other"
    other.mkdir()
    config = json.loads((lora_dir / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "HuggingFaceTB/SmolLM2-135M"
    (other / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(IncompatibleAdaptersError, match="SmolLM2-135M"):
        check_adapter_base(other, loaded)


def test_bad_input_exits_with_one_line(saved_llama: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r.json")
    code, _, stderr = _run("eval", "--base", str(saved_llama), "--task", "nope", "--lang", "de", "--out", out)
    assert code == 2 and "unknown task 'nope'" in stderr and len(stderr.strip().splitlines()) == 1
    code, _, stderr = _run("eval", "--base", str(saved_llama), "--task", "xnli", "--lang", "xx", "--out", out)
    assert code == 2 and "xx" in stderr
    code, _, stderr = _run(
        "eval", "--base", str(saved_llama), "--task", "xnli", "--lang", "de", "--batch-size", "many", "--out", out
    )
    assert code == 2 and "--batch-size" in stderr
    code, _, stderr = _run(
        "eval",
        "--base",
        str(saved_llama),
        "--adapter",
        str(tmp_path),
        "--task",
        "xnli",
        "--lang",
        "de",
        "--split",
        "validation",
        "--out",
        out,
    )
    assert code == 2 and "adapter_config.json" in stderr
