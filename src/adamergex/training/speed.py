"""How a training run executes on its device: settings that change speed and memory, not what is learnt.

They are kept out of :class:`~adamergex.training.config.TrainingConfig` on purpose: the config is what an
adapter is (its hyperparameters name the pipeline's cache entries), these are how it was computed, recorded in
the provenance sidecar under ``execution``. :func:`execution_for` gives the defaults: on CUDA every setting
that was measured to help (docs/benchmarks.md, "GPU throughput"); on CPU none, so CPU runs compute exactly
what they computed before these settings existed.

* ``fused_adamw``: one fused kernel for the AdamW update of all adapter tensors (``torch.optim.AdamW(fused=True)``)
  instead of a loop of per-tensor kernels.
* ``adapter_input_cast``: PEFT casts a LoRA layer's input to the adapter weights' dtype (fp32 over a bf16 base),
  so each of the seven projections writes an fp32 copy of its input and runs dropout on it before autocast casts
  it back to bf16 for the matrix product. Off, the input stays bf16: the product autocast computes is the same,
  and a few fp32 copies of every activation are never written.
* ``packed_task_batches``: a task micro-batch becomes one row, its examples one after another with position ids
  restarting at 0 for each and no attention mask; transformers reads the restarts as document boundaries
  (block-diagonal causal attention), so every example attends to itself alone, as when padded, and no position
  is padding. **Off by default everywhere**: measured on an H200 (docs/benchmarks.md) it made task steps 2.7×
  (Llama-2-7B) to 4.3× (Gemma-3-270M) slower than per-batch padding, because with SDPA transformers turns the
  restarts into a dense block-diagonal mask over the whole packed row (attention quadratic in the row's length,
  off the flash kernel); it pays only with a variable-length attention kernel (flash-attention 2).
* ``liger_kernels``: Liger-Kernel's fused Triton kernels for RMSNorm, rotary embedding and the gated MLP
  (SwiGLU / GeGLU), through the public ``apply_liger_kernel_to_<model_type>`` (``pip install 'adamergex[gpu]'``).
  Measured +23–25% reference-task tokens/s at the Llama-2-7B shape (52% → 64.5% model-FLOP utilisation) and +9%
  at Gemma-3-270M, with the same losses. **Opt-in** (``ADAMERGEX_LIGER_KERNELS=1`` on a CUDA run): Liger patches
  the architecture for the whole process, not only the model it is given (the rotary embedding is a module-level
  function of transformers' modeling file, and the norm and MLP classes are replaced there too), so a CPU model
  of the same architecture loaded later in that process runs Triton kernels on CPU tensors and fails — seen on
  the GPU machine, where the CPU half of a GPU-vs-CPU scoring test broke after a Liger run in the same process.
  The loss is left to adamergex (Liger's fused linear cross-entropy replaces the model's forward, which the
  answer-only loss does not call).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from adamergex.errors import AdamergexError
from adamergex.training.loss import IGNORE_INDEX


@dataclass(frozen=True)
class Execution:
    """Speed settings of one training run (see the module docstring for each)."""

    fused_adamw: bool = False
    adapter_input_cast: bool = True
    packed_task_batches: bool = False
    liger_kernels: bool = False

    def record(self) -> dict[str, Any]:
        """The settings as a JSON-ready mapping, for the provenance sidecar."""
        return asdict(self)


#: Set to 1 to use Liger's kernels on CUDA runs (see the module docstring for why it is not the default).
LIGER_VARIABLE = "ADAMERGEX_LIGER_KERNELS"


def liger_available() -> bool:
    """Whether the ``liger-kernel`` package is importable (it needs Triton and a GPU to run)."""
    return importlib.util.find_spec("liger_kernel") is not None


def liger_requested() -> bool:
    """Whether ``ADAMERGEX_LIGER_KERNELS=1`` asks for Liger's kernels; refused with one line when not installed."""
    value = os.environ.get(LIGER_VARIABLE, "").strip()
    if value not in ("", "0", "1"):
        raise AdamergexError(f"{LIGER_VARIABLE} must be 0 or 1, got {value!r}")
    if value == "1" and not liger_available():
        raise AdamergexError(f"{LIGER_VARIABLE}=1 but liger-kernel is not installed: pip install 'adamergex[gpu]'")
    return value == "1"


