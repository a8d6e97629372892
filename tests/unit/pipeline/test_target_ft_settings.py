"""`training.target_ft` overrides the task settings for the target-ft baseline only."""

from __future__ import annotations

from pathlib import Path

import pytest

from adamergex.errors import AdamergexError
from adamergex.pipeline.config import load_config
from adamergex.pipeline.steps import TaskTraining

TASK = {"max_steps": 2, "batch_size": 4, "max_length": 64, "save_steps": 1}
REFERENCE = {"max_steps": 2, "batch_size": 2, "max_length": 32, "save_steps": 1}


def _keys(experiment, tmp_path: Path, **training: dict) -> tuple[str, str]:
    config = load_config(experiment(tmp_path / "run", training={"reference": REFERENCE, "task": TASK, **training}))
    task = config.tasks[0]
    return TaskTraining.of(config, "lora", task, "en", 0).key, TaskTraining.of(config, "lora", task, "de", 0).key


def test_target_ft_settings_change_only_the_target_language_task_adapters(experiment, tmp_path: Path) -> None:
    plain = _keys(experiment, tmp_path)
    shorter = _keys(experiment, tmp_path, target_ft={"max_steps": 1})
    same_as_task = _keys(experiment, tmp_path, target_ft={"max_steps": 2})
    assert shorter[0] == plain[0] and shorter[1] != plain[1]
    assert same_as_task == plain  # an override equal to the task setting changes nothing


def test_target_ft_settings_are_validated_before_work(experiment, tmp_path: Path) -> None:
    path = experiment(tmp_path / "run", training={"reference": REFERENCE, "task": TASK, "target_ft": {"max_steps": -1}})
    with pytest.raises(AdamergexError, match=r"training\.target_ft"):
        load_config(path)
