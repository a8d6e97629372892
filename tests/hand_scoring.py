"""Choice log-likelihoods worked out by hand: one full forward pass per (prompt, choice), float64 log-softmax,
summed over the choice's tokens — the reference the batched scorer is checked against."""

from __future__ import annotations

from typing import Any

import torch

from adamergex.evaluation.loglikelihood import encode_pair


def hand_loglikelihoods(model: Any, tokenizer: Any, prompt: str, choices: list[str]) -> list[float]:
    totals = []
    for choice in choices:
        context, continuation = encode_pair(tokenizer, prompt, choice)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([context + continuation])).logits[0].double(), -1)
        totals.append(sum(float(logprobs[len(context) - 1 + i, t]) for i, t in enumerate(continuation)))
    return totals
