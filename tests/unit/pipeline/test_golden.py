"""The pipeline's observable output pinned by golden fixtures, so that a change of its structure is seen to change
nothing: the dry-run plans ``{key: (kind, name, inputs)}`` of the shipped examples and of a config with every
branch they leave out, and a first tiny-model run's records.json, predictions.csv and sealed step keys.

The fixtures were written by the code before the pipeline became steps (commit 418f070) and are compared here
byte for byte. Equal keys mean a cache made by that code serves this one: every step is a hit
(``test_a_rerun_takes_every_step_from_the_cache``; ``test_resume_across_versions.py`` shows it on a cache the old
code made). ``ADAMERGEX_WRITE_GOLDEN=1`` rewrites them (only for a deliberate change of keys or records).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from adamergex.pipeline.config import load_config
from adamergex.pipeline.runner import Pipeline, run_experiment

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "pipeline"
GOLDEN = FIXTURES / "golden"
PLANNED = {
    "demo": ROOT / "examples" / "demo.yaml",
    "demo-quick": ROOT / "examples" / "demo-quick.yaml",
    "multiemo": ROOT / "examples" / "multiemo.yaml",
    "ablations": FIXTURES / "ablations.yaml",
}
WRITE = os.environ.get("ADAMERGEX_WRITE_GOLDEN") == "1"


def _quiet() -> Console:
    return Console(file=io.StringIO())


def _plan(config_path: Path, output: Path) -> dict[str, Any]:
    """The dry run's plan as JSON values: ``{key: [kind, name, inputs]}`` in plan order."""
    pipeline = Pipeline(load_config(config_path, output=output), dry_run=True, console=_quiet(), progress=False)
    pipeline.run()
    plan = {key: [step.kind, step.name, step.inputs] for key, step in pipeline.log.plan.items()}
    return json.loads(json.dumps(plan, default=str))


def _compare_text(name: str, text: str) -> None:
    path = GOLDEN / name
    if WRITE:
        path.write_text(text, encoding="utf-8")
        pytest.skip(f"wrote {path}")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden fixture"


def _compare_json(name: str, value: Any) -> None:
    path = GOLDEN / name
    if WRITE:
        path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        pytest.skip(f"wrote {path}")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert list(value.items()) == list(expected.items()), f"{name} differs from its golden fixture"


@pytest.mark.parametrize("name", sorted(PLANNED))
def test_dry_run_plan_is_unchanged(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _compare_json(f"{name}.plan.json", _plan(PLANNED[name], tmp_path / "run"))


def test_the_paper_plan_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper grid (1,875 steps, generation tasks among them) by the sha256 of its plan."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    plan = _plan(ROOT / "examples" / "paper.yaml", tmp_path / "run")
    digest = hashlib.sha256(json.dumps(plan, sort_keys=False).encode()).hexdigest()
    _compare_json("paper.plan-digest.json", {"steps": len(plan), "sha256": digest})


def test_every_step_key_is_the_hash_of_its_inputs() -> None:
    """The fixtures themselves: each key is sha256 of its kind and inputs (checked with hashlib here)."""
    for name in PLANNED:
        plan = json.loads((GOLDEN / f"{name}.plan.json").read_text(encoding="utf-8"))
        for key, (kind, _, inputs) in plan.items():
            payload = {"step": kind, "schema": 1, "inputs": inputs}
            text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
            assert hashlib.sha256(text.encode()).hexdigest() == key


@pytest.fixture(scope="module")
def tiny_folder(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, udhr_dir: Path, multiemo_dir: Path
) -> Iterator[Path]:
    """A folder where the tiny config's relative paths name the session's tiny model and data; the tests of the
    module run in it."""
    folder = tmp_path_factory.mktemp("golden")
    for name, target in (("tiny-llama", model_dir), ("udhr", udhr_dir), ("bigbench", multiemo_dir)):
        (folder / name).symlink_to(target, target_is_directory=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield folder


@pytest.fixture(scope="module")
def tiny_plan(tiny_folder: Path) -> dict[str, Any]:
    return _plan(FIXTURES / "tiny.yaml", tiny_folder / "run")


@pytest.fixture(scope="module")
def tiny_run(tiny_folder: Path, tiny_plan: dict[str, Any]) -> Path:
    output = tiny_folder / "run"
    run_experiment(load_config(FIXTURES / "tiny.yaml", output=output), progress=False, console=_quiet())
    return output


def _sealed(output: Path) -> dict[str, str]:
    """``{key: kind}`` of every sealed entry of a run's cache, by key."""
    manifests = sorted((output / "cache").glob("*/*/step.json"))
    steps = [json.loads(path.read_text()) for path in manifests]
    return {step["key"]: step["step"] for step in sorted(steps, key=lambda step: step["key"])}


def test_tiny_plan_is_unchanged(tiny_plan: dict[str, Any]) -> None:
    _compare_json("tiny.plan.json", tiny_plan)


def test_tiny_records_are_unchanged(tiny_run: Path) -> None:
    _compare_text("tiny.records.json", (tiny_run / "records.json").read_text(encoding="utf-8"))


def test_tiny_predictions_are_unchanged(tiny_run: Path) -> None:
    _compare_text("tiny.predictions.csv", (tiny_run / "predictions.csv").read_text(encoding="utf-8"))


def test_tiny_run_seals_the_same_steps(tiny_run: Path) -> None:
    _compare_json("tiny.sealed.json", _sealed(tiny_run))


def test_a_rerun_takes_every_step_from_the_cache(tiny_run: Path) -> None:
    pipeline, _, _ = run_experiment(
        load_config(FIXTURES / "tiny.yaml", output=tiny_run), progress=False, console=_quiet()
    )
    assert pipeline.log.executed == []
    assert len(pipeline.log.cached) == len(_sealed(tiny_run))  # each sealed step once (labels repeat across kinds)
