"""The training loss: summed next-token cross-entropy, with the vocabulary projection done where it pays.

Gemma-3's output layer maps 640 features onto 262,144 tokens: at every scored position that is a 168 M-MAC
matrix product and a softmax over a quarter of a million logits, more than the whole transformer body costs
per token. Two ways to keep it cheap, both exact:

* **Few scored positions** (answer-only task batches): project only those positions (``logits_to_keep``).
* **Every position scored** (reference causal-LM batches): a *fused linear cross-entropy*. The model runs with
  its output layer swapped for the identity, so it returns final hidden states ``h``; the loss is then computed
  in row chunks, and each chunk's gradient with respect to ``h`` is formed right away from its softmax
  (``∂ℓ/∂z = softmax(z) − onehot(y)``, ``∂ℓ/∂h = (∂ℓ/∂z) W``), so the ``positions × vocab`` logits never exist
  all at once and are never stored for the backward pass (the idea of Liger-Kernel's fused linear
  cross-entropy; written here for a frozen output layer).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

IGNORE_INDEX = -100
#: Rows per chunk are chosen so that one chunk's fp32 logits take about this many bytes.
CHUNK_BYTES = 64 * 2**20


def shift_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels aligned with the positions that predict them: ``labels[:, 1:]`` padded with -100 at the end."""
    return nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)


def scored_positions(labels: torch.Tensor) -> torch.Tensor | None:
    """Positions whose next-token prediction carries a label in some row, or None when most positions do."""
    scored = (shift_labels(labels) != IGNORE_INDEX).any(dim=0)
    if int(scored.sum()) * 2 > labels.size(1):
        return None
    return scored.nonzero().squeeze(1)


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over positions of ``-log p(label_{i+1} | tokens_{≤i})``, ignoring ``-100`` labels, in fp32.

    ``positions``: the sequence positions ``logits`` were computed at (all when None).
    """
    shifted = shift_labels(labels)
    if positions is not None:
        shifted = shifted[:, positions]
    return nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), shifted.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )


def _chunk_rows(vocab: int) -> int:
    return max(1, CHUNK_BYTES // (4 * vocab))


class _LinearCrossEntropy(torch.autograd.Function):
    """``Σ_i CE(cap(h_i Wᵀ), y_i)`` over rows with a label; the gradient for ``h`` is formed in the forward pass."""

    @staticmethod
    def forward(
        ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None
    ) -> torch.Tensor:
        rows = _chunk_rows(weight.size(0))
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        for start in range(0, hidden.size(0), rows):
            h, y = hidden[start : start + rows], targets[start : start + rows]
            logits = (h @ weight.t()).float()
            if softcap is not None:
                capped = torch.tanh(logits / softcap)
                logits = capped * softcap
            lse = torch.logsumexp(logits, dim=-1)
            index = torch.arange(y.size(0), device=y.device)
            total += (lse - logits[index, y]).sum()
            if grad is not None:
                probabilities = logits.sub_(lse.unsqueeze(1)).exp_()  # in place: the logits are not needed again
                probabilities[index, y] -= 1.0
                if softcap is not None:
                    probabilities.mul_(1.0 - capped.square())
                grad[start : start + rows] = (probabilities.to(weight.dtype) @ weight).to(hidden.dtype)
        ctx.save_for_backward(grad)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        (grad,) = ctx.saved_tensors
        return (None if grad is None else grad * grad_output.to(grad.dtype)), None, None, None


def linear_cross_entropy_sum(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, softcap: float | None = None
) -> torch.Tensor:
    """Summed cross-entropy of ``softcap(hidden @ weightᵀ)`` against next-token ``labels``, chunked and fused.

    Args:
        hidden: final hidden states, ``batch × length × d``.
        weight: the output layer's weight, ``vocab × d``; frozen (no gradient is computed for it).
        labels: ``batch × length`` token ids with ``-100`` where nothing is scored (shifted here, as in
            :func:`token_loss_sum`).
        softcap: Gemma-2-style final logit soft-capping ``c·tanh(z/c)``, or None.
    """
    if weight.requires_grad:
        raise ValueError("the fused cross-entropy needs a frozen output layer")
    targets = shift_labels(labels).reshape(-1)
    keep = targets != IGNORE_INDEX
    flat = hidden.reshape(-1, hidden.size(-1))
    return _LinearCrossEntropy.apply(flat[keep], weight, targets[keep], softcap)


@contextlib.contextmanager
def _output_layer_as_identity(causal_lm: Any) -> Iterator[tuple[torch.Tensor, float | None]]:
    """Swap the output layer for the identity (so "logits" are final hidden states); yields (weight, softcap)."""
    head = causal_lm.get_output_embeddings()
    config = causal_lm.config
    softcap = getattr(config, "final_logit_softcapping", None)
    causal_lm.set_output_embeddings(nn.Identity())
    if softcap is not None:
        config.final_logit_softcapping = None
    try:
        yield head.weight, softcap
    finally:
        causal_lm.set_output_embeddings(head)
        if softcap is not None:
            config.final_logit_softcapping = softcap


def supports_fused_loss(causal_lm: Any) -> bool:
    """True for a causal LM whose output layer is a frozen, bias-free linear map we can swap out."""
    head = causal_lm.get_output_embeddings() if hasattr(causal_lm, "get_output_embeddings") else None
    return (
        isinstance(head, nn.Linear)
        and head.bias is None
        and not head.weight.requires_grad
        and hasattr(causal_lm, "set_output_embeddings")
    )


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The model's inputs from a batch: ids, and position ids for a packed batch (their restarts mark where each
    example begins) or else the attention mask; no KV cache (a loss needs none, and transformers reads position-id
    restarts as example boundaries only when there is none)."""
    if "position_ids" in batch:
        return {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"], "use_cache": False}
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "use_cache": False}


def forward_loss(model: nn.Module, batch: dict[str, torch.Tensor], causal_lm: nn.Module | None = None) -> torch.Tensor:
    """Summed token loss of ``batch`` through ``model``.

    Few scored positions: logits only there. Otherwise, when ``causal_lm`` (the unwrapped transformers model
    inside ``model``) is given and :func:`supports_fused_loss`, the fused chunked loss; else plain logits.
    """
    positions = scored_positions(batch["labels"])
    inputs = model_inputs(batch)
    if positions is not None or causal_lm is None:
        extra = {} if positions is None else {"logits_to_keep": positions}
        logits = model(**inputs, **extra).logits
        return token_loss_sum(logits, batch["labels"], positions)
    with _output_layer_as_identity(causal_lm) as (weight, softcap):
        hidden = model(**inputs).logits
    return linear_cross_entropy_sum(hidden, weight, batch["labels"], softcap)
