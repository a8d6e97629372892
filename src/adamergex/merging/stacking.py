"""MAD-X-style stacking as one adapter: a task adapter trained on top of ``Rs``, evaluated with ``Rt`` beneath it.

Training folds ``Rs`` into the base weights (:func:`adamergex.adapters.fold.fold_adapter`) and trains the task
adapter ``T'`` on that model. At test time ``Rt`` takes ``Rs``'s place: the model is the base with ``Rt`` applied
and ``T'`` on top. Both adapters act on the same layers, so the stack is one adapter of the same kind
(Pfeiffer et al. 2020, MAD-X, stack language and task adapters the same way):

    LoRA:   (W + ΔW_Rt) x + ΔW_T' x = (W + ΔW_T' + ΔW_Rt) x          ⇒  ΔW_stack = ΔW_T' + ΔW_Rt
    (IA)³:  l_T' ⊙ (l_Rt ⊙ (W x))   or   W (l_T' ⊙ l_Rt ⊙ x)           ⇒  l_stack = l_T' ⊙ l_Rt

``stack`` writes that adapter with :func:`~adamergex.merging.api.combine` (LoRA: weights (1, 1), exact with
``concat``; (IA)³: the ``product`` rule), so it is evaluated like every other merged adapter.
"""

from __future__ import annotations

from pathlib import Path

import torch

from adamergex.merging.api import AdapterLike, MergeSummary, combine
from adamergex.merging.combination import ExactLoraMode


def stack(
    task_adapter: AdapterLike,
    reference_target: AdapterLike,
    out: str | Path | None = None,
    *,
    mode: ExactLoraMode = "concat",
    rank: int | None = None,
    dtype: str | torch.dtype | None = None,
    allow_base_mismatch: bool = False,
    force: bool = False,
) -> MergeSummary:
    """The stack of ``task_adapter`` (``T'``, trained on top of ``Rs``) on ``reference_target`` (``Rt``).

    LoRA: ``ΔW = ΔW_T' + ΔW_Rt`` (``mode`` and ``rank`` as in :func:`~adamergex.merging.api.combine`);
    (IA)³: ``l = l_T' ⊙ l_Rt``. The output takes ``T'``'s config; ``out=None`` keeps it in memory.
    """
    return combine(
        [task_adapter, reference_target],
        [1.0, 1.0],
        out,
        mode=mode,
        rank=rank,
        dtype=dtype,
        compute_dtype=torch.float32,
        allow_base_mismatch=allow_base_mismatch,
        force=force,
        ia3_rule="product",
    )
