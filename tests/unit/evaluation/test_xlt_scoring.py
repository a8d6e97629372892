"""The XLT baseline is scored by the same engine: the choices' log-likelihood after the XLT prompt (checked by
hand), generations from the XLT prompt with its stop strings and budget, through ``evaluate`` and
``adamergex eval --protocol xlt``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from adamergex.cli import main
from adamergex.data.tasks import get_task
from adamergex.data.tasks.answers import final_number
from adamergex.evaluation.generation import generate_greedy
from adamergex.evaluation.runner import evaluate
from hand_scoring import hand_loglikelihoods

PAPER = str(Path(__file__).parents[2] / "fixtures" / "data" / "hf" / "paper" / "{dataset}_{lang}_{split}.jsonl")


def test_multiple_choice_xlt_scores_the_choices_after_the_xlt_prompt(llama, tokenizer) -> None:
    task = get_task("xnli")
    settings = {"split": "test", "batch_size": 2, "progress": False, "load_options": {"data_files": PAPER}}
    result = evaluate(llama, tokenizer, task, "de", protocol="xlt", **settings)  # type: ignore[arg-type]
    assert (result.protocol, result.n) == ("xlt", 4)
    rendered = [task.render(item, "xlt") for item in task.load("de", "test", data_files=PAPER)]
    for prediction, item in zip(result.predictions or [], rendered, strict=True):
        by_hand = hand_loglikelihoods(llama, tokenizer, item.prompt, item.choices or [])
        assert prediction["loglikelihoods"] == pytest.approx(by_hand, abs=1e-4)
        assert prediction["prediction"] == max(range(3), key=by_hand.__getitem__)
    paper = evaluate(llama, tokenizer, task, "de", protocol="paper", **settings)  # type: ignore[arg-type]
    assert [p["loglikelihoods"] for p in paper.predictions or []] != [
        p["loglikelihoods"] for p in result.predictions or []
    ]


@pytest.mark.parametrize(("task_name", "lang", "split"), [("mgsm", "de", "test"), ("xquad", "de", "validation")])
def test_generation_xlt_generates_from_the_xlt_prompt(llama, tokenizer, task_name: str, lang: str, split: str) -> None:
    task = get_task(task_name)
    result = evaluate(
        llama,
        tokenizer,
        task,
        lang,
        split=split,
        protocol="xlt",
        limit=1,  # MGSM's XLT budget is 256 new tokens
        batch_size=1,
        progress=False,
        load_options={"data_files": PAPER},
    )
    rendered = [task.render(item, "xlt") for item in task.load(lang, split, data_files=PAPER, limit=1)]
    for prediction, item in zip(result.predictions or [], rendered, strict=True):
        (expected,) = generate_greedy(
            llama,
            tokenizer,
            [item.prompt],
            max_new_tokens=item.max_new_tokens or 0,
            stop=tuple(item.stop or ()),
            batch_size=1,
            progress=False,
        )
        assert prediction["generation"] == expected
        assert prediction["answer"] == task.extract_answer(expected)
    if task_name == "mgsm":
        assert all(p["answer"] == final_number(p["generation"]) for p in result.predictions or [])
    assert set(result.metrics) == set(task.metrics)


def test_cli_eval_protocol_xlt(saved_llama: Path, tmp_path: Path) -> None:
    out = tmp_path / "xlt.json"
    args = ["eval", "--base", str(saved_llama), "--task", "pawsx", "--lang", "de", "--protocol", "xlt"]
    result = CliRunner().invoke(main, [*args, "--batch-size", "2", "--data-files", PAPER, "--out", str(out)])
    assert result.exit_code == 0, result.output
    (record,) = json.loads(out.read_text())["results"]
    assert (record["protocol"], record["task"], record["n"], record["adapter"]) == ("xlt", "pawsx", 3, None)
