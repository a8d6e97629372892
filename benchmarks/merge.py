"""Merge benchmark: adamergex's CLI against the I/O floor and against PEFT's own route.

Part 1 (Llama-2-7B adapter shapes, no base model needed): three random LoRA adapters (r = 8 on q, k, v, o,
gate, up, down of 32 layers: 19,988,480 parameters each) and three (IA)³ adapters are written; then each merge
mode runs end to end through the CLI (`adamergex merge`, a fresh process: read, merge, write) and, in the same
run, an I/O floor process reads the three inputs and writes one file of the output's size (no arithmetic).
Both are fresh processes that import the same libraries, so start-up costs are the same on both sides.
Peak memory is the child's own high-water RSS (VmHWM), also reported above an idle process that only imports
the same modules.

Part 2 (TinyLlama-1.1B shapes: hidden 2048, intermediate 5632, 22 layers): a random base model is saved once,
then PEFT's route (load base, load three adapters, add_weighted_adapter(..., "cat"), save) is timed against
`adamergex merge --mode concat` on the same adapters, and the two outputs are checked to give the same ΔW.

Usage: python benchmarks/merge.py [--workdir DIR] [--repeats N] [--skip-peft]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors.torch import save_file

MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


def module_shapes(hidden: int, intermediate: int, layers: int, kv_hidden: int | None = None) -> dict[str, tuple]:
    """(out_features, in_features) per module name, as in a Llama."""
    kv = kv_hidden or hidden
    per_layer = {
        "self_attn.q_proj": (hidden, hidden),
        "self_attn.k_proj": (kv, hidden),
        "self_attn.v_proj": (kv, hidden),
        "self_attn.o_proj": (hidden, hidden),
        "mlp.gate_proj": (intermediate, hidden),
        "mlp.up_proj": (intermediate, hidden),
        "mlp.down_proj": (hidden, intermediate),
    }
    return {f"model.layers.{i}.{name}": shape for i in range(layers) for name, shape in per_layer.items()}


def write_lora(folder: Path, shapes: dict[str, tuple], rank: int, seed: int, base: str) -> int:
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, (out, inp) in shapes.items():
        tensors[f"base_model.model.{name}.lora_A.weight"] = torch.randn(rank, inp, generator=generator) / inp**0.5
        tensors[f"base_model.model.{name}.lora_B.weight"] = torch.randn(out, rank, generator=generator) * 0.01
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base,
        "r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": list(MODULES),
        "use_rslora": False,
        "rank_pattern": {},
        "alpha_pattern": {},
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return sum(t.numel() for t in tensors.values())


def write_ia3(folder: Path, shapes: dict[str, tuple], seed: int, base: str) -> int:
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, (out, inp) in shapes.items():
        if name.endswith(("k_proj", "v_proj")):
            tensors[f"base_model.model.{name}.ia3_l"] = 1 + 0.1 * torch.randn(out, 1, generator=generator)
        elif name.endswith("down_proj"):
            tensors[f"base_model.model.{name}.ia3_l"] = 1 + 0.1 * torch.randn(1, inp, generator=generator)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "IA3",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base,
        "target_modules": ["k_proj", "v_proj", "down_proj"],
        "feedforward_modules": ["down_proj"],
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return sum(t.numel() for t in tensors.values())


FLOOR = """
import sys, torch
from safetensors import safe_open
from safetensors.torch import save_file
import adamergex.cli.adapters  # the same imports as `adamergex merge`
inputs, out, numel = sys.argv[1:4], sys.argv[4], int(sys.argv[5])
for path in inputs:
    with safe_open(path, framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
save_file({"x": torch.empty(numel, dtype=torch.float32)}, out)
"""

IDLE = "import adamergex.cli.adapters"


def _high_water_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_process(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a fresh process.

    The peak is the child's own VmHWM, polled every 10 ms until it exits (``ru_maxrss`` would also count the
    parent's memory copied at fork time, which Linux keeps across exec).
    """
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=errors)
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, _high_water_mib(process.pid) or 0.0)
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed: {errors.read().decode()[-2000:]}")
    return elapsed, peak


def best_of(repeats: int, command: list[str], cleanup: Path | None = None) -> tuple[float, float]:
    results = []
    for _ in range(repeats):
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True) if cleanup.is_dir() else cleanup.unlink(missing_ok=True)
        results.append(run_process(command))
    return min(r[0] for r in results), max(r[1] for r in results)


def output_numel(folder: Path) -> int:
    from safetensors import safe_open

    with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as handle:
        return sum(math.prod(handle.get_slice(key).get_shape()) for key in handle.keys())  # noqa: SIM118


