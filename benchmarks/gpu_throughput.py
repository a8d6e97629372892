"""GPU throughput of adamergex's own training and scoring at Llama-2-7B and Gemma-3-270M shapes, against the
plain PEFT + transformers ``Trainer`` loop and lm-evaluation-harness's ``HFLM`` on the same batches and items.

Both shapes are built from configs directly on the device in bf16 (random weights: nothing is downloaded) and
stay resident (≈14 GB together). A synthetic byte-level BPE tokenizer and synthetic four-way review items
stand in for data. What is timed is the package's code: ``train_adapter`` (with its default execution settings,
then with one lever changed at a time) and ``score_multiple_choice``.

Model FLOPs (stated in every record): for a LoRA/(IA)³ step on a frozen base, per example of ``n`` tokens with
``s`` scored positions, ``2 · (2·P_body·n + 2·d·V·s) + 3 · A(n) + 6·P_adapter·n``: the frozen matrices forward
and input-gradient (a frozen weight gets no weight-gradient product), attention (no weights: both operands'
gradients) three times its forward, the adapter's matrices forward, input- and weight-gradient. ``P_body`` counts
the decoder's matrix weights, ``d·V`` the output layer at the scored positions, ``A(n) = 4·h·d_h·pairs`` causal
attention over the ``(query, key)`` pairs each layer attends (a sliding window caps them). The ``6·N``
convention (``N`` = all parameters, as if fully fine-tuned) is reported beside it. Utilisation divides by the
datasheet dense bf16 peak (989 TFLOP/s on an H100/H200) and by an 8192³ bf16 matmul measured in the same run.
(Runs before 2026-12-04 17:40 UTC used ``3 ·`` on every forward term, which overcounts by about 1.45×.)

Every section runs in ``try``/``except``: an error is recorded and the next section starts. Results are written
to ``OUT/gpu_throughput.json`` after every section, so a run cut short still leaves what it measured.

Usage: python benchmarks/gpu_throughput.py --out OUT [--budget 390] [--shapes llama-2-7b gemma-3-270m]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from gpu_checks import merge_equality, precision_agreement, scoring, timed
from gpu_workload import (
    build_model,
    choice_items,
    example_flops,
    loaded,
    reference_data,
    review_items,
    synthetic_tokenizer,
    task_data,
)
from transformers import (
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from adamergex.models.loading import LoadedModel
from adamergex.training import TrainingConfig, TrainingData, build_peft_config, train_adapter
from adamergex.training.data import Example, batch_plan, collate
from adamergex.training.speed import Execution, execution_for

DATASHEET_BF16_TFLOPS = 989.0

# ---------------------------------------------------------------- timing


class StepClock(TrainerCallback):
    """End time of every optimizer step (device synchronised); usable as a Trainer callback or adamergex callback."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def _tick(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())

    def __call__(self, step: int, record: dict[str, Any]) -> None:
        self._tick()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._tick()


@dataclass
class Case:
    """One training measurement: which code, which data, which settings."""

    name: str
    runner: str  # "adamergex" or "trainer"
    data: TrainingData
    adapter: str = "lora"
    batch_size: int = 1
    warmup: int = 2
    steps: int = 4
    execution: Execution | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _step_batches(case: Case) -> list[list[Example]]:
    """The examples of each step, in the order both runners see them (adamergex's batch plan)."""
    lengths = [len(e.input_ids) for e in case.data.train]
    plan = batch_plan(lengths, case.batch_size, seed=0, epoch=0, group_by_length=case.data.group_by_length)
    total = case.warmup + case.steps
    if len(plan) < total:
        raise ValueError(f"{case.name}: {len(plan)} batches, {total} steps needed")
    return [[case.data.train[i] for i in plan[s]] for s in range(total)]


def _config(case: Case, work: Path) -> TrainingConfig:
    return TrainingConfig(
        base="random",
        data=case.data.name,
        lang="en",
        out=work / case.name,
        force=True,
        adapter=case.adapter,
        batch_size=case.batch_size,
        max_steps=case.warmup + case.steps,
        save_steps=10**9,
        learning_rate=2e-4 if case.adapter == "lora" else 3e-3,
        **case.settings,
    )


def run_adamergex(base: LoadedModel, case: Case, work: Path) -> StepClock:
    clock = StepClock()
    train_adapter(
        _config(case, work), base=base, data=case.data, callbacks=(clock,), progress=False, execution=case.execution
    )
    return clock


