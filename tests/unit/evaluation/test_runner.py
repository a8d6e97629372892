"""evaluate(): results against hand computations, the JSON record, atomic writing, batch size, bad input."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
from pathlib import Path

import pytest

from adamergex.data.tasks import PromptTemplate, Task, TaskItem, get_task
from adamergex.data.tasks.answers import final_number
from adamergex.errors import AdamergexError, OutputExistsError
from adamergex.evaluation.runner import auto_batch_size, evaluate, write_results
from hand_scoring import hand_loglikelihoods

FIXTURES = Path(__file__).parents[2] / "fixtures" / "evaluation"


def hand_choice(model, tokenizer, prompt: str, choices: list[str]) -> int:
    totals = hand_loglikelihoods(model, tokenizer, prompt, choices)
    return max(range(len(totals)), key=totals.__getitem__)


def test_multiple_choice_accuracy_equals_hand_computation(llama, tokenizer) -> None:
    task = get_task("xnli")
    fixture = str(FIXTURES / "xnli_de.jsonl")
    result = evaluate(
        llama,
        tokenizer,
        task,
        "de",
        split="validation",
        batch_size=3,
        progress=False,
        load_options={"data_files": fixture},
    )
    rendered = [task.render(item, "harness") for item in task.load("de", "validation", data_files=fixture)]
    chosen = [hand_choice(llama, tokenizer, item.prompt, item.choices) for item in rendered]
    correct = [float(c == item.gold) for c, item in zip(chosen, rendered, strict=True)]
    assert result.n == 4
    assert [p["prediction"] for p in result.predictions] == chosen
    assert result.metrics["accuracy"].value == pytest.approx(sum(correct) / 4)
    assert result.metrics["accuracy"].n == 4
    assert set(result.metrics) == {"accuracy", "accuracy_norm"}
    assert [p["id"] for p in result.predictions] == [item.id for item in rendered]


def test_generation_exact_match_equals_hand_computation(llama, tokenizer) -> None:
    task = get_task("mgsm")
    fixture = str(FIXTURES / "mgsm_de.jsonl")
    result = evaluate(
        llama,
        tokenizer,
        task,
        "de",
        split="test",
        batch_size="auto",
        progress=False,
        load_options={"data_files": fixture},
    )
    items = [task.render(item, "harness") for item in task.load("de", "test", data_files=fixture)]
    assert result.n == len(items) == 3
    for prediction, item in zip(result.predictions, items, strict=True):
        assert prediction["answer"] == final_number(prediction["generation"])
        assert prediction["gold"] == item.gold
    expected = sum(p["answer"] == final_number(p["gold"][0]) for p in result.predictions) / 3
    assert result.metrics["exact_match"].value == pytest.approx(expected)


def test_generation_reads_answers_with_the_tasks_own_extractor(llama, tokenizer) -> None:
    """The answer extraction is part of the task definition: a task with its own extractor (any name) gets it."""
    fixture = str(FIXTURES / "mgsm_de.jsonl")
    task = dataclasses.replace(get_task("mgsm"), name="mgsm-first-character", extract_answer=lambda text: text[:1])
    result = evaluate(
        llama, tokenizer, task, "de", split="test", batch_size=3, progress=False, load_options={"data_files": fixture}
    )
    assert [p["answer"] for p in result.predictions] == [p["generation"][:1] for p in result.predictions]
    expected = sum(p["generation"][:1] == p["gold"][0][:1] for p in result.predictions) / 3
    assert result.metrics["exact_match"].value == pytest.approx(expected)


def test_result_json_and_atomic_write(llama, tokenizer, tmp_path: Path) -> None:
    result = evaluate(
        llama,
        tokenizer,
        "xcopa",
        "it",
        split="test",
        limit=2,
        batch_size=2,
        progress=False,
        model_name="tiny-llama",
        adapter="some/adapter",
        adapter_fingerprint="abc",
        load_options={"data_files": str(FIXTURES / "xcopa_it.jsonl")},
        keep_predictions=False,
    )
    record = result.to_json()
    for key in (
        "model",
        "adapter",
        "adapter_fingerprint",
        "task",
        "protocol",
        "split",
        "n",
        "metrics",
        "versions",
        "created",
        "seconds",
        "batch_size",
    ):
        assert key in record
    assert record["n"] == 2 and record["limit"] == 2 and "predictions" not in record
    assert record["metrics"]["accuracy"]["low"] <= record["metrics"]["accuracy"]["value"]
    assert record["versions"]["torch"] == importlib.metadata.version("torch")
    out = tmp_path / "results.json"
    write_results([result], out)
    assert json.loads(out.read_text())["results"][0]["task"] == "xcopa"
    with pytest.raises(OutputExistsError):
        write_results([result], out)
    write_results([result, result], out, force=True)
    assert len(json.loads(out.read_text())["results"]) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.json"]


def test_bad_input_is_refused(llama, tokenizer) -> None:
    with pytest.raises(AdamergexError, match="unknown task"):
        evaluate(llama, tokenizer, "no-such-task", "de", progress=False)
    with pytest.raises(AdamergexError, match="xnli"):
        evaluate(llama, tokenizer, "xnli", "qu", split="validation", progress=False)
    with pytest.raises(AdamergexError, match="split"):
        evaluate(llama, tokenizer, "xquad", "de", split="test", progress=False)
    with pytest.raises(AdamergexError, match="batch size"):
        evaluate(
            llama,
            tokenizer,
            "xcopa",
            "it",
            split="test",
            batch_size=0,
            progress=False,
            load_options={"data_files": str(FIXTURES / "xcopa_it.jsonl")},
        )


def test_empty_split_is_refused(llama, tokenizer) -> None:
    empty = Task(
        name="empty",
        description="",
        languages=("de",),
        splits=("test",),
        kind="multiple_choice",
        metrics=("accuracy",),
        loader=lambda lang, split: [],
        templates={"harness": PromptTemplate(prompt="{x}", choices=(" a", " b"))},
    )
    with pytest.raises(AdamergexError, match="no items"):
        evaluate(llama, tokenizer, empty, "de", progress=False)


def test_macro_f1_is_reported_when_the_task_asks(llama, tokenizer) -> None:
    items = [
        TaskItem(id=f"t/{i}", lang="de", fields={"x": text, "label": i % 2})
        for i, text in enumerate(["Der Hund", "Die Katze", "Das Haus", "Der Baum"])
    ]
    task = Task(
        name="toy",
        description="",
        languages=("de",),
        splits=("test",),
        kind="multiple_choice",
        metrics=("accuracy", "macro_f1"),
        loader=lambda lang, split: items,
        templates={"harness": PromptTemplate(prompt="{x}", choices=(" schläft", " läuft"))},
    )
    result = evaluate(llama, tokenizer, task, "de", batch_size=4, progress=False, seed=3)
    predicted = [p["prediction"] for p in result.predictions]
    gold = [i % 2 for i in range(4)]
    labels = set(predicted) | set(gold)
    f1 = []
    for label in labels:
        tp = sum(p == g == label for p, g in zip(predicted, gold, strict=True))
        f1.append(2 * tp / (predicted.count(label) + gold.count(label)))
    assert result.metrics["macro_f1"].value == pytest.approx(sum(f1) / len(f1))


def test_auto_batch_size_shrinks_with_sequence_length(llama) -> None:
    short = auto_batch_size(llama, 16, 1000)
    assert 1 <= short <= 32
    assert auto_batch_size(llama, 16, 3) == min(short, 3)
    assert auto_batch_size(llama, 10**9, 1000) == 1
