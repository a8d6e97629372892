"""The causal-LM training step with the plain and the fused vocabulary loss, and the fraction of peak.

One reference-task step of ``adamergex train`` (LoRA r 8 on the seven projections, forward and backward,
optimizer excluded) on the real base model, with the loss computed two ways in alternation, so both see the
same machine state:

* ``plain``: full ``positions × vocab`` logits, then ``cross_entropy`` (autograd keeps the logits);
* ``fused``: ``adamergex.training.loss``'s chunked linear cross-entropy (gradient formed in the forward pass).

The fraction of peak divides the step's model FLOPs — ``4 · tokens · (P_body + d · V)`` for a frozen base
(forward 2·N·P, backward to activations 2·N·P; the LoRA weight gradients are negligible) — by the step time
and by the fp32 matmul peak measured in the same process (a square ``torch.mm``). Usage::

    python benchmarks/loss.py --base gemma-3-270m --batch-size 4 --max-length 128 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import datetime, timezone

import torch
from peft import LoraConfig, TaskType, get_peft_model

from adamergex.models import load_base_model
from adamergex.training import default_lora_targets
from adamergex.training.loss import forward_loss


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of a square matrix product on this machine, now."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="gemma-3-270m")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    base = load_base_model(args.base)
    model = get_peft_model(base.model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16,
                                                  target_modules=default_lora_targets(base.model)))  # fmt: skip
    model.train()
    causal_lm = model.get_base_model()
    torch.manual_seed(0)
    vocab = causal_lm.get_output_embeddings().weight.shape[0]
    ids = torch.randint(3, vocab, (args.batch_size, args.max_length))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    tokens = ids.numel()
    hidden = causal_lm.config.hidden_size
    head = vocab * hidden
    body = sum(p.numel() for n, p in causal_lm.named_parameters() if "embed" not in n and "lora" not in n)
    flops = 4 * tokens * (body + head)

    def step(fused: bool) -> float:
        start = time.perf_counter()
        loss = forward_loss(model, batch, causal_lm if fused else None)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    step(False), step(True)  # warm-up
    times: dict[str, list[float]] = {"plain": [], "fused": []}
    peaks = []
    for _ in range(args.repeats):
        peaks.append(matmul_peak())
        times["plain"].append(step(False))
        times["fused"].append(step(True))
    peak = statistics.median(peaks)
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "base": args.base,
        "batch": f"{args.batch_size} x {args.max_length} tokens",
        "model_gflop_per_step": flops / 1e9,
        "output_layer_share_of_flops": head / (body + head),
        "matmul_peak_gflops": peak,
    }
    for name, values in times.items():
        median = statistics.median(values)
        result[name] = {
            "step_s_median": median,
            "tokens_per_s": tokens / median,
            "fraction_of_peak": flops / median / 1e9 / peak,
        }
    result["fused_speedup"] = result["plain"]["step_s_median"] / result["fused"]["step_s_median"]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
