"""Adapter training on one process, several processes (DDP) or a GPU, built on accelerate.

The loop is written out (rather than transformers' Trainer) so that three things are exact:

* **Loss normalisation.** The loss of an optimizer step is the mean over every label token of the step's
  micro-batches on every process: each micro-batch contributes ``sum of token losses / N`` with ``N`` the
  step's label-token count over all processes (times the process count, since DDP averages gradients).
  Accumulated or distributed, a step's gradient equals that of one big batch.
* **Resume.** The data order of epoch ``e`` is a pure function of ``(seed, e)`` and a checkpoint stores the
  adapter, optimizer, schedule, step and every process's RNG state, so resuming gives the same weights as a
  run that was never interrupted.
* **Output.** The adapter folder is written through ``atomic_directory`` with its provenance sidecar, so it
  is complete or absent; checkpoints are separate (``<out>.checkpoints``) and removed after success.

Under ``accelerate launch`` each process takes every ``world_size``-th micro-batch of the shared epoch plan.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType, broadcast_object_list, set_seed
from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file
from tqdm.auto import tqdm
from transformers import get_scheduler

from adamergex.adapters.io import adapter_fingerprint
from adamergex.errors import AdamergexError, NumericalError, OutputExistsError
from adamergex.files import atomic_directory
from adamergex.models.loading import LoadedModel, load_base_model, resolve_dtype
from adamergex.provenance import write_provenance
from adamergex.training.adapters import initialise_adapter
from adamergex.training.config import TrainingConfig
from adamergex.training.data import IGNORE_INDEX, TrainingData, batch_plan, collate, prepare_training_data
from adamergex.training.log import LOG_FILE, TrainingLog, check_tracker
from adamergex.training.loss import forward_loss, supports_fused_loss
from adamergex.training.speed import (
    Execution,
    adapter_input_casting,
    apply_liger_kernels,
    collate_packed,
    execution_for,
    make_adamw,
)

_STATE_FILE = "trainer_state.json"
_OPTIMIZER_FILE = "optimizer.pt"
_SCHEDULER_FILE = "scheduler.pt"
_KEEP_CHECKPOINTS = 2
SNAPSHOTS = "snapshots"


class NonFiniteLossError(NumericalError):
    """The training loss became NaN or infinite."""


class ResumeError(AdamergexError):
    """``--resume`` was asked for but no compatible checkpoint exists."""


@dataclass
class TrainingResult:
    """What a finished run produced.

    Attributes:
        out: the adapter folder.
        steps: optimizer steps taken.
        train_loss: mean token loss of the last logged step window (see ``history``).
        validation_loss: token-weighted mean loss on the validation examples at the end (None if none).
        initial_validation_loss: the same loss before the first step (the adapter at initialisation, which is
            the base model for LoRA and (IA)³); ``validation_loss`` below it shows the adapter learned.
        history: one record per optimizer step: ``step``, ``loss``, ``lr``, ``tokens``, ``tokens_per_second``,
            ``elapsed_s``; and ``validation_loss`` at evaluation steps.
        wall_time_s: seconds of training in this process (summed over resumed segments).
        tokens_per_second: non-padding tokens processed per second over all processes.
        record: the provenance record written next to the adapter.
        snapshots: the adapter after each of ``config.snapshot_steps``, by step (``<out>/snapshots/step-N``).
    """

    out: Path
    steps: int
    train_loss: float
    validation_loss: float | None
    initial_validation_loss: float | None
    history: list[dict[str, Any]]
    wall_time_s: float
    tokens_per_second: float
    record: dict[str, Any] = field(default_factory=dict)
    snapshots: dict[int, Path] = field(default_factory=dict)


StepCallback = Callable[[int, dict[str, Any]], None]


def _label_count(batch: dict[str, torch.Tensor]) -> int:
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


class _Plan:
    """The micro-batch sequence of one process: epoch plans from :func:`batch_plan`, sharded by rank."""

    def __init__(self, data: TrainingData, batch_size: int, seed: int, rank: int, world: int) -> None:
        self.lengths = [len(e.input_ids) for e in data.train]
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.group_by_length = data.group_by_length
        n_batches = math.ceil(len(self.lengths) / batch_size)
        self.per_rank = math.ceil(n_batches / world)
        self._cache: dict[int, list[list[int]]] = {}

    def batch(self, micro_step: int) -> list[int]:
        epoch, position = divmod(micro_step, self.per_rank)
        if epoch not in self._cache:
            self._cache = {
                epoch: batch_plan(
                    self.lengths, self.batch_size, seed=self.seed, epoch=epoch, group_by_length=self.group_by_length
                )
            }
        batches = self._cache[epoch]
        # Like DistributedSampler: wrap around so every rank has the same number of micro-batches.
        return batches[(position * self.world + self.rank) % len(batches)]


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _checkpoints(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / _STATE_FILE).is_file()
    )


def _run_identity(config: TrainingConfig, data: TrainingData, base: LoadedModel) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed by this run."""
    return {"hyperparameters": config.hyperparameters(), "data": data.fingerprint, "base": base.fingerprint}


