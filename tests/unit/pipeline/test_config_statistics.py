"""Config settings of the statistics: target-language dev sets, the t budget, selection comparisons."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adamergex.pipeline.config import ExperimentConfig, TuningSpec


def _config(**tuning) -> dict:
    return {
        "name": "x",
        "base_model": "m",
        "target_langs": ["de"],
        "tasks": [{"name": "multiemo", "dev_size": 50}],
        "tuning": tuning,
    }


def test_target_dev_under_100_items_is_refused_unless_forced() -> None:
    with pytest.raises(ValidationError, match="fewer than 100 items"):
        ExperimentConfig(**_config(dev="target"))
    with pytest.raises(ValidationError, match="force_small_dev"):
        ExperimentConfig(**_config(dev="source", compare=["target"]))
    assert ExperimentConfig(**_config(dev="target", force_small_dev=True)).tuning.dev == "target"
    assert ExperimentConfig(**_config(dev="unlabelled")).tuning.dev == "unlabelled"  # no labels: no minimum


def test_budget_must_cover_the_grid() -> None:
    with pytest.raises(ValidationError, match="smaller than the 3-point grid"):
        TuningSpec(grid=[0.0, 0.5, 1.0], budget=2)
    assert TuningSpec(grid=[0.0, 0.5, 1.0], budget=4).budget == 4


def test_defaults_keep_the_strict_zero_shot_headline() -> None:
    tuning = TuningSpec()
    assert tuning.dev == "source" and tuning.compare == [] and tuning.compare_t == []
