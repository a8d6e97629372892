"""How a generation task reads its answer from a model's text: each task names one of these as its
``extract_answer`` (the references are read the same way)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def canonical_number(text: str) -> str | None:
    """``"1,000"`` → ``"1000"``, ``"12.50"`` → ``"12.5"``, ``"3.0"`` → ``"3"``; None when not a number."""
    try:
        value = Decimal(text.replace(",", "").strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def final_number(text: str) -> str:
    """The last number in ``text``, canonical (thousands commas dropped, trailing decimal zeros dropped).

    MGSM answers are read this way: "... so she has 1,000.50 dollars." → ``"1000.5"``; "" when there is
    no number.
    """
    matches = _NUMBER.findall(text)
    if not matches:
        return ""
    return canonical_number(matches[-1]) or ""


def gsm8k_final_answer(solution: str) -> str | None:
    """The final answer of a GSM8K worked solution: the number after its last ``####`` marker, canonical.

    ``"... 6 * 2 = <<6*2=12>>12 eggs.\n#### 1,012"`` → ``"1012"``; None without a marker or without a number
    after it (GSM8K's own answers always have one).
    """
    if "####" not in solution:
        return None
    return canonical_number(solution.rsplit("####", 1)[1].strip().rstrip("."))


def answer_span(text: str) -> str:
    """An extractive answer (XQuAD): the first line of the generation, surrounding whitespace removed."""
    return text.strip().split("\n", 1)[0].strip()


def summary_text(text: str) -> str:
    """A summary (XL-Sum): the generation with surrounding whitespace removed and inner whitespace collapsed."""
    return " ".join(text.split())