def part_one(work: Path, repeats: int) -> list[dict]:
    shapes = module_shapes(4096, 11008, 32)
    base = "meta-llama/Llama-2-7b-hf"
    loras = [work / f"lora-{n}" for n in ("task", "target", "source")]
    ia3s = [work / f"ia3-{n}" for n in ("task", "target", "source")]
    counts = [write_lora(p, shapes, 8, seed, base) for seed, p in enumerate(loras)]
    assert counts == [19_988_480] * 3, counts
    for seed, p in enumerate(ia3s):
        write_ia3(p, shapes, 10 + seed, base)
    idle_s, idle_mb = best_of(repeats, [sys.executable, "-c", IDLE])
    rows = []
    cases = [("lora", "concat", loras, []), ("lora", "svd", loras, ["--rank", "8"]), ("lora", "factor", loras, []),
             ("ia3", "multiplicative", ia3s, []), ("ia3", "additive", ia3s, [])]  # fmt: skip
    for kind, mode, inputs, extra in cases:
        out = work / f"out-{kind}-{mode}"
        command = [sys.executable, "-m", "adamergex", "merge", "--task", str(inputs[0]), "--ref-target",
                   str(inputs[1]), "--ref-source", str(inputs[2]), "--t", "1.0", "--out", str(out), "--mode", mode,
                   "--force", *extra]  # fmt: skip
        merge_s, merge_mb = best_of(repeats, command)
        floor_out = work / "floor.safetensors"
        files = [str(p / "adapter_model.safetensors") for p in inputs]
        floor_command = [sys.executable, "-c", FLOOR, *files, str(floor_out), str(output_numel(out))]
        floor_s, floor_mb = best_of(repeats, floor_command, floor_out)
        input_mb = sum(Path(f).stat().st_size for f in files) / 2**20
        rows.append({
            "kind": kind, "mode": mode, "merge_s": merge_s, "floor_s": floor_s, "ratio_to_floor": merge_s / floor_s,
            "merge_minus_startup_s": merge_s - idle_s, "floor_minus_startup_s": floor_s - idle_s,
            "peak_rss_mb": merge_mb, "peak_above_idle_mb": merge_mb - idle_mb, "inputs_mb": input_mb,
            "peak_above_idle_over_inputs": (merge_mb - idle_mb) / input_mb, "floor_peak_rss_mb": floor_mb,
            "idle_s": idle_s, "idle_rss_mb": idle_mb,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


PEFT_ROUTE = """
import sys, time, torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
base, task, target, source, out = sys.argv[1:6]
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
model = PeftModel.from_pretrained(model, task, adapter_name="task")
model.load_adapter(target, adapter_name="target")
model.load_adapter(source, adapter_name="source")
model.add_weighted_adapter(["task", "target", "source"], [1.0, 1.0, -1.0], "merged", combination_type="cat")
model.save_pretrained(out, selected_adapters=["merged"])
"""


def part_two(work: Path, repeats: int) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                         num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048)  # fmt: skip
    base = work / "tinyllama-shaped-base"
    if not (base / "config.json").is_file():
        with torch.device("cpu"):
            model = LlamaForCausalLM(config)
        model.save_pretrained(base)
        del model
    shapes = module_shapes(2048, 5632, 22, kv_hidden=256)
    loras = [work / f"tl-lora-{n}" for n in ("task", "target", "source")]
    for seed, p in enumerate(loras):
        write_lora(p, shapes, 8, 100 + seed, str(base))
    peft_out = work / "tl-peft-out"
    peft_s, peft_mb = best_of(1, [sys.executable, "-c", PEFT_ROUTE, str(base), *map(str, loras), str(peft_out)],
                              peft_out)  # fmt: skip
    ours_out = work / "tl-ours-out"
    command = [sys.executable, "-m", "adamergex", "merge", "--task", str(loras[0]), "--ref-target", str(loras[1]),
               "--ref-source", str(loras[2]), "--t", "1.0", "--out", str(ours_out), "--force"]  # fmt: skip
    ours_s, ours_mb = best_of(repeats, command)

    from adamergex.adapters.io import read_adapter

    ours = read_adapter(ours_out)
    theirs = read_adapter(peft_out / "merged")
    worst = 0.0
    for name in ("model.layers.0.self_attn.q_proj", "model.layers.21.mlp.down_proj"):
        a, b = ours.modules[name].delta_weight(), theirs.modules[name].delta_weight()
        worst = max(worst, float((a - b).abs().max() / b.abs().max()))
    row = {"peft_route_s": peft_s, "adamergex_s": ours_s, "speedup": peft_s / ours_s, "peft_peak_rss_mb": peft_mb,
           "adamergex_peak_rss_mb": ours_mb, "max_rel_delta_difference": worst}  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=None, help="Scratch folder (default: a temporary one).")
    parser.add_argument("--repeats", type=int, default=3, help="Best of N for each timing.")
    parser.add_argument("--skip-peft", action="store_true", help="Skip part 2 (needs ~10 GB RAM and disk).")
    parser.add_argument("--json", type=Path, default=None, help="Write all results here.")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="adamergex-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "torch": torch.__version__,
        "llama2_7b_shapes": part_one(work, args.repeats),
    }
    if not args.skip_peft:
        results["tinyllama_vs_peft"] = part_two(work, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
