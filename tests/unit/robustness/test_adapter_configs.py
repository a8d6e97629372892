"""Malformed adapter folders: one line naming the field, exit 2, for merge and inspect alike."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from adamergex.cli import main
from tiny_adapter_folders import ia3_config, lora_config, lora_tensors, write_adapter_folder


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def assert_one_line_error(code: int, output: str, *fragments: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), output
    for fragment in fragments:
        assert fragment in lines[0], output


def _with_config(
    adapters: dict[str, Path], tmp_path: Path, kind: str, change: dict[str, Any], drop: tuple[str, ...] = ()
) -> Path:
    folder = tmp_path / "bad"
    shutil.copytree(adapters[f"{kind}-task"], folder)
    config = {**(lora_config() if kind == "lora" else ia3_config()), **change}
    for key in drop:
        config.pop(key)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder


BAD_CONFIGS = [
    ("lora", {"r": "eight"}, (), "field r: Input should be a valid integer (got 'eight')"),
    ("lora", {"r": None}, (), "field r: Input should be a valid integer (got None)"),
    ("lora", {"r": 4.7}, (), "field r: Input should be a valid integer (got 4.7)"),
    ("lora", {}, ("r",), "field r is missing"),
    ("lora", {}, ("lora_alpha",), "field lora_alpha is missing"),
    ("lora", {"lora_alpha": "big"}, (), "field lora_alpha: Input should be a valid number (got 'big')"),
    ("lora", {"lora_alpha": float("nan")}, (), "field lora_alpha: Input should be a finite number"),
    ("lora", {"rank_pattern": ["q_proj", 8]}, (), "field rank_pattern: Input should be a valid dictionary"),
    ("lora", {"rank_pattern": {"q_proj(": 8}}, (), "field rank_pattern: key 'q_proj(' is not a valid regular"),
    ("lora", {"alpha_pattern": {"[": 2.0}}, (), "field alpha_pattern: key '[' is not a valid regular"),
    ("lora", {"target_modules": 7}, (), "field target_modules: Input should be a valid list or a valid string"),
    ("lora", {"use_rslora": "yes"}, (), "field use_rslora: Input should be a valid boolean"),
    ("ia3", {"feedforward_modules": 7}, (), "field feedforward_modules: Input should be a valid list or a valid"),
    ("ia3", {"peft_type": "PREFIX_TUNING"}, (), "field peft_type: 'PREFIX_TUNING' is not supported"),
    ("ia3", {}, ("peft_type",), "field peft_type is missing"),
]


@pytest.mark.parametrize(("kind", "change", "drop", "expected"), BAD_CONFIGS)
def test_malformed_config_is_one_line_naming_the_field(
    adapters, tmp_path: Path, kind: str, change: dict, drop: tuple[str, ...], expected: str
) -> None:
    bad = _with_config(adapters, tmp_path, kind, change, drop)
    code, output = run("inspect", bad)
    assert_one_line_error(code, output, "adapter_config.json", expected)
    out = tmp_path / "merged"
    code, output = run(
        "merge",
        "--task",
        bad,
        "--ref-target",
        adapters[f"{kind}-target"],
        "--ref-source",
        adapters[f"{kind}-source"],
        "--out",
        out,
    )
    assert_one_line_error(code, output, expected)
    assert not out.exists()


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.bool])
def test_non_float_tensors_are_refused(tmp_path: Path, adapters, dtype: torch.dtype) -> None:
    folder = write_adapter_folder(tmp_path / "ints", lora_config(), lora_tensors(0, dtype=dtype))
    code, output = run(
        "merge",
        "--task",
        folder,
        "--ref-target",
        adapters["lora-target"],
        "--ref-source",
        adapters["lora-source"],
        "--out",
        tmp_path / "m",
    )
    assert_one_line_error(code, output, "is stored as", str(dtype).removeprefix("torch."), "floating-point")


def test_merge_in_float64_as_the_cli_offers(adapters, tmp_path: Path) -> None:
    out = tmp_path / "m64"
    code, output = run(
        "merge",
        "--task",
        adapters["lora-task"],
        "--ref-target",
        adapters["lora-target"],
        "--ref-source",
        adapters["lora-source"],
        "--t",
        "0.5",
        "--out",
        out,
        "--compute-dtype",
        "float64",
        "--dtype",
        "float64",
        "--json",
    )
    assert code == 0, output
    merged = load_file(str(out / "adapter_model.safetensors"))
    assert {t.dtype for t in merged.values()} == {torch.float64}
    # ΔW of one module against a dense float64 computation from the input factors.
    name = "base_model.model.model.layers.0.self_attn.q_proj"
    factors = [
        load_file(str(adapters[f"lora-{role}"] / "adapter_model.safetensors")) for role in ("task", "target", "source")
    ]
    dense = [2.0 * f[f"{name}.lora_B.weight"].double() @ f[f"{name}.lora_A.weight"].double() for f in factors]
    expected = dense[0] + 0.5 * (dense[1] - dense[2])
    got = merged[f"{name}.lora_B.weight"] @ merged[f"{name}.lora_A.weight"]
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