class _InOrderTrainer(Trainer):
    """``Trainer`` reading its dataset in order, so its batches are adamergex's (the dataset is pre-ordered)."""

    def _get_train_sampler(self, *args: Any, **kwargs: Any) -> torch.utils.data.Sampler:
        return torch.utils.data.SequentialSampler(self.train_dataset)


def run_trainer(base: LoadedModel, case: Case, work: Path) -> StepClock:
    """The plain recipe: ``get_peft_model`` with the same adapter config, ``Trainer`` with bf16 on CUDA."""
    from accelerate.state import AcceleratorState
    from peft import get_peft_model

    AcceleratorState._reset_state(reset_partial_state=True)  # adamergex's last run left its accelerator state
    config = _config(case, work)
    model = get_peft_model(base.model, build_peft_config(base.model, config))
    rows = [{"input_ids": e.input_ids, "labels": e.labels} for batch in _step_batches(case) for e in batch]
    pad = int(base.tokenizer.pad_token_id)

    def collator(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return collate([Example(f["input_ids"], f["labels"]) for f in features], pad)

    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(work / "trainer"),
        per_device_train_batch_size=case.batch_size,
        max_steps=case.warmup + case.steps,
        learning_rate=config.peak_learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        max_grad_norm=1.0,
        seed=0,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        use_cpu=not cuda,
        bf16=cuda and base.dtype == torch.bfloat16,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    clock = StepClock()
    trainer = _InOrderTrainer(model=model, args=args, train_dataset=rows, data_collator=collator, callbacks=[clock])
    try:
        trainer.train()
        clock.optim = str(args.optim)  # type: ignore[attr-defined]
    finally:
        del trainer
        base.model = model.unload()
    return clock


def measure(base: LoadedModel, case: Case, work: Path, peak: float | None) -> dict[str, Any]:
    """Tokens/s and utilisation over the timed steps (after ``warmup`` steps), and the step's peak memory."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    clock = (run_adamergex if case.runner == "adamergex" else run_trainer)(base, case, work)
    batches = _step_batches(case)[case.warmup :]
    seconds = clock.times[-1] - clock.times[case.warmup - 1]
    tokens = sum(len(e.input_ids) for batch in batches for e in batch)
    adapter_parameters = _adapter_parameters(base, case) if case.adapter == "lora" else 0
    flops = sum(example_flops(base.model.config, batch, adapter_parameters) for batch in batches)
    parameters = sum(p.numel() for p in base.model.parameters())
    execution = case.execution or execution_for(base.device)
    result = {
        "runner": case.runner,
        "adapter": case.adapter,
        "batch_size": case.batch_size,
        "timed_steps": case.steps,
        "seconds_per_step": seconds / case.steps,
        "tokens_per_s": tokens / seconds,
        "model_tflops_per_s": flops / seconds / 1e12,
        "mfu_datasheet": flops / seconds / 1e12 / DATASHEET_BF16_TFLOPS,
        "mfu_6n_datasheet": 6 * parameters * tokens / seconds / 1e12 / DATASHEET_BF16_TFLOPS,
        "settings": case.settings,
        "execution": execution.record() if case.runner == "adamergex" else None,
        "trainer_optim": getattr(clock, "optim", None),
    }
    if peak:
        result["mfu_measured_peak"] = result["model_tflops_per_s"] / peak
    if torch.cuda.is_available():
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def _adapter_parameters(base: LoadedModel, case: Case) -> int:
    config = base.model.config
    d, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or d // heads
    r = int(case.settings.get("lora_r", 8))
    sides = (d + heads * head_dim) * 2 + (d + kv * head_dim) * 2 + (d + ff) * 3  # q, o, k, v, gate, up, down
    return layers * r * sides


# ---------------------------------------------------------------- orchestration


class Report:
    """Results by section name, written to ``out`` after every section; errors recorded, never raised."""

    def __init__(self, out: Path, budget_s: float, only: str | None = None) -> None:
        self.out, self.started, self.budget_s = out, time.perf_counter(), budget_s
        self.only = re.compile(only) if only else None
        self.results: dict[str, Any] = {}
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.started)

    def section(self, name: str, function: Callable[[], Any], *, needs_s: float = 0.0) -> Any:
        if self.only is not None and not self.only.search(name) and not name.endswith("/build"):
            return None
        if self.left() < needs_s:
            self.results[name] = {"skipped": f"{self.left():.0f} s of the budget left, {needs_s:.0f} s needed"}
            print(f"[{self.elapsed():6.1f}s] skip {name}", flush=True)
            return None
        print(f"[{self.elapsed():6.1f}s] {name} ...", flush=True)
        try:
            value = function()
            self.results[name] = value
            print(f"[{self.elapsed():6.1f}s] {name}: {_short(value)}", flush=True)
        except Exception as error:  # one failure must not cost the rest of the run
            self.results[name] = {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()}
            print(f"[{self.elapsed():6.1f}s] {name} FAILED: {type(error).__name__}: {error}", flush=True)
            value = None
        finally:
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        self.write()
        return value

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def write(self) -> None:
        self.results["elapsed_s"] = self.elapsed()
        (self.out / "gpu_throughput.json").write_text(json.dumps(self.results, indent=1, default=str))


def _short(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)[:200]
    keys = ("tokens_per_s", "mfu_datasheet", "seconds_per_step", "speedup", "agreement", "peak_memory_gib")
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in value.items() if k in keys}
    return json.dumps(shown or {k: v for k, v in value.items() if not isinstance(v, list)}, default=str)[:300]


def matmul_tflops(n: int, device: str) -> float:
    """Median TFLOP/s of an ``n``³ bf16 matrix product on random data (3 warm-ups, 10 timed)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    times = []
    for index in range(13):
        _, seconds = timed(lambda: a @ b)
        if index >= 3:
            times.append(seconds)
    return 2 * n**3 / sorted(times)[len(times) // 2] / 1e12


def environment() -> dict[str, Any]:
    import peft
    import transformers

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["memory_gib"] = torch.cuda.get_device_properties(0).total_memory / 2**30
    for name in ("lm_eval", "liger_kernel", "accelerate", "triton"):
        try:
            info[name] = __import__(name).__version__
        except Exception as error:
            info[name] = f"unavailable ({type(error).__name__})"
    return info


@dataclass
class Plan:
    """Sizes of one shape's cases."""

    shape: str
    block: int  # reference block length
    ref_batch: int
    task_batch: int
    items: int
    score_batch: int
    words: int = 120  # words per review: ~130-200 tokens with the 4,000-token tokenizer
    warmup: int = 2
    steps: int = 4


PLANS = {
    "llama-2-7b": Plan("llama-2-7b", 4096, 2, 16, 256, 32, warmup=2, steps=4),
    "gemma-3-270m": Plan("gemma-3-270m", 4096, 4, 16, 512, 32, warmup=3, steps=6),
    "tiny-llama": Plan("tiny-llama", 32, 2, 4, 8, 4, words=8, warmup=1, steps=2),
    "tiny-gemma": Plan("tiny-gemma", 32, 2, 4, 8, 4, words=8, warmup=1, steps=2),
}


def training_cases(plan: Plan, reference: TrainingData, task: TrainingData) -> dict[str, list[Case]]:
    """Cases by priority tier: the core comparison, then one lever at a time, then (IA)³."""
    w, s = plan.warmup, plan.steps
    ref = {"data": reference, "batch_size": plan.ref_batch, "warmup": w, "steps": s}
    tsk = {"data": task, "batch_size": plan.task_batch, "warmup": w, "steps": s + 2}
    # Liger patches the model instance for good, so every case runs without it and its lever runs last.
    default = replace(execution_for("cuda" if torch.cuda.is_available() else "cpu"), liger_kernels=False)
    return {
        "core": [
            Case("ref_lora_trainer", "trainer", **ref),
            Case("ref_lora_adamergex", "adamergex", execution=default, **ref),
            Case("task_lora_trainer", "trainer", **tsk),
            Case("task_lora_adamergex", "adamergex", execution=default, **tsk),
        ],
        "levers": [
            Case("ref_lora_input_cast_on", "adamergex", execution=replace(default, adapter_input_cast=True), **ref),
            Case("ref_lora_adamw_foreach", "adamergex", execution=replace(default, fused_adamw=False), **ref),
            Case("ref_lora_all_levers_off", "adamergex", execution=Execution(), **ref),
            Case("task_lora_padded", "adamergex", execution=replace(default, packed_task_batches=False), **tsk),
            Case("ref_lora_fused_loss", "adamergex", execution=default, settings={"fused_loss": True}, **ref),
            Case(
                "ref_lora_checkpointing",
                "adamergex",
                execution=default,
                settings={"gradient_checkpointing": True},
                **ref,
            ),
            Case("ref_lora_microbatch_1", "adamergex", execution=default, **{**ref, "batch_size": 1, "steps": 2 * s}),
            Case(
                "ref_lora_microbatch_x2",
                "adamergex",
                execution=default,
                **{**ref, "batch_size": 2 * plan.ref_batch, "steps": max(2, s // 2)},
            ),
        ],
        "ia3": [
            Case("ref_ia3_trainer", "trainer", adapter="ia3", **ref),
            Case("ref_ia3_adamergex", "adamergex", adapter="ia3", execution=default, **ref),
            Case("task_ia3_trainer", "trainer", adapter="ia3", **tsk),
            Case("task_ia3_adamergex", "adamergex", adapter="ia3", execution=default, **tsk),
        ],
    }


def eager_attention_case(base: LoadedModel, plan: Plan, reference: TrainingData, work: Path, peak: float | None):
    """The SDPA lever: the same default run with transformers' eager attention (one sequence per micro-batch)."""
    base.model.set_attn_implementation("eager")
    try:
        case = Case("ref_lora_eager_attention", "adamergex", reference, batch_size=1, warmup=1, steps=2)
        return measure(base, case, work, peak)
    finally:
        base.model.set_attn_implementation("sdpa")


def liger_case(base: LoadedModel, plan: Plan, reference: TrainingData, work: Path, peak: float | None):
    """The CUDA defaults with Liger-Kernel's RMSNorm, RoPE and gated-MLP kernels, which ``train_adapter`` patches
    into the model instance (``training.speed.apply_liger_kernels``)."""
    execution = replace(execution_for("cuda"), liger_kernels=True)
    case = Case(
        "ref_lora_liger",
        "adamergex",
        reference,
        batch_size=plan.ref_batch,
        warmup=plan.warmup,
        steps=plan.steps,
        execution=execution,
    )
    return measure(base, case, work, peak)


def compile_case(base: LoadedModel, plan: Plan, reference: TrainingData, work: Path, peak: float | None):
    """Regional ``torch.compile`` of every decoder layer (traced at the first step, after PEFT wraps them)."""
    for module in base.model.modules():
        if type(module).__name__.endswith("DecoderLayer"):
            module.compile()
    case = Case("ref_lora_compiled", "adamergex", reference, batch_size=plan.ref_batch, warmup=3, steps=plan.steps)
    return measure(base, case, work, peak)


def run(args: argparse.Namespace) -> Report:
    report = Report(args.out, args.budget, args.only)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    work = Path(tempfile.mkdtemp(prefix="gpu-throughput-"))
    report.section("environment", environment)
    peak = report.section("matmul_8192_bf16_tflops", lambda: matmul_tflops(8192 if device == "cuda" else 256, device))
    tokenizer = synthetic_tokenizer(4000 if device == "cuda" else 300)
    bases: dict[str, LoadedModel] = {}
    data: dict[str, tuple[TrainingData, TrainingData]] = {}
    cases: dict[str, dict[str, list[Case]]] = {}
    for shape in args.shapes:
        plan = PLANS[shape]

        def build(shape: str = shape, plan: Plan = plan) -> dict[str, Any]:
            bases[shape] = loaded(build_model(shape, device, dtype), tokenizer, shape)
            vocab = min(bases[shape].model.config.vocab_size, len(tokenizer))
            count = (plan.warmup + 2 * plan.steps + 2) * 2 * plan.ref_batch
            data[shape] = (
                reference_data(vocab, plan.block, count),
                task_data(tokenizer, (plan.warmup + plan.steps + 4) * plan.task_batch * 2, plan.words, 512),
            )
            cases[shape] = training_cases(plan, *data[shape])
            model = bases[shape].model
            return {
                "parameters": sum(p.numel() for p in model.parameters()),
                "dtype": str(dtype),
                "attention": model.config._attn_implementation,
            }

        report.section(f"{shape}/build", build)

    def train_tier(tier: str, needs: float) -> None:
        for shape in args.shapes:
            if shape not in bases:
                continue
            for case in cases[shape][tier]:
                report.section(
                    f"{shape}/train/{case.name}",
                    lambda c=case, s=shape: measure(bases[s], c, work / s, peak),
                    needs_s=needs,
                )

    def score_all(needs: float) -> None:
        for shape in args.shapes:
            if shape in bases:
                plan = PLANS[shape]
                items = review_items(plan.items, plan.words, 2)
                report.section(
                    f"{shape}/score/vs_harness",
                    lambda s=shape, i=items, p=plan: scoring(bases[s].model, tokenizer, i, p.score_batch),
                    needs_s=needs,
                )
                long = choice_items(plan.items // 2, plan.words, 12, 4)
                report.section(
                    f"{shape}/score/vs_harness_sentence_choices",
                    lambda s=shape, i=long, p=plan: scoring(bases[s].model, tokenizer, i, p.score_batch),
                    needs_s=needs,
                )

    big = 30.0 if device == "cuda" else 0.0
    train_tier("core", big)
    score_all(big)
    if args.pytest:
        report.section("pytest_gpu", lambda: run_pytest(args.out, min(150.0, max(30.0, report.left()))), needs_s=40)
    train_tier("levers", big)
    for shape in args.shapes:
        if shape in bases:
            plan, (reference, _) = PLANS[shape], data[shape]
            report.section(
                f"{shape}/train/ref_lora_eager_attention",
                lambda s=shape, p=plan, r=reference: eager_attention_case(bases[s], p, r, work / s, peak),
                needs_s=big,
            )
    train_tier("ia3", big)
    for shape in args.shapes:
        if shape in bases:
            items = review_items(min(PLANS[shape].items, 256), PLANS[shape].words, 3)
            report.section(
                f"{shape}/score/bf16_vs_fp32",
                lambda s=shape, i=items: precision_agreement(bases[s].model, tokenizer, i, 32),
                needs_s=big,
            )
    for kind, source in (("lora", "ref_lora_input_cast_on"), ("ia3", "task_ia3_adamergex")):
        shape = args.shapes[-1]
        folders = [work / shape / name for name in (f"task_{kind}_adamergex", f"ref_{kind}_adamergex", source)]
        report.section(f"merge/gpu_vs_cpu_{kind}", lambda f=folders: merge_equality(f))
    if args.compile:
        shape = args.shapes[0]
        if shape in bases:
            plan, (reference, _) = PLANS[shape], data[shape]
            report.section(
                f"{shape}/train/ref_lora_compiled",
                lambda: compile_case(bases[shape], plan, reference, work / shape, peak),
                needs_s=120,
            )
    for shape in args.shapes:
        if shape in bases and args.liger:
            plan, (reference, _) = PLANS[shape], data[shape]
            report.section(
                f"{shape}/train/ref_lora_liger",
                lambda s=shape, p=plan, r=reference: liger_case(bases[s], p, r, work / s, peak),
                needs_s=big,
            )
    return report


def run_pytest(out: Path, timeout: float) -> dict[str, Any]:
    """The repository's ``-m gpu`` tests in a child process (its own CUDA context), log under ``out``."""
    root = Path(__file__).resolve().parents[1]
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "gpu",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/unit/training/test_training_gpu.py",
        "tests/unit/evaluation/test_gpu.py",
    ]
    try:
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=timeout)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        output, code = f"{expired.stdout or ''}{expired.stderr or ''}\nTIMEOUT after {timeout:.0f} s", -1
    (out / "pytest_gpu.log").write_text(str(output))
    return {"returncode": code, "summary": str(output).strip().splitlines()[-1] if output else ""}


def summary_table(results: dict[str, Any]) -> str:
    """The training and scoring rows as a plain-text table (printed last: the device reply shows the tail)."""
    lines = [f"{'section':<46}{'tok/s | it/s':>14}{'MFU':>8}{'s/step':>8}{'GiB':>7}"]
    for name, value in results.items():
        if not isinstance(value, dict):
            continue
        if "tokens_per_s" in value:
            lines.append(
                f"{name:<46}{value['tokens_per_s']:>14,.0f}{value['mfu_datasheet']:>8.1%}"
                f"{value['seconds_per_step']:>8.3f}{value.get('peak_memory_gib', 0):>7.1f}"
            )
        elif "speedup" in value:
            lines.append(
                f"{name:<46}{value['adamergex_items_per_s']:>7.1f} vs {value['harness_items_per_s']:<6.1f}"
                f"x{value['speedup']:.2f} same {value['same_predictions']}/{value['items']}"
            )
        elif "error" in value or "skipped" in value:
            lines.append(f"{name:<46}{(value.get('error') or value.get('skipped'))[:70]}")
        elif "agreement" in value:
            lines.append(f"{name:<46}agreement {value['agreement']:.3f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=390.0, help="seconds; sections that would overrun are skipped")
    parser.add_argument("--shapes", nargs="+", default=["llama-2-7b", "gemma-3-270m"], choices=sorted(PLANS))
    parser.add_argument("--no-pytest", dest="pytest", action="store_false", help="skip the -m gpu tests")
    parser.add_argument("--no-liger", dest="liger", action="store_false", help="skip the Liger-Kernel lever")
    parser.add_argument("--only", help="run only the sections whose name matches this regular expression")
    parser.add_argument("--compile", action="store_true", help="last: regional torch.compile of the decoder layers")
    args = parser.parse_args()
    report = run(args)
    print(summary_table(report.results), flush=True)


if __name__ == "__main__":
    main()
