"""The method table: the config's method names come from it, and each merge entry builds the adapter its
formula says (checked on dense ΔW / vectors computed here, not by the merge code)."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
import torch

from adamergex.adapters.io import read_adapter
from adamergex.errors import AdamergexError
from adamergex.pipeline.config import ExperimentConfig, load_config
from adamergex.pipeline.methods import METHOD_NAMES, METHODS, MergeJob
from tiny_adapter_folders import ia3_config, ia3_tensors, lora_config, lora_tensors, write_adapter_folder


def test_the_config_accepts_exactly_the_tables_names(tmp_path: Path) -> None:
    annotation = ExperimentConfig.model_fields["methods"].annotation
    assert get_args(get_args(annotation)[0]) == METHOD_NAMES
    config = tmp_path / "c.yaml"
    config.write_text("name: x\nbase_model: m\ntarget_langs: [de]\ntasks: [{name: multiemo}]\nmethods: [nope]\n")
    with pytest.raises(AdamergexError, match=r"methods\.0: Input should be 'base'") as error:
        load_config(config)
    assert all(name in str(error.value) for name in METHOD_NAMES)


def test_merges_and_only_merges_have_a_builder_and_take_t() -> None:
    for spec in METHODS.values():
        assert (spec.build is not None) == (spec.scores == "merge") == spec.takes_t, spec.name
        if spec.build is not None:
            assert {"task", "reference_target"} <= set(spec.needs)


def _job(tmp_path: Path, kind: str, t: float, **settings) -> MergeJob:
    parts = {}
    for seed, role in enumerate(("task", "reference_target", "reference_source")):
        config, tensors = (lora_config(), lora_tensors(seed)) if kind == "lora" else (ia3_config(), ia3_tensors(seed))
        parts[role] = write_adapter_folder(tmp_path / role, config, tensors)
    options = {"lora_mode": "concat", "rank": None, "base_weights": lambda names: {}, **settings}
    return MergeJob(kind=kind, parts=parts, t=t, out=tmp_path / "out" / "adapter", **options)


def _build(method: str, job: MergeJob) -> None:
    build = METHODS[method].build
    assert build is not None
    build(job)


def _delta(folder: Path) -> dict[str, torch.Tensor]:
    adapter = read_adapter(folder)
    if adapter.kind == "lora":
        return {n: m.scale * m.lora_B.double() @ m.lora_A.double() for n, m in adapter.modules.items()}
    return {n: m.vector.double() for n, m in adapter.modules.items()}


@pytest.mark.parametrize("kind", ["lora", "ia3"])
def test_adamergex_and_arimerge_entries_build_their_formulas(tmp_path: Path, kind: str) -> None:
    t = 0.7
    job = _job(tmp_path / "a", kind, t)
    T, Rt, Rs = (_delta(job.parts[role]) for role in ("task", "reference_target", "reference_source"))
    _build("adamergex", job)
    merged = _delta(job.out)
    for name in T:
        if kind == "lora":
            expected = T[name] + t * (Rt[name] - Rs[name])
        else:
            expected = T[name] * (t * (Rt[name] / Rs[name] - 1) + 1)
        torch.testing.assert_close(merged[name], expected, rtol=1e-5, atol=1e-5)
    job = _job(tmp_path / "b", kind, t)
    _build("arimerge", job)
    merged = _delta(job.out)
    for name in T:
        expected = T[name] + t * (Rt[name] if kind == "lora" else Rt[name] - 1)
        torch.testing.assert_close(merged[name], expected, rtol=1e-5, atol=1e-5)


def test_adamergex_entry_uses_the_runs_svd_rank(tmp_path: Path) -> None:
    job = _job(tmp_path, "lora", 1.0, lora_mode="svd", rank=2)
    _build("adamergex", job)
    assert {module.rank for module in read_adapter(job.out).modules.values()} == {2}


def test_factor_is_lora_only() -> None:
    assert METHODS["factor"].adapter_kinds == ("lora",)
    assert METHODS["majority"].task_kinds == ("multiple_choice",)


def test_the_table_says_which_comparisons_the_report_makes() -> None:
    """One baseline (Eng-FT, with its transfer gap), the merges with a t also against AriMerge; the analysis, the
    report, the graph and the records name none of the methods compared (``majority`` and ``target-ft`` are also
    the names of a record field and of a training role)."""
    import ast

    from adamergex.pipeline.methods import BASELINE, VERSUS

    assert BASELINE == "eng-ft" and [name for name, spec in METHODS.items() if spec.baseline] == [BASELINE]
    assert VERSUS == ("arimerge",)
    assert {name for name, spec in METHODS.items() if spec.versus} == {"adamergex", "adamergex-cross", "factor"}
    assert all(METHODS[name].display for name in (BASELINE, *VERSUS))
    for module in ("analysis.py", "report.py", "graph.py", "records.py"):
        path = Path(__file__).resolve().parents[3] / "src" / "adamergex" / "pipeline" / module
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
        compared = {BASELINE, *VERSUS, *(name for name, spec in METHODS.items() if spec.versus)}
        assert not constants & compared, module
