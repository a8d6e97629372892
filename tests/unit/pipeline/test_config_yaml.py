"""YAML spellings a config must read as written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adamergex.pipeline.config import DiagnosticsSpec, load_config


@pytest.mark.parametrize("written", ["off", "'off'", '"off"'])
def test_noise_floor_off_reads_as_off_quoted_or_not(written: str) -> None:
    """PyYAML follows YAML 1.1, where an unquoted off is the boolean false."""
    value = yaml.safe_load(f"noise_floor: {written}")["noise_floor"]
    assert DiagnosticsSpec(noise_floor=value).noise_floor == "off"


def test_other_booleans_are_still_refused() -> None:
    with pytest.raises(ValueError, match="noise_floor"):
        DiagnosticsSpec(noise_floor=True)


def test_a_config_file_with_unquoted_off(experiment, tmp_path: Path) -> None:
    path = experiment(tmp_path / "run")
    text = path.read_text() + "diagnostics:\n  noise_floor: off\n"
    path.write_text(text)
    assert load_config(path).diagnostics.noise_floor == "off"
