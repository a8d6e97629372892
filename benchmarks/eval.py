"""Evaluation speed: adamergex against lm-evaluation-harness on the same model, items and batch size.

Two workloads, each run by both tools in the same process on the same model object:

* classification: MultiEmo (4 choices: " positive / negative / neutral / ambivalent"), ``harness`` prompts,
  reviews cut to ``--max-text-tokens`` tokens. adamergex: :func:`adamergex.evaluation.evaluate` (the code
  ``adamergex eval`` runs: load + render + score + metrics with bootstrap). Harness: ``HFLM.loglikelihood`` on
  the same (prompt, choice) pairs, then argmax per item. The two accuracies must be identical.
* generation: greedy continuation of the same MultiEmo prompts (``--max-new-tokens``, stop at a newline).
  adamergex: :func:`adamergex.evaluation.generation.generate_greedy`; harness: ``HFLM.generate_until``.
  The generated texts must be identical.

Run: ``python benchmarks/eval.py [--model gemma-3-270m] [--limit 64] [--batch-size 8]``; needs the
``harness`` extra (lm-eval) and the default model package. Prints a JSON record and a markdown table row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone

import torch


def _race(ours, theirs, repeats: int):
    """Results of ``ours()`` and ``theirs()`` and the best wall time of each, the two runs alternating so that
    load from other processes on a shared machine hits both alike."""
    best = [float("inf"), float("inf")]
    results = [None, None]
    for _ in range(repeats):
        for slot, function in enumerate((ours, theirs)):
            started = time.perf_counter()
            results[slot] = function()
            best[slot] = min(best[slot], time.perf_counter() - started)
    return results[0], best[0], results[1], best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--lang", default="de")
    parser.add_argument("--limit", type=int, default=64, help="classification items")
    parser.add_argument("--generation-limit", type=int, default=32, help="generation prompts")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-text-tokens", type=int, default=160)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs per tool")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from adamergex.data.tasks import get_task
    from adamergex.evaluation import evaluate, generate_greedy
    from adamergex.models import load_base_model

    torch.manual_seed(0)
    loaded = load_base_model(args.model, device=args.device)
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    task = get_task("multiemo")
    load_options = {"max_text_tokens": args.max_text_tokens, "tokenizer": tokenizer}
    items = task.load(args.lang, "test", limit=args.limit, seed=0, **load_options)
    rendered = [task.render(item, "harness") for item in items]
    harness = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size)

    # Warm-up: first calls pay one-off costs (kernel selection, allocator growth) for both tools alike.
    evaluate(model, tokenizer, task, args.lang, limit=2, batch_size=2, progress=False, load_options=load_options)

    requests = [
        Instance("loglikelihood", {}, (item.prompt, choice), index)
        for index, item in enumerate(rendered)
        for choice in item.choices or []
    ]
    ours, ours_seconds, harness_scores, harness_seconds = _race(
        lambda: evaluate(
            model,
            tokenizer,
            task,
            args.lang,
            split="test",
            limit=args.limit,
            batch_size=args.batch_size,
            progress=False,
            load_options=load_options,
        ),
        lambda: harness.loglikelihood(requests, disable_tqdm=True),
        args.repeats,
    )
    per_item, position = [], 0
    for item in rendered:
        scores = [value for value, _ in harness_scores[position : position + len(item.choices or [])]]
        position += len(scores)
        per_item.append(max(range(len(scores)), key=scores.__getitem__))
    harness_accuracy = sum(p == item.gold for p, item in zip(per_item, rendered, strict=True)) / len(rendered)
    ours_predictions = [p["prediction"] for p in ours.predictions]

    prompts = [item.prompt for item in rendered[: args.generation_limit]]
    generation_requests = [
        Instance(
            "generate_until",
            {},
            (prompt, {"until": ["\n"], "max_gen_toks": args.max_new_tokens, "do_sample": False}),
            index,
        )
        for index, prompt in enumerate(prompts)
    ]
    generated, ours_generation_seconds, harness_generated, harness_generation_seconds = _race(
        lambda: generate_greedy(
            model,
            tokenizer,
            prompts,
            max_new_tokens=args.max_new_tokens,
            stop=["\n"],
            batch_size=args.batch_size,
            progress=False,
        ),
        lambda: harness.generate_until(generation_requests, disable_tqdm=True),
        args.repeats,
    )

    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"
        + (f", {torch.cuda.get_device_name()}" if loaded.device.startswith("cuda") else ", CPU only"),
        "model": args.model,
        "device": loaded.device,
        "dtype": str(loaded.dtype),
        "batch_size": args.batch_size,
        "classification": {
            "task": f"multiemo/{args.lang} test, {len(rendered)} items, 4 choices, {args.max_text_tokens} tokens",
            "adamergex_items_per_s": len(rendered) / ours_seconds,
            "harness_items_per_s": len(rendered) / harness_seconds,
            "speedup": harness_seconds / ours_seconds,
            "adamergex_accuracy": ours.metrics["accuracy"].value,
            "harness_accuracy": harness_accuracy,
            "same_predictions": ours_predictions == per_item,
        },
        "generation": {
            "task": f"greedy on {len(prompts)} multiemo/{args.lang} prompts, {args.max_new_tokens} new tokens",
            "adamergex_items_per_s": len(prompts) / ours_generation_seconds,
            "harness_items_per_s": len(prompts) / harness_generation_seconds,
            "speedup": harness_generation_seconds / ours_generation_seconds,
            "same_generations": generated == harness_generated,
        },
    }
    print(json.dumps(record, indent=2))
    cls, gen = record["classification"], record["generation"]
    print(
        f"| {record['date'][:10]} | {record['machine']} | {args.model} | {args.batch_size} "
        f"| {cls['adamergex_items_per_s']:.2f} | {cls['harness_items_per_s']:.2f} | {cls['speedup']:.2f}x "
        f"| {cls['adamergex_accuracy']:.3f} / {cls['harness_accuracy']:.3f} "
        f"| {gen['adamergex_items_per_s']:.2f} | {gen['harness_items_per_s']:.2f} | {gen['speedup']:.2f}x "
        f"| {gen['same_generations']} |"
    )


if __name__ == "__main__":
    main()
