"""Greedy generation against a hand-written argmax loop, stop strings, and answer extraction."""

from __future__ import annotations

import pytest
import torch

from adamergex.data.tasks.answers import answer_span, canonical_number, final_number, summary_text
from adamergex.errors import AdamergexError
from adamergex.evaluation.generation import cut_at_stop, generate_greedy

PROMPTS = [
    "Frage: how many cats?\nAntwort:",
    "Kontext: Der Hund schläft.\n\nFrage: Wer?\n\nAntwort:",
    "我喜欢",
    "The",
]


def hand_greedy(model, tokenizer, prompt: str, max_new_tokens: int) -> str:
    """One sequence, no padding, no cache: append the argmax token ``max_new_tokens`` times (or until EOS)."""
    ids = tokenizer.encode(prompt)
    start = len(ids)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            token = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            ids.append(token)
            if token == tokenizer.eos_token_id:
                break
    return tokenizer.decode(ids[start:], skip_special_tokens=True)


@pytest.mark.parametrize("model_name", ["llama", "gemma3"])
def test_batched_left_padded_generation_equals_unbatched_argmax(request, tokenizer, model_name: str) -> None:
    model = request.getfixturevalue(model_name)
    expected = [hand_greedy(model, tokenizer, prompt, 10) for prompt in PROMPTS]
    for batch_size in (1, 3):
        got = generate_greedy(model, tokenizer, PROMPTS, max_new_tokens=10, batch_size=batch_size, progress=False)
        assert got == expected


def test_text_is_cut_at_the_earliest_stop_string(llama, tokenizer) -> None:
    full = generate_greedy(llama, tokenizer, PROMPTS, max_new_tokens=12, progress=False)
    # Stop strings taken from inside the uncut generations, so each of them really is produced.
    stops = [full[0][4:6], full[2][3:5]]
    got = generate_greedy(llama, tokenizer, PROMPTS, max_new_tokens=12, stop=stops, batch_size=4, progress=False)
    for text, cut in zip(full, got, strict=True):
        positions = [text.find(stop) for stop in stops if stop in text]
        assert cut == (text[: min(positions)] if positions else text)
    assert len(got[0]) <= 4


def test_cut_at_stop() -> None:
    assert cut_at_stop("42\n\nFrage: next", ["Frage:", "\n"]) == "42"
    assert cut_at_stop("no stop here", ["\n", ""]) == "no stop here"


def test_bad_budgets_are_refused(llama, tokenizer) -> None:
    with pytest.raises(AdamergexError, match="max_new_tokens"):
        generate_greedy(llama, tokenizer, ["x"], max_new_tokens=0, progress=False)
    with pytest.raises(AdamergexError, match="no room"):
        generate_greedy(llama, tokenizer, ["x"], max_new_tokens=2000, progress=False)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Sie hat 1,000 Äpfel.", "1000"),
        ("first 3 then 12.50 dollars", "12.5"),
        ("The answer is 18.", "18"),
        ("-7 degrees", "-7"),
        ("4.0", "4"),
        ("total: 1,234,567.890 units", "1234567.89"),
        ("keine Zahl", ""),
    ],
)
def test_final_number(text: str, number: str) -> None:
    assert final_number(text) == number


def test_canonical_number_rejects_text() -> None:
    assert canonical_number("abc") is None
    assert canonical_number("1,000") == "1000"


def test_span_and_summary_extraction() -> None:
    assert answer_span("  Berlin \nmore text") == "Berlin"
    assert summary_text(" Ein  Satz.\n Noch einer. ") == "Ein Satz. Noch einer."
