"""Training throughput: ``adamergex train`` against a plain PEFT + transformers ``Trainer`` loop.

Same base model, same UDHR documents, same LoRA settings (r 8, alpha 16, dropout 0.05, the seven projections),
same learning rate, schedule, batch size, sequence length, seed and number of steps, all in one process:

* ``trainer``: the usual recipe — one example per document (truncated to ``--max-length``), padded per batch
  by ``DataCollatorForLanguageModeling``, trained by ``transformers.Trainer`` on a ``get_peft_model`` model;
* ``adamergex-unpacked``: adamergex's loop on exactly those padded examples (loop overhead alone);
* ``adamergex``: adamergex's reference task, the same tokens packed into full ``--max-length`` blocks.

Reported per run: *useful* tokens/s (non-padding tokens, i.e. text actually learnt from) and all tokens/s
(padding included), timed from the end of the first step to the end of the last (the first step pays
one-off warm-up costs), plus the share of padding. Usage::

    python benchmarks/train.py --base smollm2-135m --lang de --steps 8 --batch-size 4 --max-length 128
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, TaskType, get_peft_model
from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments

from adamergex.data.reference import load_reference_documents
from adamergex.models import load_base_model
from adamergex.training import TrainingConfig, TrainingData, default_lora_targets, train_adapter
from adamergex.training.data import Example, examples_fingerprint, reference_examples


class _StepClock(TrainerCallback):
    """Timestamps of the end of each optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter())


class _CountingCollator(DataCollatorForLanguageModeling):
    """Counts real and padded tokens of every batch it builds, in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[tuple[int, int]] = []

    def __call__(self, features: list[dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
        batch = super().__call__(features, *args, **kwargs)
        self.batches.append((int(batch["attention_mask"].sum()), int(batch["attention_mask"].numel())))
        return batch


def _rates(times: list[float], real: list[int], total: list[int]) -> dict[str, float]:
    """Tokens/s over steps 2..N (from the end of step 1 to the end of step N)."""
    seconds = times[-1] - times[0]
    useful, padded = sum(real[1:]), sum(total[1:])
    return {
        "seconds": seconds,
        "useful_tokens_per_s": useful / seconds,
        "all_tokens_per_s": padded / seconds,
        "padding_share": 1 - useful / padded,
    }


def run_trainer(base: Any, documents: list[list[int]], args: argparse.Namespace, lr: float) -> dict[str, float]:
    """Plain PEFT + transformers Trainer, one padded example per document."""
    from datasets import Dataset

    targets = default_lora_targets(base.model)
    lora = LoraConfig(
        task_type=TaskType.CAUSAL_LM, r=8, lora_alpha=16, lora_dropout=0.05, bias="none", target_modules=targets
    )
    model = get_peft_model(base.model, lora)
    dataset = Dataset.from_dict({"input_ids": documents, "attention_mask": [[1] * len(d) for d in documents]})
    collator = _CountingCollator(tokenizer=base.tokenizer, mlm=False)
    clock = _StepClock()
    with tempfile.TemporaryDirectory() as work:
        training_args = TrainingArguments(
            output_dir=work,
            per_device_train_batch_size=args.batch_size,
            max_steps=args.steps,
            learning_rate=lr,
            lr_scheduler_type="cosine",
            warmup_steps=round(0.03 * args.steps),  # adamergex: round(warmup_ratio * steps)
            max_grad_norm=1.0,
            weight_decay=0.0,
            seed=args.seed,
            logging_steps=args.steps,
            save_strategy="no",
            report_to=[],
            use_cpu=not torch.cuda.is_available(),
            bf16=base.dtype == torch.bfloat16,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model, args=training_args, train_dataset=dataset, data_collator=collator, callbacks=[clock]
        )
        trainer.train()
    base.model = model.unload()
    # Trainer's dataloader may build one batch ahead; the first `steps` batches are the trained ones.
    real = [r for r, _ in collator.batches[: args.steps]]
    total = [t for _, t in collator.batches[: args.steps]]
    return _rates(clock.times, real, total)


def run_adamergex(
    base: Any, examples: list[Example], args: argparse.Namespace, lr: float, name: str
) -> dict[str, float]:
    """adamergex's training loop on the given examples (no validation, so only training is timed)."""
    data = TrainingData(
        kind="reference",
        name=name,
        lang=args.lang,
        train=examples,
        validation=[],
        fingerprint=examples_fingerprint({"benchmark": name}, examples, []),
    )
    times: list[float] = []
    real: list[int] = []
    with tempfile.TemporaryDirectory() as work:
        config = TrainingConfig(
            base=args.base,
            data=name,
            lang=args.lang,
            out=Path(work) / "adapter",
            max_length=args.max_length,
            batch_size=args.batch_size,
            max_steps=args.steps,
            learning_rate=lr,
            seed=args.seed,
            save_steps=10**9,
        )

        def clock(step: int, record: dict[str, Any]) -> None:
            times.append(time.perf_counter())
            real.append(record["tokens"])

        train_adapter(config, base=base, data=data, callbacks=(clock,), progress=False)
    # Padded size of each step's batch: the plan is deterministic, so recompute it from the lengths.
    from adamergex.training.data import batch_plan

    plan = batch_plan(
        [len(e.input_ids) for e in examples], args.batch_size, seed=args.seed, epoch=0, group_by_length=False
    )
    n = len(plan)
    total = [max(len(examples[i].input_ids) for i in plan[s % n]) * len(plan[s % n]) for s in range(args.steps)]
    return _rates(times, real, total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="smollm2-135m")
    parser.add_argument("--lang", default="de")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    lr = 2e-4

    base = load_base_model(args.base)
    tokenizer = base.tokenizer
    texts = load_reference_documents("udhr", args.lang)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    documents = [(bos + tokenizer(text, add_special_tokens=False)["input_ids"])[: args.max_length] for text in texts]
    stream_docs = [bos + tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    padded_examples = [Example(input_ids=d, labels=d) for d in documents]
    packed_examples = reference_examples(stream_docs, args.max_length, packing=True)

    results = {
        "trainer": run_trainer(base, documents, args, lr),
        "adamergex-unpacked": run_adamergex(base, padded_examples, args, lr, "unpacked"),
        "adamergex": run_adamergex(base, packed_examples, args, lr, "packed"),
    }
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}",
        "settings": {**vars(args), "json": None, "learning_rate": lr, "documents": len(texts)},
        "results": results,
    }
    print(json.dumps(report, indent=1))
    print(f"{'run':<20}{'useful tok/s':>14}{'all tok/s':>12}{'padding':>10}")
    for name, row in results.items():
        print(
            f"{name:<20}{row['useful_tokens_per_s']:>14.1f}{row['all_tokens_per_s']:>12.1f}{row['padding_share']:>10.1%}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
