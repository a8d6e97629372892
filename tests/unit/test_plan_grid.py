"""benchmarks/plan_grid.py: list scheduling and critical paths on hand-made graphs, the t search's refinement
steps, and the step graph built from the pipeline's dry run of the paper config (every edge lands on a step)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_plan_grid():
    spec = importlib.util.spec_from_file_location("plan_grid", ROOT / "benchmarks" / "plan_grid.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["plan_grid"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


plan_grid = _load_plan_grid()
Step = plan_grid.Step


def _graph(edges: dict[str, list[str]], cost: dict[str, float]) -> list:
    return [Step(key, "eval", key, cost[key], deps) for key, deps in edges.items()]


def test_diamond_schedule_and_critical_path() -> None:
    cost = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 1.0}
    steps = _graph({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, cost)
    assert plan_grid.list_schedule(steps, 1, cost).makespan == 7.0
    assert plan_grid.list_schedule(steps, 2, cost).makespan == 5.0  # b beside c
    assert plan_grid.list_schedule(steps, 8, cost).makespan == 5.0
    assert plan_grid.critical_path(steps, cost) == ["a", "c", "d"]


def test_the_longest_chain_starts_first() -> None:
    """Two workers, a chain of two 3-second steps and four 1-second steps: starting the chain first gives 6 s
    (the chain's length); starting short steps first would give 7 s."""
    cost = {"x1": 3.0, "x2": 3.0, "y1": 1.0, "y2": 1.0, "y3": 1.0, "y4": 1.0}
    edges = {"y1": [], "y2": [], "y3": [], "y4": [], "x1": [], "x2": ["x1"]}
    steps = _graph(edges, cost)
    assert plan_grid.list_schedule(steps, 2, cost).makespan == 6.0
    with pytest.raises(ValueError, match="cycle"):
        plan_grid.topological_order(_graph({"p": ["q"], "q": ["p"]}, {"p": 1.0, "q": 1.0}))


def test_refinement_rounds_follow_the_grid_and_precede_the_test() -> None:
    search = ("xnli", "adamergex", "de")
    grid = [
        Step(f"g{t}", "eval", f"tune/adamergex/de/t={t}", 1.0, [f"m{t}"], "dev", "xnli", search) for t in ("0.5", "1")
    ]
    test = Step("test", "eval", "adamergex/de/t=1", 5.0, ["m1"], "test", "xnli", search)
    other_task = Step("other", "eval", "adamergex/de/t=1", 5.0, ["n1"], "test", "pawsx", ("pawsx", "adamergex", "de"))
    steps = plan_grid.add_refinement([*grid, test, other_task], refine_rounds=2, extra_points=3)
    added = {step.key: step for step in steps[4:]}
    assert sorted(added) == [
        "eval:xnli/adamergex/de/refine1.1",
        "eval:xnli/adamergex/de/refine1.2",
        "eval:xnli/adamergex/de/refine2.1",
        "merge:xnli/adamergex/de/refine1.1",
        "merge:xnli/adamergex/de/refine1.2",
        "merge:xnli/adamergex/de/refine2.1",
    ]
    assert added["merge:xnli/adamergex/de/refine1.2"].deps == ["g0.5", "g1"]
    assert added["merge:xnli/adamergex/de/refine2.1"].deps == [
        "eval:xnli/adamergex/de/refine1.1",
        "eval:xnli/adamergex/de/refine1.2",
    ]
    assert test.deps == ["m1", "eval:xnli/adamergex/de/refine2.1"]
    assert other_task.deps == ["n1"]  # another task's search is another group


def test_the_paper_configs_dry_run_gives_a_closed_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAMERGEX_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    plan, config = plan_grid.planned_steps(ROOT / "examples" / "paper.yaml")
    steps = plan_grid.graph_from_plan(plan, config.source_lang)
    keys = {step.key for step in steps}
    assert all(dep in keys for step in steps for dep in step.deps)  # every adapter read is a planned step
    roles = {step.role for step in steps}
    assert roles == {"train", "target-ft", "merge", "dev", "test"}
    assert all(step.seconds > 0 for step in steps if step.role != "target-ft")
    references = [step for step in steps if step.kind == "reference"]
    languages = {config.source_lang} | {lang for task in config.tasks for lang in config.task_languages(task)}
    assert len(references) == len(languages)
