"""Answer-only batches project only the scored positions onto the vocabulary; the loss must not change."""

from __future__ import annotations

import torch

from adamergex.training.trainer import _forward_loss, _scored_positions
from tiny_models import tiny_llama


def _full_loss(model, batch) -> torch.Tensor:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    shifted = batch["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)), shifted.reshape(-1), ignore_index=-100, reduction="sum"
    )


def test_answer_only_loss_equals_full_logits_loss() -> None:
    model = tiny_llama()
    torch.manual_seed(1)
    input_ids = torch.randint(3, 64, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 9:] = 0  # right padding
    labels = torch.full_like(input_ids, -100)
    labels[0, 10:12] = input_ids[0, 10:12]
    labels[1, 7:9] = input_ids[1, 7:9]
    labels[2, 11] = input_ids[2, 11]
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    positions = _scored_positions(labels)
    assert positions is not None and positions.tolist() == [6, 7, 9, 10]
    with torch.no_grad():
        torch.testing.assert_close(_forward_loss(model, batch), _full_loss(model, batch))


def test_causal_lm_batches_keep_every_position() -> None:
    labels = torch.randint(0, 64, (2, 10))
    assert _scored_positions(labels) is None
