"""The pipeline as steps, and the invariants that keep it so, checked on the source and on golden plans:
every step kind is registered; a step's key is the hash of its inputs, however it was built or shipped;
executors, the estimate and the sharded step name no step kind; the graph reads no cache; only the resolver
switches on a planning mode; modules, classes and the runner stay small."""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import pickle
from pathlib import Path
from typing import get_args

import pytest

from adamergex.errors import AdamergexError
from adamergex.pipeline import steps as steps_module
from adamergex.pipeline.config import ExecutorSpec, StepResources
from adamergex.pipeline.executors import ready_steps
from adamergex.pipeline.steps import STEP_KINDS, Evaluation, Merge, Step, TaskTraining, step_class, step_from_json

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ROOT / "src" / "adamergex" / "pipeline"
GOLDEN_PLAN = ROOT / "tests" / "fixtures" / "pipeline" / "golden" / "ablations.plan.json"


def _tree(name: str) -> ast.Module:
    return ast.parse((PIPELINE / name).read_text(encoding="utf-8"))


def test_every_step_kind_is_registered() -> None:
    concrete = [
        cls
        for _, cls in inspect.getmembers(steps_module, inspect.isclass)
        if issubclass(cls, Step) and "kind" in vars(cls)
    ]
    assert {cls.kind: cls for cls in concrete} == STEP_KINDS
    assert all(name == cls.kind for name, cls in STEP_KINDS.items())
    # executor.resources is keyed by the registry's names (its Literal is built from STEP_KINDS)
    key_type, _ = get_args(ExecutorSpec.model_fields["resources"].annotation)
    assert get_args(key_type) == tuple(STEP_KINDS)
    assert [StepResources(num_gpus=2).processes_for(kind) for kind in STEP_KINDS] == [
        2 if cls.data_parallel else 1 for cls in STEP_KINDS.values()
    ]
    with pytest.raises(AdamergexError, match="unknown step kind 'train'; expected one of reference, task, merge"):
        step_class("train")


def test_a_steps_key_is_the_hash_of_its_inputs_however_it_travels() -> None:
    """Every step of a golden plan, rebuilt from (kind, name, inputs): its key is sha256 of kind and inputs
    (computed here with hashlib), and survives JSON (a launched process) and pickling (a Ray task)."""
    plan = json.loads(GOLDEN_PLAN.read_text(encoding="utf-8"))
    assert {kind for kind, _, _ in plan.values()} == set(STEP_KINDS)
    for key, (kind, name, inputs) in plan.items():
        step = STEP_KINDS[kind](name, inputs)
        text = json.dumps({"step": kind, "schema": 1, "inputs": inputs}, sort_keys=True, separators=(",", ":"))
        assert step.key == key == hashlib.sha256(text.encode()).hexdigest()
        assert step_from_json(json.loads(json.dumps(step.to_json()))) == step
        assert pickle.loads(pickle.dumps(step)).key == key


def test_a_step_from_another_version_is_refused() -> None:
    step = Evaluation("base/de", {"adapter": None, "lang": "de"})
    shipped = {**step.to_json(), "key": "0" * 64}
    with pytest.raises(AdamergexError, match="hashes to another key here than where it was planned"):
        step_from_json(shipped)


def test_executors_schedule_steps_by_their_facts() -> None:
    train = TaskTraining("task", {"adapter": "lora", "lang": "en"}, role="task")
    merge = Merge("merge", {"adapter": "lora", "parts": {"task": train.key}})
    test = Evaluation("test", {"adapter": merge.key})
    base = Evaluation("base", {"adapter": None})
    plan = {step.key: step for step in (test, base, merge, train)}
    assert ready_steps(plan, set()) == [train, base]  # trainings first; the merge waits for its part
    assert ready_steps(plan, {train.key}) == [base]
    assert [s.cost_class() for s in (train, merge, test, base)] == [
        "task/lora",
        "merge/lora",
        "eval/adapter",
        "eval/base",
    ]


def _names_cost_class(text: str) -> bool:
    kind, slash, _ = text.partition("/")
    return bool(slash) and kind in STEP_KINDS


def _kind_literals(tree: ast.Module) -> list[str]:
    """Where a step kind is named in code: compared with (``kind == "eval"``, ``in ("reference", "task")``),
    keyed by in a table of kinds, or prefixing a cost class (``"merge/…"``)."""
    kinds = set(STEP_KINDS)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for constant in ast.walk(node):
                if isinstance(constant, ast.Constant) and constant.value in kinds:
                    found.append(f"line {node.lineno}: compares with {constant.value!r}")
        elif isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in kinds]
            if len(keys) > 1:
                found.append(f"line {node.lineno}: a table keyed by kinds {keys}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _names_cost_class(node.value):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


@pytest.mark.parametrize("module", ["executors.py", "estimate.py", "sharded_step.py"])
def test_executors_estimate_and_sharded_step_name_no_step_kind(module: str) -> None:
    assert _kind_literals(_tree(module)) == []


def test_the_kind_check_sees_a_kind_named_in_code() -> None:
    source = 'if step.kind in ("reference", "task"):\n    cls = "merge/lora"\nX = {"eval": 1, "merge": 2}\n'
    assert len(_kind_literals(ast.parse(source))) == 4  # two compared, one table, one cost class


def _imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_the_graph_reads_no_cache() -> None:
    imported = _imported(_tree("graph.py"))
    assert not {name for name in imported if "pipeline.cache" in name or "pipeline.resolver" in name}
    names = {node.id for node in ast.walk(_tree("graph.py")) if isinstance(node, ast.Name)}
    assert "StepCache" not in names


MODES = {"dry_run", "frontier"}
#: Where a mode may decide something outside the resolver: what is done with a plan (write no files, plan
#: in this process), never which steps exist.
ENTRY_POINTS = {("runner.py", "run_experiment"), ("executors.py", "execute")}


def test_planning_modes_live_in_the_resolver_alone() -> None:
    wrong = []
    for path in sorted(PIPELINE.glob("*.py")):
        if path.name == "resolver.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
            for node in ast.walk(function):
                if isinstance(node, ast.Attribute) and node.attr in MODES:
                    wrong.append(f"{path.name}:{node.lineno}: reads .{node.attr}")
                tests = [node.test] if isinstance(node, ast.If | ast.IfExp | ast.While) else []
                for test in tests:
                    used = {n.id for n in ast.walk(test) if isinstance(n, ast.Name)} & MODES
                    if used and (path.name, function.name) not in ENTRY_POINTS:
                        wrong.append(f"{path.name}:{node.lineno}: {function.name} branches on {sorted(used)}")
        if path.name in ("graph.py", "steps.py", "records.py"):
            mentioned = {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg | ast.keyword) and n.arg} & MODES
            mentioned |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} & MODES
            wrong += [f"{path.name}: mentions {name}" for name in sorted(mentioned)]
    assert wrong == []


def test_pipeline_modules_and_classes_stay_small() -> None:
    too_long = {}
    too_many = {}
    for path in sorted(PIPELINE.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > 500:
            too_long[path.name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
                if len(methods) > 20:
                    too_many[f"{path.name}:{node.name}"] = len(methods)
    assert too_long == {} and too_many == {}
    assert len((PIPELINE / "runner.py").read_text(encoding="utf-8").splitlines()) <= 150
