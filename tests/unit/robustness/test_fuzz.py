"""Property tests: whatever is wrong with an adapter config, a safetensors header or an experiment YAML, the
tool either works or raises its own error type with a one-line message; never a traceback.

The default suite runs a few hundred cases per target; ``-m slow`` runs the same properties on 1,000 or more.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from adamergex.adapters.inspect import describe
from adamergex.adapters.io import adapter_state_dict, read_adapter
from adamergex.cli import main
from adamergex.errors import AdamergexError
from adamergex.merging.api import merge
from adamergex.pipeline.config import load_config
from adamergex.pipeline.runner import run_experiment
from tiny_adapter_folders import ia3_config, ia3_tensors, lora_config, lora_tensors, write_adapter_folder

DEFAULT_CASES = 250
SLOW_CASES = 1_200


def _fuzz_settings(cases: int) -> settings:
    return settings(
        max_examples=cases,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    )


def assert_clean(action: Callable[[], object]) -> None:
    """``action`` succeeds, or fails with an AdamergexError whose message is one non-empty line."""
    try:
        action()
    except AdamergexError as error:
        message = str(error)
        assert message.strip() and "\n" not in message and "\r" not in message, repr(message)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("fuzz")
    folders = {"root": root}
    for seed, role in enumerate(("task", "target", "source")):
        folders[f"lora-{role}"] = write_adapter_folder(root / f"lora-{role}", lora_config(), lora_tensors(seed))
        folders[f"ia3-{role}"] = write_adapter_folder(root / f"ia3-{role}", ia3_config(), ia3_tensors(seed))
    yield folders


@pytest.fixture
def scratch(workspace: dict[str, Path]) -> Callable[[], Any]:
    def make() -> Any:
        return tempfile.TemporaryDirectory(dir=workspace["root"])

    return make


def _exercise_adapter(folder: Path, workspace: dict[str, Path], kind: str, out: Path) -> None:
    """Everything a user does with an adapter: inspect it, merge it as the task adapter and as a reference."""

    def merged(*adapters: Path, written: Path | None) -> None:
        summary = merge(*adapters, 0.5, written, force=True)
        tensors = adapter_state_dict(summary.adapter).values()
        assert all(t.is_floating_point() and bool(t.isfinite().all()) for t in tensors), "a non-float result"

    assert_clean(lambda: describe(read_adapter(folder)))
    assert_clean(lambda: merged(folder, workspace[f"{kind}-target"], workspace[f"{kind}-source"], written=out / "a"))
    assert_clean(lambda: merged(workspace[f"{kind}-task"], workspace[f"{kind}-target"], folder, written=None))


# -- values ------------------------------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["q_proj", "down_proj", ".*", "(", "[a-", "LORA", "IA3", "none"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["q_proj", "v_proj", "down_proj", "(", ".*"]), inner, max_size=3
        )
    ),
    max_leaves=6,
)

CONFIG_KEYS = [
    "peft_type",
    "r",
    "lora_alpha",
    "use_rslora",
    "rank_pattern",
    "alpha_pattern",
    "use_dora",
    "bias",
    "lora_bias",
    "target_parameters",
    "target_modules",
    "feedforward_modules",
    "modules_to_save",
    "base_model_name_or_path",
    "task_type",
    "layers_to_transform",
    "layers_pattern",
    "exclude_modules",
    "inference_mode",
]
KEYS = st.sampled_from(CONFIG_KEYS) | st.text(max_size=10)
CONFIG_MUTATION = st.tuples(st.sampled_from(["set", "delete"]), KEYS, VALUES)


@st.composite
def adapter_configs(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["lora", "ia3"]))
    form = draw(st.sampled_from(["mutated"] * 8 + ["any-json", "bytes"]))
    if form == "bytes":
        return kind, draw(st.binary(max_size=64))
    if form == "any-json":
        return kind, json.dumps(draw(VALUES)).encode()
    config = lora_config() if kind == "lora" else ia3_config()
    for action, key, value in draw(st.lists(CONFIG_MUTATION, min_size=1, max_size=3)):
        if action == "set":
            config[key] = value
        else:
            config.pop(key, None)
    return kind, json.dumps(config).encode()


def _check_adapter_config(workspace: dict[str, Path], scratch: Callable[[], Any], case: tuple[str, bytes]) -> None:
    kind, text = case
    with scratch() as tmp:
        folder = Path(tmp) / "adapter"
        shutil.copytree(workspace[f"{kind}-task"], folder)
        (folder / "adapter_config.json").write_bytes(text)
        _exercise_adapter(folder, workspace, kind, Path(tmp))


@_fuzz_settings(DEFAULT_CASES)
@given(case=adapter_configs())
def test_fuzz_adapter_configs(workspace, scratch, case) -> None:
    _check_adapter_config(workspace, scratch, case)


@pytest.mark.slow
@_fuzz_settings(SLOW_CASES)
@given(case=adapter_configs())
def test_fuzz_adapter_configs_many(workspace, scratch, case) -> None:
    _check_adapter_config(workspace, scratch, case)


# -- safetensors headers -----------------------------------------------------------------------------------------

DTYPES = st.sampled_from(
    ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "C64", "XYZ", ""]
) | st.text(max_size=5)
SHAPES = st.lists(st.integers(-3, 40) | st.sampled_from([2**31, 2**62]), max_size=3) | VALUES
OFFSETS = st.lists(st.integers(-10, 10_000) | st.sampled_from([2**40, 2**63]), max_size=3) | VALUES
SUFFIXES = [".lora_A.weight", ".lora_B.weight", ".lora_embedding_A", ".ia3_l", ".weight", ""]


def _split(data: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


@st.composite
def safetensors_files(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["lora", "ia3"]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_adapter_folder(
            Path(tmp),
            lora_config() if kind == "lora" else ia3_config(),
            lora_tensors(7) if kind == "lora" else ia3_tensors(7),
        )
        data = (folder / "adapter_model.safetensors").read_bytes()
    header, body = _split(data)
    names = sorted(k for k in header if k != "__metadata__")
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(names))
        what = draw(
            st.sampled_from(
                [
                    "dtype",
                    "shape",
                    "data_offsets",
                    "drop-field",
                    "drop-tensor",
                    "rename",
                    "entry",
                    "metadata",
                    "body",
                    "length",
                    "truncate",
                    "flip",
                ]
            )
        )
        if what in ("dtype", "shape", "data_offsets") and isinstance(header.get(name), dict):
            header[name][what] = draw({"dtype": DTYPES, "shape": SHAPES, "data_offsets": OFFSETS}[what])
        elif what == "drop-field" and isinstance(header.get(name), dict):
            header[name].pop(draw(st.sampled_from(["dtype", "shape", "data_offsets"])), None)
        elif what == "drop-tensor":
            header.pop(name, None)
        elif what == "rename" and name in header:
            stem = name.rsplit(".lora_", 1)[0].rsplit(".ia3_l", 1)[0]
            header[draw(st.text(max_size=6)) + stem + draw(st.sampled_from(SUFFIXES))] = header.pop(name)
        elif what == "entry":
            header[name] = draw(VALUES)
        elif what == "metadata":
            header["__metadata__"] = draw(VALUES)
        elif what == "body":
            body = body[: draw(st.integers(0, len(body)))]
    encoded = json.dumps(header).encode()
    data = struct.pack("<Q", len(encoded)) + encoded + body
    tail = draw(st.sampled_from(["none", "none", "length", "truncate", "flip"]))
    if tail == "length":
        data = struct.pack("<Q", draw(st.integers(0, 2**64 - 1))) + data[8:]
    elif tail == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif tail == "flip" and len(data) > 8:
        position = draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1 :]
    return kind, data


def _check_safetensors(workspace: dict[str, Path], scratch: Callable[[], Any], case: tuple[str, bytes]) -> None:
    kind, data = case
    with scratch() as tmp:
        folder = Path(tmp) / "adapter"
        shutil.copytree(workspace[f"{kind}-task"], folder)
        (folder / "adapter_model.safetensors").write_bytes(data)
        _exercise_adapter(folder, workspace, kind, Path(tmp))


@_fuzz_settings(DEFAULT_CASES)
@given(case=safetensors_files())
def test_fuzz_safetensors_headers(workspace, scratch, case) -> None:
    _check_safetensors(workspace, scratch, case)


@pytest.mark.slow
@_fuzz_settings(SLOW_CASES)
@given(case=safetensors_files())
def test_fuzz_safetensors_headers_many(workspace, scratch, case) -> None:
    _check_safetensors(workspace, scratch, case)


# -- experiment YAML ---------------------------------------------------------------------------------------------

YAML_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=10)
    | st.sampled_from(
        [
            "tune",
            "lora",
            "ia3",
            "en",
            "de",
            "xx",
            "multiemo",
            "udhr",
            "files",
            "task-text",
            "svd",
            "-5",
            "two",
            ".nan",
            "~",
        ]
    )
)
YAML_VALUES = st.recursive(
    YAML_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["name", "max_steps", "grid", "options", "archive", "source", "dev"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=6,
)


def _experiment(root: Path) -> dict[str, Any]:
    return {
        "name": "fuzz",
        "base_model": "tiny",
        "adapters": ["lora"],
        "source_lang": "en",
        "target_langs": ["de"],
        "reference": {"source": "udhr", "options": {"archive": str(root / "udhr")}},
        "tasks": [
            {
                "name": "multiemo",
                "train_size": 16,
                "dev_size": 8,
                "test_size": 12,
                "options": {"archive": str(root / "bigbench")},
            }
        ],
        "methods": ["base", "eng-ft", "adamergex"],
        "t": "tune",
        "tuning": {"dev": "source", "grid": [0.0, 0.5, 1.0], "refine_rounds": 1},
        "training": {"reference": {"max_steps": 2, "batch_size": 2}, "task": {"max_steps": 2, "batch_size": 4}},
        "evaluation": {"batch_size": 8},
        "output": str(root / "run"),
    }


def _paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def experiment_files(draw: st.DrawFn, root: Path) -> bytes:
    config = _experiment(root)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(config))[1:]))
        *parents, last = path
        node = config
        for part in parents:
            node = node[part]
        action = draw(st.sampled_from(["set", "set", "set", "delete", "add"]))
        if action == "delete":
            del node[last]
        elif action == "add" and isinstance(node, dict):
            node[draw(st.text(max_size=8))] = draw(YAML_VALUES)
        else:
            node[last] = draw(YAML_VALUES)
    text = yaml.safe_dump(config, allow_unicode=True).encode()
    damage = draw(st.sampled_from(["none"] * 6 + ["byte", "insert", "truncate"]))
    if damage == "byte" and text:
        position = draw(st.integers(0, len(text) - 1))
        text = text[:position] + bytes([draw(st.integers(0x80, 0xFF))]) + text[position + 1 :]
    elif damage == "insert":
        position = draw(st.integers(0, len(text)))
        text = (
            text[:position]
            + draw(
                st.sampled_from([b":", b"- ", b"[", b"{", b"\t", b"&a *a", b"!!python/none", b"2024-13-45", b"\x00"])
            )
            + text[position:]
        )
    elif damage == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    return text


def _leaves(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _leaves(value)
    else:
        yield node


def _check_experiment(root: Path, text: bytes) -> None:
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        path = Path(tmp) / "experiment.yaml"
        path.write_bytes(text)

        def dry_run() -> None:
            config = load_config(path)
            numbers = [v for v in _leaves(config.model_dump()) if isinstance(v, float)]
            assert all(math.isfinite(v) for v in numbers), f"a non-finite number passed validation: {numbers}"
            run_experiment(config, dry_run=True, progress=False, console=Console(file=io.StringIO()))

        assert_clean(dry_run)


@pytest.fixture(scope="module")
def experiment_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("experiments")


def test_fuzz_experiment_yaml(experiment_root: Path) -> None:
    @_fuzz_settings(DEFAULT_CASES)
    @given(text=experiment_files(experiment_root))
    def check(text: bytes) -> None:
        _check_experiment(experiment_root, text)

    check()


@pytest.mark.slow
def test_fuzz_experiment_yaml_many(experiment_root: Path) -> None:
    @_fuzz_settings(SLOW_CASES)
    @given(text=experiment_files(experiment_root))
    def check(text: bytes) -> None:
        _check_experiment(experiment_root, text)

    check()


def test_the_cli_maps_a_fuzzed_failure_to_one_line(experiment_root: Path) -> None:
    """The properties above call the library; the CLI turns the same errors into one line and exit 2."""
    path = experiment_root / "broken.yaml"
    path.write_bytes(yaml.safe_dump({**_experiment(experiment_root), "t": float("nan")}).encode())
    result = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: invalid config"), result.output
