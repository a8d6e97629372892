"""The answer parsers of MGSM / GSM8K and XQuAD / SQuAD and the SQuAD metrics: hand-worked examples (as
lm-evaluation-harness reads them: the last number with commas dropped; exact match and token F1 after the
SQuAD normalisation) and properties over generated inputs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adamergex.data.tasks.answers import answer_span, canonical_number, final_number, gsm8k_final_answer
from adamergex.evaluation.metrics import exact_match, normalize_answer, token_f1

# Words without digits (so the only numbers in a text are the ones a test puts there).
_WORDS = st.text(alphabet=st.characters(categories=("L", "Zs"), exclude_characters="\n"), max_size=40)
_INTEGERS = st.integers(min_value=-(10**9), max_value=10**9)


@pytest.mark.parametrize(
    ("solution", "answer"),
    [
        ("Each box has 6 pencils, so 4 * 6 = <<4*6=24>>24.\n#### 24", "24"),
        ("1200 + 350 = <<1200+350=1550>>1550 sheep.\n#### 1,550", "1550"),
        ("25 / 2 = <<25/2=12.5>>12.5\n#### 12.50", "12.5"),
        ("She owes 3 - 5 = -2.\n#### -2", "-2"),
        ("no marker: 24", None),
        ("#### twenty", None),
    ],
)
def test_gsm8k_final_answer_by_hand(solution: str, answer: str | None) -> None:
    assert gsm8k_final_answer(solution) == answer


@pytest.mark.parametrize(
    ("prediction", "reference", "em", "f1"),
    [
        ("the Nordsee.", "Nordsee", 1.0, 1.0),  # article and punctuation removed
        ("in die Nordsee", "Nordsee", 0.0, 0.5),  # P = 1/3, R = 1: F1 = 2·(1/3)/(4/3) = 0.5
        ("30 kilometres away", "30 kilometres", 0.0, 0.8),  # P = 2/3, R = 1: F1 = 0.8
        ("1872", "1873", 0.0, 0.0),
    ],
)
def test_squad_exact_match_and_f1_by_hand(prediction: str, reference: str, em: float, f1: float) -> None:
    assert exact_match(prediction, reference) == em
    assert token_f1(prediction, reference) == pytest.approx(f1)


def test_best_over_references_by_hand() -> None:
    assert exact_match("Nordsee", ["in die Nordsee", "Nordsee"]) == 1.0
    assert token_f1("die Nordsee", ["in die Nordsee", "Ostsee"]) == pytest.approx(0.8)  # P = 1, R = 2/3


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), _INTEGERS, st.booleans())
def test_gsm8k_marker_gives_the_number_however_it_is_written(rationale: str, number: int, commas: bool) -> None:
    written = f"{number:,}" if commas else str(number)
    assert gsm8k_final_answer(f"{rationale}\n#### {written}") == str(number)


@settings(max_examples=200, deadline=None)
@given(_WORDS, _INTEGERS, _WORDS, _INTEGERS, _WORDS, st.booleans())
def test_final_number_is_the_last_number(
    head: str, first: int, middle: str, last: int, tail: str, commas: bool
) -> None:
    written = f"{last:,}" if commas else str(last)
    text = f"{head} {first} {middle} {written} {tail}"
    assert final_number(text) == str(last)


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=-(10**6), max_value=10**6, places=3, allow_nan=False, allow_infinity=False))
def test_canonical_numbers_keep_the_value(value: Decimal) -> None:
    text = canonical_number(str(value))
    assert text is not None and Decimal(text) == value
    assert canonical_number(text) == text  # canonical form is a fixed point
    assert final_number(f"so the answer is {value}.") == text


@settings(max_examples=200, deadline=None)
@given(_WORDS)
def test_final_number_of_text_without_digits_is_empty(text: str) -> None:
    assert final_number(text) == ""


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_answer_span_is_the_first_line_stripped(text: str) -> None:
    span = answer_span(text)
    assert "\n" not in span and span == span.strip()
    assert answer_span(span) == span
    assert span == text.strip().split("\n", 1)[0].strip()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_squad_metrics_are_bounded_and_agree_on_equal_answers(prediction: str, reference: str) -> None:
    assert normalize_answer(normalize_answer(prediction)) == normalize_answer(prediction)
    assert exact_match(prediction, prediction) == 1.0 == token_f1(prediction, prediction)
    em, f1 = exact_match(prediction, reference), token_f1(prediction, reference)
    assert 0.0 <= f1 <= 1.0 and em in (0.0, 1.0)
    if em == 1.0:
        assert f1 == 1.0
    assert f1 == pytest.approx(token_f1(reference, prediction))  # F1 is symmetric
