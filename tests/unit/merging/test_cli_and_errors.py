"""The merge/combine/inspect CLI, and bad input: one clear line, exit 2, no output folder left behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

from adamergex.adapters.io import adapter_fingerprint
from adamergex.cli import main
from adamergex.provenance import PROVENANCE_FILE


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def assert_clean_failure(code: int, output: str, out: Path, *fragments: str) -> None:
    assert code == 2, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for fragment in fragments:
        assert fragment in lines[0], output
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temporary leftovers


@pytest.fixture
def loras(make_lora) -> tuple[Path, Path, Path]:
    return make_lora("task", seed=1, r=4), make_lora("target", seed=2, r=8), make_lora("source", seed=3, r=8)


def test_merge_cli_writes_folder_table_and_provenance(loras, tmp_path: Path) -> None:
    task, target, source = loras
    out = tmp_path / "merged"
    code, output = run(
        "merge",
        "--task",
        task,
        "--ref-target",
        target,
        "--ref-source",
        source,
        "--t",
        "-0.5",
        "--out",
        out,
        "--mode",
        "svd",
        "--rank",
        "8",
    )
    assert code == 0, output
    assert "q_proj" in output and "kept energy" in output and "14 modules" in output
    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    assert provenance["t"] == -0.5 and provenance["mode"] == "svd" and provenance["settings"]["rank"] == 8
    assert [i["fingerprint"] for i in provenance["inputs"]] == [adapter_fingerprint(p) for p in loras]
    assert {"torch", "peft", "transformers", "adamergex"} <= set(provenance["versions"])
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 8 and config["use_rslora"] is False


def test_merge_cli_json_and_dtype(loras, tmp_path: Path) -> None:
    code, output = run(
        "merge",
        "--task",
        loras[0],
        "--ref-target",
        loras[1],
        "--ref-source",
        loras[2],
        "--out",
        tmp_path / "m",
        "--dtype",
        "bfloat16",
        "--json",
    )
    assert code == 0, output
    summary = json.loads(output)
    assert summary["modules"] == 14 and summary["output_rank"] == {"min": 20, "max": 20}
    assert all(v.dtype == torch.bfloat16 for v in load_file(str(tmp_path / "m" / "adapter_model.safetensors")).values())


def test_negative_t_is_parsed_as_a_value(loras, tmp_path: Path) -> None:
    code, output = run(
        "merge",
        "--task",
        loras[0],
        "--ref-target",
        loras[1],
        "--ref-source",
        loras[2],
        "--t",
        "-1",
        "--out",
        tmp_path / "m",
        "--json",
    )
    assert code == 0, output
    assert json.loads(output)["t"] == -1.0


def test_inspect_lora_and_ia3(loras, make_ia3) -> None:
    code, output = run("inspect", loras[1])
    assert code == 0 and "lora adapter for tiny-random-llama" in output and "down_proj" in output
    code, output = run("inspect", loras[1], "--json")
    info = json.loads(output)
    assert info["parameters"] == sum(v.numel() for v in load_file(str(loras[1] / "adapter_model.safetensors")).values())
    assert info["by_type"]["q_proj"]["ranks"] == [8] and info["by_type"]["q_proj"]["scales"] == [2.0]
    code, output = run("inspect", make_ia3("ia3", seed=1), "--json")
    assert code == 0 and json.loads(output)["by_type"]["down_proj"]["feedforward"] is True


def test_combine_cli(loras, tmp_path: Path) -> None:
    code, output = run(
        "combine",
        "--adapter",
        loras[0],
        "--weight",
        "1",
        "--adapter",
        loras[1],
        "--weight",
        "1",
        "--out",
        tmp_path / "ari",
    )
    assert code == 0, output
    assert (tmp_path / "ari" / "adapter_model.safetensors").is_file()


def test_combine_weight_count_mismatch(loras, tmp_path: Path) -> None:
    out = tmp_path / "ari"
    code, output = run("combine", "--adapter", loras[0], "--adapter", loras[1], "--weight", "1", "--out", out)
    assert_clean_failure(code, output, out, "2 adapters but 1 weights")


def test_existing_output_refused_then_forced(loras, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    args = ["merge", "--task", loras[0], "--ref-target", loras[1], "--ref-source", loras[2], "--out", out]
    code, output = run(*args)
    assert code == 2 and "already exists" in output and "--force" in output
    assert (out / "keep.txt").read_text() == "user data"
    code, output = run(*args, "--force")
    assert code == 0 and not (out / "keep.txt").exists() and (out / "adapter_config.json").is_file()


def test_base_model_mismatch_refused_unless_allowed(make_lora, loras, tmp_path: Path) -> None:
    other = make_lora("other", seed=4, base_name="/models/llama-local-copy")
    out = tmp_path / "merged"
    args = ["merge", "--task", loras[0], "--ref-target", other, "--ref-source", loras[2], "--out", out]
    code, output = run(*args)
    assert_clean_failure(code, output, out, "different base models", "--allow-base-mismatch")
    code, output = run(*args, "--allow-base-mismatch")
    assert code == 0 and "base model names differ" in output


def test_different_kinds_refused(loras, make_ia3, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    code, output = run(
        "merge", "--task", loras[0], "--ref-target", make_ia3("ia3", seed=1), "--ref-source", loras[2], "--out", out
    )
    assert_clean_failure(code, output, out, "LoRA", "(IA)³", "one kind")


def test_shape_mismatch_refused(loras, tmp_path: Path) -> None:
    torch.manual_seed(0)
    wide = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    )
    peft_model = get_peft_model(wide, LoraConfig(r=8, target_modules=["q_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "wide")
    config = json.loads((tmp_path / "wide" / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "tiny-random-llama"
    (tmp_path / "wide" / "adapter_config.json").write_text(json.dumps(config))
    out = tmp_path / "merged"
    code, output = run(
        "merge", "--task", loras[0], "--ref-target", tmp_path / "wide", "--ref-source", loras[2], "--out", out
    )
    assert_clean_failure(code, output, out, "q_proj", "shapes differ")


def test_missing_weights_refused(loras, tmp_path: Path) -> None:
    (loras[1] / "adapter_model.safetensors").unlink()
    out = tmp_path / "merged"
    code, output = run("merge", "--task", loras[0], "--ref-target", loras[1], "--ref-source", loras[2], "--out", out)
    assert_clean_failure(code, output, out, str(loras[1]), "adapter_model.safetensors")


def test_missing_folder_refused(loras, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    code, output = run(
        "merge", "--task", tmp_path / "nope", "--ref-target", loras[1], "--ref-source", loras[2], "--out", out
    )
    assert_clean_failure(code, output, out, "adapter folder not found", "nope")


def test_corrupt_safetensors_refused(loras, tmp_path: Path) -> None:
    path = loras[2] / "adapter_model.safetensors"
    path.write_bytes(path.read_bytes()[:200])
    out = tmp_path / "merged"
    code, output = run("merge", "--task", loras[0], "--ref-target", loras[1], "--ref-source", loras[2], "--out", out)
    assert_clean_failure(code, output, out, "cannot read safetensors", str(path))


def test_corrupt_config_refused(loras, tmp_path: Path) -> None:
    (loras[0] / "adapter_config.json").write_text("{not json")
    out = tmp_path / "merged"
    code, output = run("merge", "--task", loras[0], "--ref-target", loras[1], "--ref-source", loras[2], "--out", out)
    assert_clean_failure(code, output, out, "not valid JSON")


def test_non_finite_values_refused(loras, tmp_path: Path) -> None:
    path = loras[1] / "adapter_model.safetensors"
    tensors = load_file(str(path))
    key = next(k for k in tensors if k.endswith("v_proj.lora_B.weight"))
    tensors[key][0, 0] = float("nan")
    save_file(tensors, str(path))
    out = tmp_path / "merged"
    code, output = run("merge", "--task", loras[0], "--ref-target", loras[1], "--ref-source", loras[2], "--out", out)
    assert_clean_failure(code, output, out, "non-finite", "v_proj")


def test_reference_vector_with_zero_refused_then_clamped(make_ia3, tmp_path: Path) -> None:
    task, target, source = (make_ia3(n, seed=s) for n, s in (("task", 1), ("target", 2), ("source", 3)))
    path = source / "adapter_model.safetensors"
    tensors = load_file(str(path))
    key = "base_model.model.model.layers.1.mlp.down_proj.ia3_l"
    tensors[key][0, 3] = 0.0
    save_file(tensors, str(path))
    out = tmp_path / "merged"
    args = ["merge", "--task", task, "--ref-target", target, "--ref-source", source, "--out", out]
    code, output = run(*args)
    assert_clean_failure(code, output, out, "reference_source", "layers.1.mlp.down_proj", "index 3", "value 0")
    code, output = run(*args, "--clamp", "1e-3")
    assert code == 0, output
    assert "clamped 1 element" in output
    merged = load_file(str(out / "adapter_model.safetensors"))[key]
    raw = [load_file(str(p / "adapter_model.safetensors"))[key] for p in (task, target)]
    assert float(merged[0, 3]) == pytest.approx(float(raw[0][0, 3] * raw[1][0, 3] / 1e-3), rel=1e-5)


def test_modules_to_save_refused_unless_task(make_lora, loras, tmp_path: Path) -> None:
    head = make_lora("head", seed=5, r=4, modules_to_save=["lm_head"])
    out = tmp_path / "merged"
    args = ["merge", "--task", head, "--ref-target", loras[1], "--ref-source", loras[2], "--out", out]
    code, output = run(*args)
    assert_clean_failure(code, output, out, "modules_to_save", "--modules-to-save task")
    code, output = run(*args, "--modules-to-save", "task")
    assert code == 0, output
    merged = load_file(str(out / "adapter_model.safetensors"))
    original = load_file(str(head / "adapter_model.safetensors"))
    assert torch.equal(merged["base_model.model.lm_head.weight"], original["base_model.model.lm_head.weight"])
    assert json.loads((out / "adapter_config.json").read_text())["modules_to_save"] == ["lm_head"]


def test_factor_mode_needs_equal_ranks(loras, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    code, output = run(
        "merge",
        "--task",
        loras[0],
        "--ref-target",
        loras[1],
        "--ref-source",
        loras[2],
        "--out",
        out,
        "--mode",
        "factor",
    )
    assert_clean_failure(code, output, out, "factor mode", "equal ranks")


def test_mode_must_fit_the_kind(loras, tmp_path: Path) -> None:
    out = tmp_path / "merged"
    code, output = run(
        "merge",
        "--task",
        loras[0],
        "--ref-target",
        loras[1],
        "--ref-source",
        loras[2],
        "--out",
        out,
        "--mode",
        "multiplicative",
    )
    assert_clean_failure(code, output, out, "not a LoRA merge mode", "concat, svd, factor")
