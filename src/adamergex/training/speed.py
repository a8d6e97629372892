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
  is padding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from peft.helpers import disable_input_dtype_casting
from torch import nn

from adamergex.training.loss import IGNORE_INDEX


@dataclass(frozen=True)
class Execution:
    """Speed settings of one training run (see the module docstring for each)."""

    fused_adamw: bool = False
    adapter_input_cast: bool = True
    packed_task_batches: bool = False

    def record(self) -> dict[str, Any]:
        """The settings as a JSON-ready mapping, for the provenance sidecar."""
        return asdict(self)


def execution_for(device: torch.device | str) -> Execution:
    """The default settings for a run on ``device``: all levers on CUDA, PEFT's and PyTorch's defaults elsewhere."""
    if torch.device(device).type == "cuda":
        return Execution(fused_adamw=True, adapter_input_cast=False, packed_task_batches=True)
    return Execution()


def make_adamw(parameters: Iterable[nn.Parameter], *, lr: float, weight_decay: float, fused: bool) -> torch.optim.AdamW:
    """AdamW over ``parameters``; ``fused`` picks PyTorch's single-kernel implementation."""
    return torch.optim.AdamW(list(parameters), lr=lr, weight_decay=weight_decay, fused=True if fused else None)


def adapter_input_casting(model: nn.Module, execution: Execution) -> contextlib.AbstractContextManager[None]:
    """A context in which PEFT casts adapter-layer inputs to the adapter weights' dtype or not, as ``execution``
    says (PEFT's own switch; every adapter layer of ``model``)."""
    return disable_input_dtype_casting(model, active=not execution.adapter_input_cast)


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