class _Run:
    """State of one training run (kept together so the loop, evaluation and checkpoints share it)."""

    def __init__(
        self,
        config: TrainingConfig,
        base: LoadedModel,
        data: TrainingData,
        accelerator: Accelerator,
        execution: Execution,
    ) -> None:
        self.config, self.base, self.data, self.accelerator = config, base, data, accelerator
        self.execution = execution
        self.pad_id = int(base.tokenizer.pad_token_id)
        self.plan = _Plan(data, config.batch_size, config.seed, accelerator.process_index, accelerator.num_processes)
        if config.max_steps is not None:
            self.total_steps = config.max_steps
        else:
            self.total_steps = max(1, math.ceil(config.epochs * self.plan.per_rank / config.grad_accum))
        self.identity = _run_identity(config, data, base)
        #: The unwrapped transformers model, when the fused vocabulary loss applies to it (see training.loss).
        self.causal_lm: torch.nn.Module | None = None

    def batch_tensors(self, indices: list[int], examples: list[Any]) -> dict[str, torch.Tensor]:
        chosen = [examples[i] for i in indices]
        packed = self.execution.packed_task_batches and self.data.kind == "task"
        batch = collate_packed(chosen) if packed else collate(chosen, self.pad_id)
        return {key: value.to(self.accelerator.device) for key, value in batch.items()}


def _evaluate(run: _Run, model: torch.nn.Module) -> float | None:
    """Token-weighted mean loss over the validation examples, shared out over the processes."""
    examples = run.data.validation
    if not examples:
        return None
    accelerator = run.accelerator
    size = run.config.eval_batch_size or run.config.batch_size
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    batches = [order[i : i + size] for i in range(0, len(order), size)]
    mine = batches[accelerator.process_index :: accelerator.num_processes]
    totals = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for indices in mine:
            batch = run.batch_tensors(indices, examples)
            with accelerator.autocast():
                totals[0] += forward_loss(model, batch, run.causal_lm).double()
            totals[1] += _label_count(batch)
    model.train(was_training)
    totals = accelerator.reduce(totals, "sum")
    return float(totals[0] / totals[1]) if totals[1] > 0 else None


