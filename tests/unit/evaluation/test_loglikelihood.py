"""Log-likelihood scoring against hand computations from the model's logits."""

from __future__ import annotations

import pytest
import torch

from adamergex.errors import AdamergexError
from adamergex.evaluation.loglikelihood import encode_pair, score_multiple_choice

ITEMS = [
    ("The cat sat on the", [" mat", " log", " dog sat on the mat"]),
    ("Review: the dog sat.\nSentiment:", [" positive", " negative", " neutral", " ambivalent"]),
    ("我喜欢", [" 猫在睡觉", " 狗"]),
    ("", [" Der Hund schläft, richtig? Ja, die Katze", " Der Hund schläft, richtig? Nein, die Katze"]),
    ("Frage: wie viele? Antwort: ", ["12", "1,000"]),
    ("القطة", [" تنام", " على السجادة"]),
]


def hand_scores(model, tokenizer, items) -> list[list[float]]:
    """Unbatched, uncached: one forward over context + continuation per choice, summed log-softmax."""
    scores = []
    for prompt, choices in items:
        row = []
        for choice in choices:
            context, continuation = encode_pair(tokenizer, prompt, choice)
            with torch.no_grad():
                logits = model(torch.tensor([context + continuation])).logits[0].double()
            logprobs = torch.log_softmax(logits, dim=-1)
            row.append(sum(float(logprobs[len(context) - 1 + i, token]) for i, token in enumerate(continuation)))
        scores.append(row)
    return scores


@pytest.mark.parametrize("model_name", ["llama", "gemma3"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_scores_equal_hand_computation(request, tokenizer, model_name: str, batch_size: int) -> None:
    model = request.getfixturevalue(model_name)
    expected = hand_scores(model, tokenizer, ITEMS)
    scores = score_multiple_choice(model, tokenizer, ITEMS, batch_size=batch_size, progress=False)
    for got, want in zip(scores, expected, strict=True):
        assert got.loglikelihoods == pytest.approx(want, abs=1e-4)
        assert got.prediction == max(range(len(want)), key=want.__getitem__)


def test_right_padded_full_sequences_give_the_same_scores(llama, tokenizer) -> None:
    """The harness way (prompt + choice, one right-padded batch) agrees with the cached left-padded scorer."""
    pairs = [encode_pair(tokenizer, prompt, choice) for prompt, choices in ITEMS for choice in choices]
    rows = [context + continuation for context, continuation in pairs]
    width = max(len(row) for row in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row)
        mask[index, : len(row)] = 1
    with torch.no_grad():
        logprobs = torch.log_softmax(llama(ids, attention_mask=mask).logits.double(), dim=-1)
    expected = [
        sum(float(logprobs[index, len(context) - 1 + i, token]) for i, token in enumerate(continuation))
        for index, (context, continuation) in enumerate(pairs)
    ]
    scores = score_multiple_choice(llama, tokenizer, ITEMS, batch_size=len(ITEMS), progress=False)
    assert [value for score in scores for value in score.loglikelihoods] == pytest.approx(expected, abs=1e-4)


def test_batch_one_equals_batch_n(gemma3, tokenizer) -> None:
    one = score_multiple_choice(gemma3, tokenizer, ITEMS, batch_size=1, progress=False)
    many = score_multiple_choice(gemma3, tokenizer, ITEMS * 2, batch_size=5, progress=False)
    for first, second in zip(one * 2, many, strict=True):
        assert first.loglikelihoods == pytest.approx(second.loglikelihoods, abs=1e-5)
        assert first.greedy == second.greedy


def test_normalised_scores_divide_by_choice_characters(llama, tokenizer) -> None:
    (score,) = score_multiple_choice(llama, tokenizer, [ITEMS[0]], progress=False)
    assert score.char_counts == (3, 3, 18)
    assert score.normalized == pytest.approx([ll / n for ll, n in zip(score.loglikelihoods, (3, 3, 18), strict=True)])
    assert score.token_counts == tuple(len(encode_pair(tokenizer, ITEMS[0][0], c)[1]) for c in ITEMS[0][1])


def test_greedy_flag_matches_argmax(llama, tokenizer) -> None:
    """A continuation built from the model's own argmax tokens is flagged greedy."""
    context = tokenizer.encode("The cat")
    ids = list(context)
    with torch.no_grad():
        for _ in range(3):
            ids.append(int(llama(torch.tensor([ids])).logits[0, -1].argmax()))
    greedy_text = tokenizer.decode(ids[len(context) :])
    if encode_pair(tokenizer, "The cat", greedy_text)[1] != ids[len(context) :]:
        pytest.skip("greedy tokens do not re-tokenise to themselves with this random model")
    (score,) = score_multiple_choice(llama, tokenizer, [("The cat", [greedy_text, " sat on"])], progress=False)
    assert score.greedy[0] is True


def test_encode_pair_follows_the_harness_convention(tokenizer) -> None:
    context, continuation = encode_pair(tokenizer, "Antwort: ", "12")
    assert context == tokenizer.encode("Antwort:")
    assert context + continuation == tokenizer.encode("Antwort: 12")
    context, continuation = encode_pair(tokenizer, "", " Nein")
    assert context == [tokenizer.bos_token_id]
    assert continuation == tokenizer.encode(" Nein", add_special_tokens=False)


def test_empty_choice_is_refused(llama, tokenizer) -> None:
    with pytest.raises(AdamergexError, match="empty continuation"):
        score_multiple_choice(llama, tokenizer, [("The cat", ["", " sat"])], progress=False)
    with pytest.raises(AdamergexError, match="no choices"):
        score_multiple_choice(llama, tokenizer, [("The cat", [])], progress=False)


def test_long_context_is_cut_from_the_left_like_the_harness(llama, tokenizer) -> None:
    prompt = "The cat sat on the mat. " * 40
    choice = " dog sat"
    context, continuation = encode_pair(tokenizer, prompt, choice)
    limit = 64
    kept = (context + continuation)[-(limit + 1) :][:-1]
    with torch.no_grad():
        logprobs = torch.log_softmax(llama(torch.tensor([kept])).logits[0].double(), dim=-1)
    start = len(kept) - len(continuation)
    expected = sum(float(logprobs[start + i, token]) for i, token in enumerate(continuation))
    (score,) = score_multiple_choice(llama, tokenizer, [(prompt, [choice])], max_length=limit, progress=False)
    assert score.loglikelihoods[0] == pytest.approx(expected, abs=1e-4)
