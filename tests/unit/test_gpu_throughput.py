"""benchmarks/gpu_throughput.py on the CPU with tiny stand-ins for both shapes: every section runs and records
numbers (no time limits asserted), the FLOP count matches a hand count, and the scorer agrees with the harness."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _load():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the script imports its sibling modules, as when run
    spec = importlib.util.spec_from_file_location("gpu_throughput", ROOT / "benchmarks" / "gpu_throughput.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_throughput"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gpu_throughput = _load()
import gpu_checks  # noqa: E402  (on the path only after _load)
import gpu_workload  # noqa: E402


def test_model_flops_match_a_hand_count() -> None:
    config = gpu_workload.shape_config("tiny-llama")  # d 32, ff 64, 2 layers, 2 heads of 16, 1 KV head
    body = 2 * (2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 64)
    n, scored, adapter = 10, 3, 100
    matrices = 2 * body * n + 2 * 32 * 512 * scored  # frozen: forward + input gradient, no weight gradient
    attention = 4 * 32 * (n * (n + 1) // 2) * 2  # two layers; forward + both operands' gradients
    assert gpu_workload.model_flops(config, [n], [scored], adapter) == 2 * matrices + 3 * attention + 6 * adapter * n


def test_sliding_window_caps_the_attended_pairs() -> None:
    assert gpu_workload._pairs(5, None) == 15
    assert gpu_workload._pairs(5, 2) == 3 + 3 * 2  # rows 1, 2 then 2 keys each


@pytest.mark.filterwarnings("ignore")
def test_the_whole_script_runs_on_a_tiny_shape(tmp_path: Path) -> None:
    """Every section on a tiny Gemma-3 (sliding-window and global layers, tied output layer), fp32 on the CPU."""
    args = argparse.Namespace(
        out=tmp_path, budget=10**6, shapes=["tiny-gemma"], pytest=False, liger=False, compile=False, only=None
    )
    report = gpu_throughput.run(args)
    results = json.loads((tmp_path / "gpu_throughput.json").read_text())
    errors = {name: value["error"] for name, value in results.items() if isinstance(value, dict) and "error" in value}
    assert not errors
    for case in (
        "ref_lora_trainer",
        "ref_lora_adamergex",
        "task_lora_adamergex",
        "task_lora_padded",
        "ref_lora_eager_attention",
        "task_ia3_trainer",
    ):
        record = results[f"tiny-gemma/train/{case}"]
        assert record["tokens_per_s"] > 0 and record["mfu_datasheet"] > 0
    scores = results["tiny-gemma/score/vs_harness"]
    # fp32 on the CPU: the harness and adamergex pick the same choice for every item.
    assert scores["same_predictions"] == scores["items"] == gpu_throughput.PLANS["tiny-gemma"].items
    sentences = results["tiny-gemma/score/vs_harness_sentence_choices"]  # multi-token choices: the shared prompt
    assert sentences["same_predictions"] == sentences["items"] == gpu_throughput.PLANS["tiny-gemma"].items // 2
    assert results["tiny-gemma/score/bf16_vs_fp32"]["agreement"] == 1.0  # fp32 against fp32 on the CPU
    for kind, modes in (("lora", ("concat", "svd")), ("ia3", ("multiplicative", "additive"))):
        for mode in modes:
            assert results[f"merge/gpu_vs_cpu_{kind}"][mode]["max_relative_difference"] < 1e-5
    assert "ref_lora_trainer" in gpu_throughput.summary_table(report.results)


@pytest.mark.filterwarnings("ignore")
def test_scorer_and_harness_pick_the_same_choices_on_a_tiny_llama() -> None:
    model = gpu_workload.build_model("tiny-llama", "cpu", torch.float32)
    tokenizer = gpu_workload.synthetic_tokenizer(300)
    result = gpu_checks.scoring(model, tokenizer, gpu_workload.review_items(12, 8, 0), 4)
    assert result["same_predictions"] == result["items"] == 12
    assert result["adamergex_items_per_s"] > 0 and result["harness_items_per_s"] > 0


def test_only_runs_the_sections_it_names(tmp_path: Path) -> None:
    args = argparse.Namespace(
        out=tmp_path, budget=10**6, shapes=["tiny-gemma"], pytest=False, liger=False, compile=False, only="score/"
    )
    results = gpu_throughput.run(args).results
    ran = {name for name in results if name != "elapsed_s"}
    assert ran == {"tiny-gemma/build"} | {
        f"tiny-gemma/score/{name}" for name in ("vs_harness", "vs_harness_sentence_choices", "bf16_vs_fp32")
    }