def _save_checkpoint(run: _Run, model: torch.nn.Module, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> None:
    """Write ``step-N`` atomically: adapter (a loadable PEFT folder), optimizer, schedule, state, RNG per rank."""
    accelerator = run.accelerator
    root = run.config.checkpoint_root
    path = root / f"step-{state['step']:07d}"
    rng_name = f"rng_rank{accelerator.process_index}.pt"
    weights = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        with atomic_directory(path, force=True) as tmp:
            broadcast_object_list([str(tmp)])
            accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=weights)
            torch.save(optimizer.state_dict(), tmp / _OPTIMIZER_FILE)
            torch.save(scheduler.state_dict(), tmp / _SCHEDULER_FILE)
            torch.save(_rng_state(), tmp / rng_name)
            accelerator.wait_for_everyone()
            (tmp / _STATE_FILE).write_text(json.dumps({**state, "identity": run.identity}, indent=1))
        for old in _checkpoints(root)[:-_KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
    else:
        holder: list[Any] = [None]
        broadcast_object_list(holder)
        torch.save(_rng_state(), Path(holder[0]) / rng_name)
        accelerator.wait_for_everyone()
    accelerator.wait_for_everyone()


def _load_checkpoint(run: _Run, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore the latest checkpoint; returns its saved state (step, history, timings)."""
    root = run.config.checkpoint_root
    found = _checkpoints(root)
    if not found:
        raise ResumeError(f"resume / --resume: no checkpoint in {root}; run without it to start from scratch")
    path = found[-1]
    state = json.loads((path / _STATE_FILE).read_text())
    if state.get("identity") != run.identity:
        raise ResumeError(
            f"resume / --resume: checkpoint {path} was made with other settings, data or base model; "
            "use the same settings, or start again without resume"
        )
    rng_file = path / f"rng_rank{run.accelerator.process_index}.pt"
    if not rng_file.is_file():
        raise ResumeError(f"resume / --resume: {path} has no RNG state for process {run.accelerator.process_index}")
    weights = load_file(str(path / "adapter_model.safetensors"), device=str(run.accelerator.device))
    set_peft_model_state_dict(run.accelerator.unwrap_model(model), weights)
    optimizer.load_state_dict(torch.load(path / _OPTIMIZER_FILE, map_location="cpu", weights_only=False))
    scheduler.load_state_dict(torch.load(path / _SCHEDULER_FILE, weights_only=False))
    _set_rng_state(torch.load(rng_file, weights_only=False))
    return state


def _micro_batches(run: _Run, step: int) -> Iterator[dict[str, torch.Tensor]]:
    accum = run.config.grad_accum
    for micro in range(step * accum, (step + 1) * accum):
        yield run.batch_tensors(run.plan.batch(micro), run.data.train)


def _check_output(config: TrainingConfig) -> None:
    if config.out.exists() and not config.force:
        raise OutputExistsError(f"output folder already exists: {config.out} (pass --force / force=True to replace it)")


def _make_accelerator(config: TrainingConfig, base: LoadedModel | None) -> Accelerator:
    """An Accelerator for the run: CPU when asked or without CUDA; bf16 autocast when the weights are bf16.

    Outside a distributed launch the process-wide accelerate state is reset first, so that several runs in
    one process (a pipeline, the tests) may differ in device or precision.
    """
    if config.device == "cuda" and not torch.cuda.is_available():
        raise AdamergexError("device / --device cuda was asked for but no CUDA device is available; use cpu or auto")
    use_cpu = config.device == "cpu" or not torch.cuda.is_available()
    dtype = base.dtype if base is not None else resolve_dtype(config.dtype, "cpu" if use_cpu else "cuda")
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        # Private accelerate API, used on purpose: Accelerator() keeps its device and precision in a process-wide
        # singleton, so a second run in one process (the pipeline trains many adapters; the tests switch
        # precision) would silently inherit the first run's. accelerate has no public reset;
        # tests/unit/training/test_accelerate_private_api.py fails if this method changes or stops resetting.
        AcceleratorState._reset_state(reset_partial_state=True)
    bf16 = not use_cpu and dtype == torch.bfloat16
    tracker = None if config.report_to == "none" else config.report_to
    return Accelerator(
        cpu=use_cpu,
        mixed_precision="bf16" if bf16 else "no",
        log_with=tracker,
        project_dir=str(config.log_root) if tracker else None,
    )


def _set_checkpointing(model: Any, *, enabled: bool) -> None:
    """Turn activation checkpointing on/off (transformers 5 name, falling back to the 4.x one).

    Non-reentrant checkpointing is used: it needs no input that requires grad, which a frozen base with
    adapters inside does not have.
    """
    if enabled:
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        model.config.use_cache = False
    elif hasattr(model, "activation_checkpointing_disable"):
        model.activation_checkpointing_disable()
    else:
        model.gradient_checkpointing_disable()


def train_adapter(
    config: TrainingConfig,
    *,
    base: LoadedModel | None = None,
    data: TrainingData | None = None,
    callbacks: tuple[StepCallback, ...] = (),
    progress: bool = True,
    execution: Execution | None = None,
) -> TrainingResult:
    """Train a LoRA or (IA)³ adapter and write it as a PEFT folder with a provenance sidecar.

    Args:
        config: the run's settings.
        base: an already loaded base model (it is restored to its plain state afterwards), else loaded from
            ``config.base``.
        data: already prepared examples, else built from ``config.data`` with the base tokenizer.
        callbacks: called as ``callback(step, record)`` after each optimizer step (``record`` as in
            ``TrainingResult.history``); an exception stops training, leaving the last checkpoint.
        progress: show a progress bar (main process only).
        execution: speed settings (:mod:`~adamergex.training.speed`); default: the device's, from
            :func:`~adamergex.training.speed.execution_for`. They are recorded, not part of the hyperparameters.

    Raises:
        OutputExistsError: ``config.out`` exists and ``config.force`` is not set (checked before any work).
        NonFiniteLossError: the loss became NaN/inf (no output is written).
        ResumeError, TargetModuleError, EmptyDatasetError, and the model loader's errors.
    """
    _check_output(config)
    check_tracker(config.report_to)
    started = time.perf_counter()
    accelerator = _make_accelerator(config, base)
    if base is None:
        # The first process converts and caches a GGUF model; the others then read the cache.
        with accelerator.main_process_first():
            base = load_base_model(config.base, dtype=config.dtype, device=str(accelerator.device))
    set_seed(config.seed)
    if data is None:
        data = prepare_training_data(config, base.tokenizer)
    run = _Run(config, base, data, accelerator, execution or execution_for(accelerator.device))

    model = base.model
    if config.gradient_checkpointing:
        _set_checkpointing(model, enabled=True)
    if run.execution.liger_kernels:
        apply_liger_kernels(model)  # in place, once per model; before PEFT wraps the projections
    peft_model = initialise_adapter(model, config)
    try:
        with adapter_input_casting(peft_model, run.execution):
            return _train(run, peft_model, callbacks, progress, started)
    finally:
        restored = peft_model.unload()
        if config.gradient_checkpointing:
            _set_checkpointing(restored, enabled=False)
        base.model = restored
        base.model.eval()
        base.device = str(next(restored.parameters()).device)


@dataclass
class _Optimisation:
    """What the optimisation carries from step to step: the prepared model and optimizer, the schedule, the
    resumable ``state`` (step, history, tokens, wall time), and where this process's segment started."""

    model: Any
    optimizer: Any
    scheduler: Any
    trainable: list[torch.nn.Parameter]
    state: dict[str, Any]
    sharded: bool
    segment_start: float = 0.0
    tokens_at_segment_start: int = 0

    def elapsed(self) -> float:
        """Training seconds so far, resumed segments included."""
        return float(self.state["wall_time_s"]) + time.perf_counter() - self.segment_start


def _train(
    run: _Run, peft_model: PeftModel, callbacks: tuple[StepCallback, ...], progress: bool, started: float
) -> TrainingResult:
    config = run.config
    optimisation = _start(run, peft_model)
    initial = {"step": 0, "validation_loss": optimisation.state.get("initial_validation_loss"), "elapsed_s": 0.0}
    log = TrainingLog(
        config.checkpoint_root / LOG_FILE,
        run.accelerator,
        tracker=config.report_to != "none",
        run_name=config.out.name,
        hyperparameters=config.hyperparameters(),
        history=[initial, *optimisation.state["history"]],
    )
    try:
        _loop(run, optimisation, log, callbacks, progress, started)
        return _finish(run, optimisation, log, started)
    finally:
        log.close()


def _start(run: _Run, peft_model: PeftModel) -> _Optimisation:
    """Optimizer and schedule prepared by accelerate; the checkpoint's state on resume, else the untrained
    adapter's validation loss (= the base model's: the baseline the adapter must beat)."""
    config, accelerator = run.config, run.accelerator
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = make_adamw(
        trainable, lr=config.peak_learning_rate, weight_decay=config.weight_decay, fused=run.execution.fused_adamw
    )
    warmup = round(config.warmup_ratio * run.total_steps)
    name = "constant_with_warmup" if config.lr_scheduler == "constant" else config.lr_scheduler
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=run.total_steps)
    model, optimizer = accelerator.prepare(peft_model, optimizer)
    model.train()
    causal_lm = accelerator.unwrap_model(model).get_base_model()
    run.causal_lm = causal_lm if config.fused_loss and supports_fused_loss(causal_lm) else None

    state: dict[str, Any] = {"step": 0, "history": [], "wall_time_s": 0.0, "tokens": 0}
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    if sharded and config.resume:
        raise ResumeError(
            "resume / --resume is supported for single-process and DDP runs, not FSDP/DeepSpeed (sharded state)"
        )
    if config.resume:
        state = _load_checkpoint(run, model, optimizer, scheduler)
        state.pop("identity", None)
    else:
        state["initial_validation_loss"] = _evaluate(run, model)
    return _Optimisation(model, optimizer, scheduler, trainable, state, sharded, time.perf_counter(), state["tokens"])


def _loop(
    run: _Run,
    opt: _Optimisation,
    log: TrainingLog,
    callbacks: tuple[StepCallback, ...],
    progress: bool,
    started: float,
) -> None:
    """Optimizer steps from the current one to the last: log, show, snapshot, checkpoint and call back after each."""
    config, accelerator, state = run.config, run.accelerator, opt.state
    bar = tqdm(
        total=run.total_steps,
        initial=state["step"],
        desc=f"train {config.adapter} ({run.data.kind})",
        disable=not (progress and accelerator.is_main_process),
        unit="step",
    )
    for step in range(state["step"], run.total_steps):
        record = _step(run, opt, step)
        snapshot = step + 1 in config.snapshot_steps and step + 1 < run.total_steps
        if snapshot or (config.eval_steps and (step + 1) % config.eval_steps == 0 and step + 1 < run.total_steps):
            record["validation_loss"] = _evaluate(run, opt.model)
        state["history"].append(record)
        log.log(record)
        bar.set_postfix(
            loss=f"{record['loss']:.4f}",
            tok_s=f"{record['tokens_per_second']:,.0f}",
            lr=f"{record['lr']:.2e}",
            refresh=False,
        )
        bar.update(1)
        if snapshot:
            _save_snapshot(run, opt, record, started)
        if not opt.sharded and (step + 1) % config.save_steps == 0 and step + 1 < run.total_steps:
            saved = {**state, "wall_time_s": record["elapsed_s"]}
            _save_checkpoint(run, opt.model, opt.optimizer, opt.scheduler, saved)
        for callback in callbacks:
            callback(step + 1, record)
    bar.close()


def _step(run: _Run, opt: _Optimisation, step: int) -> dict[str, Any]:
    """One optimizer step over its micro-batches (loss normalised by the step's label tokens on every process);
    returns the step's record."""
    accelerator, state = run.accelerator, opt.state
    world = accelerator.num_processes
    batches = list(_micro_batches(run, step))
    counts = torch.tensor(
        [sum(_label_count(b) for b in batches), sum(int(b["attention_mask"].sum()) for b in batches)],
        device=accelerator.device,
    )
    label_tokens, real_tokens = (int(x) for x in accelerator.reduce(counts, "sum"))
    loss_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    for index, batch in enumerate(batches):
        last = index == len(batches) - 1
        context = accelerator.no_sync(opt.model) if not last else contextlib.nullcontext()
        with context, accelerator.autocast():
            token_loss = forward_loss(opt.model, batch, run.causal_lm)
        loss_sum += token_loss.detach().double()
        accelerator.backward(token_loss * world / max(label_tokens, 1))
    loss_sum = accelerator.reduce(loss_sum, "sum")
    step_loss = float(loss_sum) / max(label_tokens, 1)
    if not math.isfinite(step_loss):
        raise NonFiniteLossError(
            f"training loss is {step_loss} at step {step + 1} of {run.total_steps} "
            f"(learning rate {opt.scheduler.get_last_lr()[0]:.3g}); lower learning_rate / --learning-rate or use "
            "dtype / --dtype float32"
        )
    accelerator.clip_grad_norm_(opt.trainable, run.config.max_grad_norm)
    lr = opt.scheduler.get_last_lr()[0]
    opt.optimizer.step()
    opt.scheduler.step()
    opt.optimizer.zero_grad(set_to_none=True)
    state["step"] = step + 1
    state["tokens"] += real_tokens
    elapsed = opt.elapsed()
    tokens_per_s = state["tokens"] / elapsed if elapsed > 0 else 0.0
    return {
        "step": step + 1,
        "loss": step_loss,
        "lr": lr,
        "tokens": real_tokens,
        "tokens_per_second": tokens_per_s,
        "elapsed_s": elapsed,
    }


def _finish(run: _Run, opt: _Optimisation, log: TrainingLog, started: float) -> TrainingResult:
    """Final validation loss, provenance, and the adapter folder written atomically with its step log."""
    config, accelerator, state = run.config, run.accelerator, opt.state
    history: list[dict[str, Any]] = state["history"]
    validation_loss = _evaluate(run, opt.model)
    wall_time = opt.elapsed()
    final = {"step": state["step"], "validation_loss": validation_loss, "elapsed_s": wall_time, "final": True}
    log.log(final)
    tokens_per_second = state["tokens"] / wall_time if wall_time > 0 else 0.0
    train_loss = _window_loss(history)
    initial_validation_loss = state.get("initial_validation_loss")
    record = _provenance(run, opt.model, state["step"], train_loss, validation_loss, wall_time, started)
    record["initial_validation_loss"] = initial_validation_loss
    record["execution"] = run.execution.record()
    record["throughput"] = {
        "tokens_per_second": tokens_per_second,
        "tokens": state["tokens"],
        "tokens_this_segment": state["tokens"] - opt.tokens_at_segment_start,
    }
    # Collective under FSDP / DeepSpeed ZeRO-3 (gathers the full adapter); a plain state dict otherwise.
    weights = accelerator.get_state_dict(opt.model)
    if accelerator.is_main_process:
        with atomic_directory(config.out, force=config.force) as tmp:
            accelerator.unwrap_model(opt.model).save_pretrained(tmp, state_dict=weights)
            record["adapter_fingerprint"] = adapter_fingerprint(tmp)
            write_provenance(tmp, record)
            # The live log already holds step 0, every step and the final record (flushed line by line).
            shutil.copyfile(log.path, tmp / LOG_FILE)
            snapshots = config.checkpoint_root / SNAPSHOTS
            if config.snapshot_steps:
                shutil.copytree(snapshots, tmp / SNAPSHOTS)
        if not config.keep_checkpoints:
            shutil.rmtree(config.checkpoint_root, ignore_errors=True)
    accelerator.wait_for_everyone()
    return TrainingResult(
        out=config.out,
        steps=state["step"],
        train_loss=train_loss,
        validation_loss=validation_loss,
        initial_validation_loss=initial_validation_loss,
        history=history,
        wall_time_s=wall_time,
        tokens_per_second=tokens_per_second,
        record=record,
        snapshots={step: snapshot_path(config.out, step) for step in config.snapshot_steps},
    )


def snapshot_path(out: Path, step: int) -> Path:
    """Where the adapter after optimizer step ``step`` of the run writing ``out`` is kept."""
    return out / SNAPSHOTS / f"step-{step:07d}"


def _window_loss(history: list[dict[str, Any]]) -> float:
    """Mean loss of the last (up to) ten steps: a run's reported training loss."""
    window = history[-max(1, min(10, len(history))) :]
    return sum(r["loss"] for r in window) / len(window) if window else float("nan")


def _save_snapshot(run: _Run, opt: _Optimisation, record: dict[str, Any], started: float) -> None:
    """Keep the adapter as it is after this step (``record``, already in the history, with its validation loss) as
    a complete PEFT folder, written atomically under the checkpoint folder, so an interrupted run keeps it; copied
    into the output at the end."""
    config, accelerator, state = run.config, run.accelerator, opt.state
    step = int(record["step"])
    weights = accelerator.get_state_dict(opt.model)
    if accelerator.is_main_process:
        provenance = _provenance(
            run,
            opt.model,
            step,
            _window_loss(state["history"]),
            record["validation_loss"],
            record["elapsed_s"],
            started,
        )
        provenance["initial_validation_loss"] = state.get("initial_validation_loss")
        provenance["snapshot"] = {
            "step": step,
            "of_steps": run.total_steps,
            "equals_run_of_steps": config.snapshots_exact,
        }
        folder = snapshot_path(config.checkpoint_root, step)
        folder.parent.mkdir(parents=True, exist_ok=True)
        with atomic_directory(folder, force=True) as tmp:
            accelerator.unwrap_model(opt.model).save_pretrained(tmp, state_dict=weights)
            provenance["adapter_fingerprint"] = adapter_fingerprint(tmp)
            write_provenance(tmp, provenance)
    accelerator.wait_for_everyone()


def _provenance(
    run: _Run,
    model: torch.nn.Module,
    steps: int,
    train_loss: float,
    validation_loss: float | None,
    wall_time: float,
    started: float,
) -> dict[str, Any]:
    config, data, base = run.config, run.data, run.base
    peft_config = run.accelerator.unwrap_model(model).peft_config["default"]
    trainable = sum(t.numel() for t in get_peft_model_state_dict(run.accelerator.unwrap_model(model)).values())
    return {
        "kind": "adapter_training",
        "adapter": config.adapter,
        "task": "reference" if data.kind == "reference" else data.name.removeprefix("task:"),
        "language": data.lang,
        "base_model": {"name": base.name, "fingerprint": base.fingerprint, "source": base.source},
        "data": {"spec": data.name, "kind": data.kind, "fingerprint": data.fingerprint, **data.stats},
        "hyperparameters": config.hyperparameters(),
        "target_modules": sorted(peft_config.target_modules),
        "trainable_parameters": trainable,
        "steps": steps,
        "final_train_loss": train_loss,
        "final_validation_loss": validation_loss,
        "wall_time_s": wall_time,
        "total_time_s": time.perf_counter() - started,
        "processes": run.accelerator.num_processes,
        "device": str(run.accelerator.device),
        "dtype": str(base.dtype).removeprefix("torch."),
        "mixed_precision": run.accelerator.mixed_precision,
    }
