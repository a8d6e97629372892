"""The checks of benchmarks/gpu_throughput.py: scoring speed against lm-evaluation-harness's HFLM on the same items,
bf16 against fp32 argmax agreement, and merges with tensors on the GPU against the same merges on the CPU."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from adamergex.evaluation.loglikelihood import score_multiple_choice

# ---------------------------------------------------------------- scoring


def harness_predictions(model: Any, tokenizer: Any, items: list[tuple[str, list[str], int]], batch: int) -> list[int]:
    """lm-evaluation-harness's HFLM on the same model object: loglikelihood of every (prompt, choice), argmax."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    harness = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch)
    requests = [Instance("loglikelihood", {}, (p, c), i) for i, (p, choices, _) in enumerate(items) for c in choices]
    scores = [value for value, _ in harness.loglikelihood(requests, disable_tqdm=True)]
    return [max(range(4), key=lambda j, i=i: scores[4 * i + j]) for i in range(len(items))]


def adamergex_predictions(model: Any, tokenizer: Any, items: list[tuple[str, list[str], int]], batch: int) -> list[int]:
    scored = score_multiple_choice(model, tokenizer, [(p, c) for p, c, _ in items], batch_size=batch, progress=False)
    return [s.prediction for s in scored]


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    value = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return value, time.perf_counter() - started


def scoring(model: Any, tokenizer: Any, items: list[tuple[str, list[str], int]], batch: int) -> dict[str, Any]:
    """Items/s of adamergex's scorer and the harness on the same items (one warm-up of each first)."""
    for predict in (adamergex_predictions, harness_predictions):
        predict(model, tokenizer, items[: 2 * batch], batch)
    ours, ours_s = timed(lambda: adamergex_predictions(model, tokenizer, items, batch))
    theirs, theirs_s = timed(lambda: harness_predictions(model, tokenizer, items, batch))
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    return {
        "items": len(items),
        "batch_size": batch,
        "adamergex_items_per_s": len(items) / ours_s,
        "harness_items_per_s": len(items) / theirs_s,
        "speedup": theirs_s / ours_s,
        "same_predictions": same,
        "adamergex_predictions": ours,
    }


def precision_agreement(model: Any, tokenizer: Any, items: list[tuple[str, list[str], int]], batch: int) -> dict:
    """Argmax agreement of the scorer in the model's dtype against an fp32 copy, and the fp32 margins."""
    low = score_multiple_choice(model, tokenizer, [(p, c) for p, c, _ in items], batch_size=batch, progress=False)
    reference = copy.deepcopy(model).float()
    high = score_multiple_choice(reference, tokenizer, [(p, c) for p, c, _ in items], batch_size=batch, progress=False)
    del reference
    agree = sum(a.prediction == b.prediction for a, b in zip(low, high, strict=True))
    margins = sorted(sorted(h.loglikelihoods)[-1] - sorted(h.loglikelihoods)[-2] for h in high)
    differences = [
        max(abs(x - y) for x, y in zip(a.loglikelihoods, b.loglikelihoods, strict=True))
        for a, b in zip(low, high, strict=True)
    ]
    return {
        "items": len(items),
        "agreement": agree / len(items),
        "median_fp32_margin": margins[len(margins) // 2],
        "max_abs_loglikelihood_difference": max(differences),
        "median_abs_loglikelihood_difference": sorted(differences)[len(differences) // 2],
    }


# ---------------------------------------------------------------- merges


def merge_equality(folders: list[Path]) -> dict[str, Any]:
    """``adamergex.merge`` of three adapters with tensors on CUDA against the same merge on the CPU."""
    import adamergex
    from adamergex.adapters.io import read_adapter

    def on(adapter: Any, device: str) -> Any:
        modules = {
            name: replace(m, **{k: getattr(m, k).to(device) for k in ("lora_A", "lora_B", "vector") if hasattr(m, k)})
            for name, m in adapter.modules.items()
        }
        return replace(adapter, modules=modules)

    adapters = [read_adapter(folder) for folder in folders]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result: dict[str, Any] = {"kind": adapters[0].kind, "device": device}
    modes = ["concat", "svd"] if adapters[0].kind == "lora" else ["multiplicative", "additive"]
    for mode in modes:
        cpu = adamergex.merge(*adapters, t=0.5, mode=mode).adapter
        gpu = adamergex.merge(*[on(a, device) for a in adapters], t=0.5, mode=mode).adapter
        worst, exact = 0.0, True
        for name, module in cpu.modules.items():
            other = gpu.modules[name]
            for key in ("lora_A", "lora_B", "vector"):
                if hasattr(module, key):
                    a, b = getattr(module, key), getattr(other, key).cpu()
                    exact = exact and torch.equal(a, b)
                    worst = max(worst, float((a - b).abs().max() / a.abs().max().clamp_min(1e-30)))
        if mode == "svd":  # factors are unique up to sign: compare the update B·A
            worst = max(_relative(cpu.modules[n], gpu.modules[n]) for n in cpu.modules)
        result[mode] = {"bitwise_equal": exact, "max_relative_difference": worst}
    return result


def _relative(a: Any, b: Any) -> float:
    first, second = a.delta_weight(), b.delta_weight().cpu()
    return float((first - second).norm() / first.norm().clamp_min(1e-30))
