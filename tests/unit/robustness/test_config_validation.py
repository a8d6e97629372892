"""Bad experiment configs are refused by ``run --dry-run``, before any work, with the field's name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from adamergex.cli import main


def _config(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": "x",
        "base_model": "tiny",
        "target_langs": ["de"],
        "reference": {"source": "udhr", "options": {"archive": str(tmp_path / "udhr")}},
        "tasks": [{"name": "multiemo", "options": {"archive": str(tmp_path / "bigbench")}}],
        "t": "tune",
        "training": {"reference": {"max_steps": 2}, "task": {"max_steps": 2}},
        "output": str(tmp_path / "run"),
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = config
        for part in parents:
            node = node[part]
        node[last] = value
    return config


def dry_run(tmp_path: Path, text: bytes) -> tuple[int, str]:
    path = tmp_path / "experiment.yaml"
    path.write_bytes(text)
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def test_the_unchanged_config_passes(tmp_path: Path) -> None:
    code, output = dry_run(tmp_path, yaml.safe_dump(_config(tmp_path)).encode())
    assert code == 0 and "step(s) to run" in output, output


BAD = [
    ({"t": float("nan")}, ["t", "finite number"]),
    ({"t": float("inf")}, ["t", "finite number"]),
    ({"t": [0.5, float("nan")]}, ["t", "finite number"]),
    ({"tuning": {"grid": [0.0, float("nan"), 1.0]}}, ["tuning.grid.1", "finite number"]),
    ({"training__task__max_steps": -5}, ["training.task", "max_steps", "greater than or equal to 1", "-5"]),
    ({"training__reference__max_steps": "two"}, ["training.reference", "max_steps", "valid integer", "'two'"]),
    ({"training__task__max_steps": 2.5}, ["training.task", "max_steps", "fractional part"]),
    ({"training__task__lora_alpha": float("inf")}, ["training.task", "lora_alpha", "finite number"]),
    ({"training__task__learning_rate": "fast"}, ["training.task", "learning_rate", "valid number"]),
    ({"reference__options": {"archiv": "x"}}, ["reference", "unknown option(s) ['archiv']", "'udhr'", "archive"]),
    ({"reference__source": "wikipedia"}, ["reference", "unknown reference source 'wikipedia'"]),
]


@pytest.mark.parametrize(("changes", "fragments"), BAD, ids=[str(c) for c, _ in BAD])
def test_bad_config_is_refused_by_dry_run(tmp_path: Path, changes: dict[str, Any], fragments: list[str]) -> None:
    code, output = dry_run(tmp_path, yaml.safe_dump(_config(tmp_path, **changes)).encode())
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: invalid config"), output
    for fragment in fragments:
        assert fragment in lines[0], output
    assert not (tmp_path / "run").exists()


def test_non_utf8_yaml_is_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(_config(tmp_path), allow_unicode=True).replace("name: x", "name: café")
    code, output = dry_run(tmp_path, text.encode("latin-1"))
    assert code == 2 and output.strip().startswith("error: config") and "is not UTF-8 text" in output, output
    assert "0xe9" in output


def test_open_ended_sources_take_any_option(tmp_path: Path) -> None:
    config = _config(tmp_path, reference__source="task-text", reference__options={"task": "multiemo", "level": "text"})
    code, output = dry_run(tmp_path, yaml.safe_dump(config).encode())
    assert code == 0, output