def execution_for(device: torch.device | str) -> Execution:
    """The default settings for a run on ``device``: on CUDA the levers measured to help (and Liger's kernels when
    ``ADAMERGEX_LIGER_KERNELS=1``), PEFT's and PyTorch's defaults elsewhere."""
    if torch.device(device).type == "cuda":
        return Execution(fused_adamw=True, adapter_input_cast=False, liger_kernels=liger_requested())
    return Execution()


#: What adamergex asks of Liger: its norm, rotary and gated-MLP kernels, not its losses (see the module docstring).
LIGER_KERNELS = {"rope": True, "rms_norm": True, "swiglu": True, "geglu": True}
LIGER_LOSSES_OFF = {"cross_entropy": False, "fused_linear_cross_entropy": False}


def apply_liger_kernels(model: nn.Module) -> bool:
    """Patch Liger's kernels into ``model`` (a transformers causal LM) once; returns whether its architecture has
    them (``apply_liger_kernel_to_<config.model_type>``). Only the keywords that function takes are passed."""
    if getattr(model, "_adamergex_liger", False):
        return True
    import liger_kernel.transformers as liger

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    apply = getattr(liger, f"apply_liger_kernel_to_{model_type}", None)
    if apply is None:
        return False
    accepted = inspect.signature(apply).parameters
    settings = {k: v for k, v in {**LIGER_KERNELS, **LIGER_LOSSES_OFF}.items() if k in accepted}
    apply(model=model, **settings)
    object.__setattr__(model, "_adamergex_liger", True)  # a plain attribute, not a submodule or tensor
    return True


def make_adamw(parameters: Iterable[nn.Parameter], *, lr: float, weight_decay: float, fused: bool) -> torch.optim.AdamW:
    """AdamW over ``parameters``; ``fused`` picks PyTorch's single-kernel implementation."""
    return torch.optim.AdamW(list(parameters), lr=lr, weight_decay=weight_decay, fused=True if fused else None)


@contextlib.contextmanager
def adapter_input_casting(model: nn.Module, execution: Execution) -> Iterator[None]:
    """A context in which PEFT casts adapter-layer inputs to the adapter weights' dtype or not, as ``execution``
    says: PEFT's per-layer switch ``cast_input_dtype_enabled`` on every layer that has one (LoRA's; (IA)³ layers
    have none and are left alone), restored on exit."""
    if execution.adapter_input_cast:
        yield
        return
    layers: list[Any] = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    previous = [m.cast_input_dtype_enabled for m in layers]
    for layer in layers:
        layer.cast_input_dtype_enabled = False
    try:
        yield
    finally:
        for layer, value in zip(layers, previous, strict=True):
            layer.cast_input_dtype_enabled = value


def collate_packed(examples: list[Any]) -> dict[str, torch.Tensor]:
    """One row holding ``examples`` back to back: ``input_ids``, ``position_ids`` restarting at each example,
    ``labels`` (the first label of each example ignored, as a row's first label is) and an all-ones
    ``attention_mask`` that only counts tokens (the model gets the position ids instead, see ``model_inputs``)."""
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for example in examples:
        ids.extend(example.input_ids)
        labels.extend([IGNORE_INDEX, *example.labels[1:]])
        positions.extend(range(len(example.input_ids)))
    return {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "position_ids": torch.tensor([positions], dtype=torch.long),
        "attention_mask": torch.ones((1, len(ids)), dtype=torch.long),
        "labels": torch.tensor([labels], dtype=torch.long),
    }
