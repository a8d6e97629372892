"""The training loss: answer-only projection and the fused chunked cross-entropy equal plain full-logits CE."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adamergex.training import loss as loss_module
from adamergex.training.loss import forward_loss, linear_cross_entropy_sum, scored_positions, supports_fused_loss
from tiny_models import tiny_llama


def _full_loss(model, batch) -> torch.Tensor:
    """transformers' logits and torch's cross-entropy, sliced the textbook way (independent of training.loss)."""
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
    positions = scored_positions(labels)
    assert positions is not None and positions.tolist() == [6, 7, 9, 10]
    with torch.no_grad():
        torch.testing.assert_close(forward_loss(model, batch), _full_loss(model, batch))


def test_causal_lm_batches_keep_every_position() -> None:
    labels = torch.randint(0, 64, (2, 10))
    assert scored_positions(labels) is None


@pytest.mark.parametrize("chunk_bytes", [4 * 64 * 1, 4 * 64 * 5, 2**26])  # 1-row, 5-row and single chunks
def test_fused_loss_and_its_gradients_equal_the_plain_loss(monkeypatch: pytest.MonkeyPatch, chunk_bytes: int) -> None:
    monkeypatch.setattr(loss_module, "CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(2)
    model = tiny_llama()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.model.layers[0].mlp.down_proj.weight.requires_grad_(True)  # a trainable weight below the output layer
    input_ids = torch.randint(3, 64, (3, 10))
    labels = input_ids.clone()
    labels[2, 7:] = -100  # a padded row
    attention_mask = (labels != -100).long()
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    trained = model.model.layers[0].mlp.down_proj.weight

    expected = _full_loss(model, batch)
    (expected_grad,) = torch.autograd.grad(expected, trained)
    assert supports_fused_loss(model)
    fused = forward_loss(model, batch, causal_lm=model)
    (fused_grad,) = torch.autograd.grad(fused, trained)
    torch.testing.assert_close(fused, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused_grad, expected_grad, rtol=1e-4, atol=1e-6)
    # The output layer is restored afterwards.
    assert isinstance(model.get_output_embeddings(), torch.nn.Linear)
    assert model(input_ids=input_ids).logits.shape[-1] == 64


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 9),
    vocab=st.integers(2, 17),
    softcap=st.one_of(st.none(), st.floats(0.5, 30.0)),
    seed=st.integers(0, 2**16),
)
def test_linear_cross_entropy_matches_autograd_reference(
    rows: int, vocab: int, softcap: float | None, seed: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(1, rows + 1, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(vocab, 5, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, vocab, (1, rows + 1), generator=generator)
    labels[0, torch.rand(rows + 1, generator=generator) < 0.3] = -100

    logits = hidden[:, :-1] @ weight.t()
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    expected = torch.nn.functional.cross_entropy(
        logits.reshape(-1, vocab), labels[:, 1:].reshape(-1), ignore_index=-100, reduction="sum"
    )
    fused = linear_cross_entropy_sum(hidden, weight, labels, softcap)
    torch.testing.assert_close(fused.double(), expected, rtol=1e-5, atol=1e-6)
    if labels[:, 1:].ne(-100).any():
        (expected_grad,) = torch.autograd.grad(expected, hidden)
        (fused_grad,) = torch.autograd.grad(3.0 * fused, hidden)
        # fp32 inside (eps 1.2e-7): its rounding is relative to the gradient's largest entries, not to each small
        # one (a fixed atol of 1e-6 failed on an example: 2.8e-6 on a small entry of a gradient reaching 7.3).
        scale = float((3.0 * expected_grad).abs().max())
        torch.testing.assert_close(fused_grad, 3.0 * expected_grad, rtol=1e-5, atol=2e-6 * max(1.0, scale))


def test_a_trainable_output_layer_is_refused() -> None:
    with pytest.raises(ValueError, match="frozen output layer"):
        linear_cross_entropy_sum(torch.randn(1, 3, 4), torch.randn(5, 4, requires_grad=True), torch.zeros(1, 3).long())
