"""Metrics on worked examples, against peer implementations where one is installed, and the bootstrap."""

from __future__ import annotations

import random

import numpy as np
import pytest

from adamergex.errors import AdamergexError
from adamergex.evaluation.metrics import (
    accuracy,
    bootstrap_interval,
    exact_match,
    macro_f1,
    macro_f1_with_interval,
    mean_with_interval,
    normalize_answer,
    rouge_l,
    rouge_tokenize,
    token_f1,
)


def test_accuracy_worked_example() -> None:
    assert accuracy([0, 1, 2, 3], [0, 1, 1, 3]) == 0.75


def test_macro_f1_worked_example() -> None:
    # label 0: tp 1, fp 0, fn 0 -> 1; label 1: tp 1, fp 1, fn 0 -> 2/3; label 2: tp 1, fp 0, fn 1 -> 2/3
    assert macro_f1([0, 1, 1, 2], [0, 1, 2, 2]) == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    # a label predicted but never gold scores 0 and still counts
    assert macro_f1([3, 0], [0, 0]) == pytest.approx((0 + 2 / 3) / 2)


def test_macro_f1_equals_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    generator = random.Random(3)
    gold = [generator.randrange(4) for _ in range(300)]
    predicted = [label if generator.random() < 0.6 else generator.randrange(4) for label in gold]
    assert macro_f1(predicted, gold) == pytest.approx(metrics.f1_score(gold, predicted, average="macro"))


def test_squad_exact_match_and_f1_worked_examples() -> None:
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert exact_match("the Eiffel tower.", ["Eiffel Tower"]) == 1.0
    assert exact_match("Paris", ["Eiffel Tower", "London"]) == 0.0
    # prediction tokens: in, 1889; gold: 1889 -> P 1/2, R 1 -> F1 2/3
    assert token_f1("in 1889", "1889") == pytest.approx(2 / 3)
    assert token_f1("in 1889", ["nope", "1889"]) == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0
    assert token_f1("", "x") == 0.0


def test_rouge_tokenizer_keeps_every_script() -> None:
    assert rouge_tokenize("Hello, World 42!") == ["hello", "world", "42"]
    assert rouge_tokenize("我喜欢猫") == ["我", "喜", "欢", "猫"]
    assert rouge_tokenize("สวัสดี") == ["ส", "ว", "ั", "ส", "ด", "ี"]
    assert rouge_tokenize("القطة تنام") == ["القطة", "تنام"]
    assert rouge_tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]
    assert rouge_tokenize("abc中文") == ["abc", "中", "文"]


@pytest.mark.parametrize(
    ("prediction", "reference"),
    [
        ("我喜欢猫", "我喜欢狗"),
        ("แมวนอนบนเสื่อ", "แมวกินปลา"),
        ("القطة تنام على السجادة", "القطة تأكل على الطاولة"),
    ],
)
def test_rouge_l_non_latin_overlap_is_non_zero_and_disjoint_is_zero(prediction: str, reference: str) -> None:
    assert rouge_l(prediction, reference) > 0
    assert rouge_l(prediction, "xyz qrs") == 0.0


def test_rouge_l_worked_examples() -> None:
    # LCS of (我 喜 欢 猫) and (我 喜 欢 狗) is 3: P = R = 3/4.
    assert rouge_l("我喜欢猫", "我喜欢狗") == pytest.approx(0.75)
    # LCS "the cat the mat" has length 4 of 6 and 5 tokens: P 4/6, R 4/5.
    p, r = 4 / 6, 4 / 5
    assert rouge_l("the cat sat on the mat", "the cat and the mat") == pytest.approx(2 * p * r / (p + r))
    assert rouge_l("x", ["y", "x"]) == 1.0


def test_rouge_l_equals_rouge_score_with_the_same_tokens() -> None:
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

    class Tokens:
        def tokenize(self, text: str) -> list[str]:
            return rouge_tokenize(text)

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Tokens())
    for prediction, reference in [
        ("the cat sat on the mat", "the cat and the mat"),
        ("我喜欢猫在睡觉", "猫在睡觉我喜欢"),
        ("القطة تنام على السجادة", "القطة تأكل على الطاولة"),
    ]:
        expected = scorer.score(reference, prediction)["rougeL"].fmeasure
        assert rouge_l(prediction, reference) == pytest.approx(expected)


def test_bootstrap_contains_the_point_estimate_and_is_deterministic() -> None:
    generator = np.random.default_rng(0)
    per_item = (generator.random(200) < 0.7).astype(float)
    first = mean_with_interval(per_item, seed=5)
    again = mean_with_interval(per_item, seed=5)
    assert first == again
    assert first.low <= first.value <= first.high
    assert first.value == pytest.approx(per_item.mean())
    assert first.n == 200
    # The normal approximation of a proportion's interval: half-width ~ 1.96 * sqrt(p(1-p)/n).
    half_width = 1.96 * np.sqrt(first.value * (1 - first.value) / 200)
    assert (first.high - first.low) / 2 == pytest.approx(half_width, rel=0.15)


def test_macro_f1_bootstrap() -> None:
    generator = random.Random(1)
    gold = [generator.randrange(4) for _ in range(150)]
    predicted = [label if generator.random() < 0.7 else generator.randrange(4) for label in gold]
    value = macro_f1_with_interval(predicted, gold, seed=2)
    assert value == macro_f1_with_interval(predicted, gold, seed=2)
    assert value.low <= value.value <= value.high
    assert value.value == pytest.approx(macro_f1(predicted, gold))


def test_bootstrap_interval_of_a_constant_is_the_constant() -> None:
    assert bootstrap_interval(lambda indices: 0.5, 10) == (0.5, 0.5)


def test_empty_and_mismatched_inputs_are_refused() -> None:
    with pytest.raises(AdamergexError, match="empty"):
        accuracy([], [])
    with pytest.raises(AdamergexError, match="pair up"):
        macro_f1([1], [1, 2])
    with pytest.raises(AdamergexError, match="empty"):
        mean_with_interval([])
    with pytest.raises(AdamergexError, match="reference"):
        exact_match("x", [])
