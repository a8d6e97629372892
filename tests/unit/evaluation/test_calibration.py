"""Batch calibration: a hand-worked prior, invariance to per-class shifts, recovering a toy model's bias, the
re-scored result, and unlabelled inputs that come from the train split with their labels never read."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adamergex.data.tasks import PromptTemplate, Task, TaskItem, get_task
from adamergex.data.tasks.base import TaskError
from adamergex.errors import AdamergexError
from adamergex.evaluation.calibration import calibrate, calibrate_result, estimate_prior
from adamergex.evaluation.runner import evaluate
from adamergex.evaluation.unlabelled import estimate_model_prior, unlabelled_prompts
from hand_scoring import hand_loglikelihoods
from synthetic_multiemo import write_multiemo_folder

FIXTURES = Path(__file__).parents[2] / "fixtures" / "evaluation"


def test_hand_worked_prior_and_calibrated_predictions() -> None:
    # log softmax([-1, -2]) = [-log(1 + e^-1), -1 - log(1 + e^-1)]; log softmax([-3, -1]) likewise.
    prior = estimate_prior([[-1.0, -2.0], [-3.0, -1.0]])
    first = [-math.log1p(math.exp(-1)), -1 - math.log1p(math.exp(-1))]
    second = [-2 - math.log1p(math.exp(-2)), -math.log1p(math.exp(-2))]
    assert prior == pytest.approx([(first[0] + second[0]) / 2, (first[1] + second[1]) / 2], abs=1e-15)
    assert prior[1] - prior[0] == pytest.approx(0.5, abs=1e-15)  # the mean of the differences (−1 and 2)
    # Class 1 is favoured by 0.5: an item preferring it by 0.3 goes to class 0, one preferring it by 0.7 stays.
    assert calibrate([[-1.3, -1.0], [-1.7, -1.0], [-1.0, -1.2]], prior) == [0, 1, 0]
    assert calibrate([[-1.3, -1.0]], [0.0, 0.0]) == [1]


def test_refuses_items_with_other_class_counts() -> None:
    with pytest.raises(AdamergexError, match="same classes"):
        estimate_prior([[0.0, 1.0], [0.0, 1.0, 2.0]])
    with pytest.raises(AdamergexError, match="same classes"):
        calibrate([[0.0, 1.0, 2.0]], [0.0, 0.0])
    with pytest.raises(AdamergexError, match="at least one"):
        estimate_prior([])


def _scores(draw: Any, items: int, classes: int) -> list[list[float]]:
    value = st.floats(-30.0, 0.0, allow_nan=False)
    return [[draw(value) for _ in range(classes)] for _ in range(items)]


@settings(max_examples=60, deadline=None)
@given(data=st.data(), classes=st.integers(2, 5), unlabelled=st.integers(1, 12), tested=st.integers(1, 12))
def test_property_per_class_shifts_leave_predictions_unchanged(data, classes, unlabelled, tested) -> None:
    pool, items = _scores(data.draw, unlabelled, classes), _scores(data.draw, tested, classes)
    shift = [data.draw(st.floats(-20.0, 20.0)) for _ in range(classes)]
    per_item = [data.draw(st.floats(-20.0, 20.0)) for _ in range(tested)]
    prior = estimate_prior(pool)
    for item in items:  # no near-ties, which rounding of the shifted sums could break either way
        calibrated = sorted(s - p for s, p in zip(item, prior, strict=True))
        assume(calibrated[-1] - calibrated[-2] > 1e-9)
    shifted_pool = [[s + b for s, b in zip(item, shift, strict=True)] for item in pool]
    shifted_items = [
        [s + b + c for s, b in zip(item, shift, strict=True)] for item, c in zip(items, per_item, strict=True)
    ]
    assert calibrate(shifted_items, estimate_prior(shifted_pool)) == calibrate(items, prior)
    assert len(prior) == classes and all(p <= 0 for p in prior)


@settings(max_examples=40, deadline=None)
@given(
    classes=st.integers(2, 6),
    evidence=st.floats(0.5, 10.0),
    bias=st.lists(st.floats(-5.0, 5.0), min_size=6, max_size=6),
    cycles=st.integers(1, 4),
)
def test_property_prior_of_a_biased_toy_model_recovers_the_bias(classes, evidence, bias, cycles) -> None:
    # A toy model: item i of a balanced set has evidence e for class i mod K, and every score carries bias b_c.
    bias = bias[:classes]
    labels = [i % classes for i in range(classes * cycles)]
    scores = [[evidence * (c == y) + bias[c] for c in range(classes)] for y in labels]
    prior = estimate_prior(scores)
    for c in range(1, classes):
        assert prior[c] - prior[0] == pytest.approx(bias[c] - bias[0], abs=1e-9)
    assert calibrate(scores, prior) == labels  # the evidence alone decides once the bias is removed


def test_model_prior_equals_hand_scored_prior_and_result_is_rescored(llama, tokenizer) -> None:
    task = get_task("xnli")
    options = {"data_files": str(FIXTURES / "xnli_de.jsonl")}
    result = evaluate(
        llama, tokenizer, task, "de", split="validation", batch_size=3, progress=False, load_options=options
    )
    rendered = [task.render(item) for item in task.load("de", "validation", **options)]
    hand = [hand_loglikelihoods(llama, tokenizer, item.prompt, item.choices) for item in rendered]

    # Any unlabelled set serves the arithmetic; the Chinese fixture stands in for a train split.
    prompts = unlabelled_prompts(task, "zh", load_options={"data_files": str(FIXTURES / "xnli_zh.jsonl")})
    prior = estimate_model_prior(llama, tokenizer, prompts, batch_size=2, progress=False)
    hand_prior = estimate_prior([hand_loglikelihoods(llama, tokenizer, p.prompt, list(p.choices)) for p in prompts])
    assert prior == pytest.approx(hand_prior, abs=1e-4)

    calibrated = calibrate_result(result, prior, source={"split": "train", "n": len(prompts)})
    expected = [max(range(3), key=lambda c, s=s: s[c] - prior[c]) for s in hand]
    assert [p["prediction"] for p in calibrated.predictions] == expected
    gold = [item.gold for item in rendered]
    assert calibrated.metrics["accuracy"].value == pytest.approx(
        sum(e == g for e, g in zip(expected, gold, strict=True)) / 4
    )
    assert set(calibrated.metrics) == {"accuracy"}  # accuracy_norm is not a calibrated score
    assert calibrated.calibration == {"method": "batch", "prior": prior, "split": "train", "n": len(prompts)}
    assert calibrated.to_json()["calibration"] == calibrated.calibration
    assert "calibration" not in result.to_json() and result.calibration is None  # raw results are as before
    assert [p["loglikelihoods"] for p in calibrated.predictions] == [p["loglikelihoods"] for p in result.predictions]
    with pytest.raises(AdamergexError, match="calibrated already"):
        calibrate_result(calibrated, prior)


class Label:
    """A label that fails on any use: the unlabelled inputs must never read it."""

    def _used(self, *args: Any) -> Any:
        raise AssertionError("a label was read")

    __int__ = __index__ = __str__ = __repr__ = __format__ = __eq__ = __hash__ = __bool__ = _used


def _toy_task(prompt: str, requested: list[str]) -> Task:
    def loader(lang: str, split: str) -> list[TaskItem]:
        requested.append(split)
        return [
            TaskItem(f"toy/{lang}/{split}/{i}", lang, {"text": f"t{i}", "label": Label(), "name": Label()})
            for i in range(5)
        ]

    return Task(
        name="toy",
        description="",
        languages=("de",),
        splits=("train", "dev", "test"),
        kind="multiple_choice",
        metrics=("accuracy",),
        loader=loader,
        templates={"harness": PromptTemplate(prompt=prompt, choices=(" yes", " no"))},
        label_fields=("name",),
    )


def test_unlabelled_inputs_come_from_train_and_no_label_is_read() -> None:
    requested: list[str] = []
    prompts = unlabelled_prompts(_toy_task("Text: {text}", requested), "de", limit=3, seed=1)
    assert requested == ["train"]
    assert len(prompts) == 3 and all(p.id.startswith("toy/de/train/") for p in prompts)
    assert {p.choices for p in prompts} == {(" yes", " no")}
    assert all(p.prompt.startswith("Text: t") for p in prompts)


@pytest.mark.parametrize("prompt", ["Text: {text} ({label})", "Text: {text} ({name})"])
def test_a_prompt_that_uses_the_label_is_refused(prompt: str) -> None:
    with pytest.raises(TaskError):
        unlabelled_prompts(_toy_task(prompt, []), "de")


def test_multiemo_unlabelled_inputs_are_never_dev_or_test_items_or_translations(tmp_path: Path) -> None:
    folder = write_multiemo_folder(tmp_path, {"en": 8_215, "de": 8_215})
    task, options = get_task("multiemo"), {"archive": str(folder)}
    prompts = unlabelled_prompts(task, "de", limit=400, seed=3, load_options=options)
    chosen = {int(p.id.rsplit("/", 1)[1]) for p in prompts}
    held_out = {item.fields["aligned_index"] for split in ("dev", "test") for item in task.load("de", split, **options)}
    held_out_en = {
        item.fields["aligned_index"] for split in ("dev", "test") for item in task.load("en", split, **options)
    }
    assert len(chosen) == 400 and all(p.id.startswith("multiemo-text/de/train/") for p in prompts)
    assert chosen.isdisjoint(held_out) and chosen.isdisjoint(held_out_en)
    assert all("(aligned" in p.prompt for p in prompts)  # the review text, with no label in it
