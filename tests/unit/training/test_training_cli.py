"""``adamergex train`` from the command line: flags, YAML config, errors, and two DDP processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file

from adamergex.cli import main
from adamergex.provenance import read_provenance
from adamergex.training import TrainingConfig, train_adapter


def test_cli_trains_with_flags_and_refuses_existing_output(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-out"
    args = ["train", "--base", str(llama_dir), "--data", str(corpus_file), "--lang", "English", "--out", str(out)]
    args += ["--max-steps", "2", "--max-length", "32", "--target-modules", "q_proj, v_proj", "--no-packing"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"wrote {out}: 2 steps" in result.output
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert set(adapter_config["target_modules"]) == {"q_proj", "v_proj"}
    record = read_provenance(out)
    assert record["language"] == "en" and record["hyperparameters"]["packing"] is False

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2
    assert again.output.strip().splitlines()[-1].startswith("error: output folder already exists")


def test_cli_reads_yaml_and_flags_override_it(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "run.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "base": str(llama_dir),
                "data": str(corpus_file),
                "lang": "en",
                "lora_r": 4,
                "lora_alpha": 8,
                "max_steps": 1,
                "max_length": 32,
                "out": str(tmp_path / "from-yaml"),
            }
        )
    )
    out = tmp_path / "flag-out"
    result = CliRunner().invoke(main, ["train", "--config", str(config_file), "--lora-r", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert (adapter_config["r"], adapter_config["lora_alpha"]) == (2, 8)
    assert not (tmp_path / "from-yaml").exists()


def test_cli_reports_bad_settings_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["train", "--base", "x", "--data", "y", "--lang", "en", "--out", str(tmp_path / "o"), "--lora-r", "0"]
    )
    assert result.exit_code == 2
    assert result.output.strip() == "error: invalid training setting lora_r: Input should be greater than or equal to 1"
    missing = CliRunner().invoke(main, ["train", "--base", "x", "--lang", "en"])
    assert missing.exit_code == 2 and "invalid training setting data: Field required" in missing.output


def test_two_process_ddp_run_equals_single_process_accumulation(
    llama_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    """Two DDP processes with batch 2 take the same step as one process with batch 2 x 2 accumulated.

    Launched as ``accelerate launch --multi_gpu --num_processes 2``: on a CPU-only machine that runs DDP over
    gloo. (``accelerate launch --cpu --num_processes 2`` starts a single process unless given an MPI
    hostfile, so the torchrun-based launcher is the equivalent here; on CUDA machines the same command
    uses the GPUs.)
    """
    out = tmp_path / "ddp"
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]
    script = shutil.which("adamergex", path=str(Path(sys.executable).parent))
    assert script is not None, "the adamergex console script is not installed (pip install -e .)"
    settings = {"max_steps": 2, "max_length": 32, "batch_size": 2, "learning_rate": 0.02, "lora_dropout": 0.0}
    args = ["train", "--base", str(llama_dir), "--data", str(corpus_file), "--lang", "en", "--out", str(out)]
    for name, value in settings.items():
        args += ["--" + name.replace("_", "-"), str(value)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([*launcher, script, *args], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(f"wrote {out}") == 1  # only the main process reports

    single = TrainingConfig(
        base=str(llama_dir), data=str(corpus_file), lang="en", out=tmp_path / "single", grad_accum=2, **settings
    )
    result = train_adapter(single, progress=False)
    record = read_provenance(out)
    assert record["processes"] == 2 and record["steps"] == 2
    assert record["throughput"]["tokens"] == result.record["throughput"]["tokens"]
    assert record["final_validation_loss"] == pytest.approx(result.validation_loss, rel=1e-5)
    ddp_weights = load_file(str(out / "adapter_model.safetensors"))
    single_weights = load_file(str(single.out / "adapter_model.safetensors"))
    assert ddp_weights.keys() == single_weights.keys()
    for name, tensor in single_weights.items():
        torch.testing.assert_close(ddp_weights[name], tensor, rtol=1e-4, atol=1e-6)


def test_cli_trains_a_task_adapter_with_data_options(gemma_dir: Path, tmp_path: Path) -> None:
    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "training" / "xnli_en.jsonl"
    out = tmp_path / "xnli-en"
    args = ["train", "--base", str(gemma_dir), "--data", "task:xnli", "--lang", "en", "--out", str(out)]
    args += ["--data-option", f"data_files={fixture}", "--max-steps", "2", "--adapter", "ia3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = read_provenance(out)
    assert (record["task"], record["adapter"], record["data"]["kind"]) == ("xnli", "ia3", "task")
    assert record["data"]["train_examples"] == 24 and record["data"]["protocol"] == "harness"
    bad = CliRunner().invoke(main, [*args[:-6], "--data-option", "data_files"])
    assert bad.exit_code == 2 and "must look like KEY=VALUE" in bad.output
