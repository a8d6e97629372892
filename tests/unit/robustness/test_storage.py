"""Every path that cannot be written is one line and exit 2, with nothing left half-written.

Read-only and full file systems are real tmpfs mounts where the test may mount (root); elsewhere those tests
are skipped and the simulated variants below still run.
"""

from __future__ import annotations

import errno
import json
import pathlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from safetensors import SafetensorError

import adamergex.adapters.io as adapter_io
from adamergex.cli import main
from adamergex.provenance import PROVENANCE_FILE


def run(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner(env=env).invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.output


def assert_one_line_error(code: int, output: str, *fragments: str) -> None:
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), output
    for fragment in fragments:
        assert fragment in lines[0], output


def _merge(adapters: dict[str, Path], out: Path) -> tuple[int, str]:
    return run(
        "merge",
        "--task",
        adapters["lora-task"],
        "--ref-target",
        adapters["lora-target"],
        "--ref-source",
        adapters["lora-source"],
        "--out",
        out,
    )


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a tmpfs with the given options (e.g. ``ro`` or ``size=16k``); skip where mounting is not allowed."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mount{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if done.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root); the simulated variant covers this path")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=False)


def test_out_under_a_regular_file(adapters, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    code, output = _merge(adapters, tmp_path / "file" / "merged")
    assert_one_line_error(code, output, str(tmp_path / "file"), "is a file; expected a folder")


def test_out_on_a_read_only_file_system(adapters, tmpfs) -> None:
    read_only = tmpfs("ro,size=64k")
    code, output = _merge(adapters, read_only / "merged")
    assert_one_line_error(code, output, str(read_only / "merged"), "Read-only file system")


def test_out_on_a_full_disk(adapters, tmpfs) -> None:
    full = tmpfs("size=8k")  # the weights (about 6 KB) and the page-sized config do not both fit
    code, output = _merge(adapters, full / "merged")
    assert_one_line_error(code, output, str(full / "merged"), "No space left on device")
    assert list(full.iterdir()) == []


def test_simulated_read_only_file_system(adapters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_mkdir = pathlib.Path.mkdir

    def mkdir(self: Path, *args, **kwargs) -> None:
        if str(self).startswith(str(tmp_path / "ro")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    code, output = _merge(adapters, tmp_path / "ro" / "merged")
    assert_one_line_error(code, output, "Read-only file system")


def test_simulated_full_disk(adapters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def save_file(*args, **kwargs) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(adapter_io, "save_file", save_file)
    out = tmp_path / "merged"
    code, output = _merge(adapters, out)
    assert_one_line_error(code, output, str(out), "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_cache_variable_pointing_to_a_file(tmp_path: Path) -> None:
    (tmp_path / "cache-file").write_text("x")
    code, output = run("data", "list", env={"ADAMERGEX_CACHE": str(tmp_path / "cache-file")})
    assert_one_line_error(code, output, "$ADAMERGEX_CACHE", str(tmp_path / "cache-file"), "is a file")


def _experiment(tmp_path: Path, output: Path) -> Path:
    config = {
        "name": "x",
        "base_model": "tiny",
        "target_langs": ["de"],
        "output": str(output),
        "tasks": [{"name": "multiemo", "options": {"archive": str(tmp_path / "absent")}}],
    }
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("dry_run", [True, False])
def test_run_output_that_is_a_file(tmp_path: Path, dry_run: bool) -> None:
    (tmp_path / "run").write_text("x")
    code, output = run("run", _experiment(tmp_path, tmp_path / "run"), *(["--dry-run"] if dry_run else []))
    assert_one_line_error(code, output, "output", "is a file; expected a run folder")


def test_run_output_under_a_file_fails_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    code, output = run("run", _experiment(tmp_path, tmp_path / "file" / "run"))
    assert_one_line_error(code, output, "step cache", str(tmp_path / "file"))


def test_run_output_on_a_read_only_file_system(tmp_path: Path, tmpfs) -> None:
    read_only = tmpfs("ro,size=64k")
    code, output = run("run", _experiment(tmp_path, read_only / "run"))
    assert_one_line_error(code, output, str(read_only / "run"), "Read-only file system")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\udcff"])
def test_inspect_reports_an_unreadable_provenance_and_shows_the_rest(adapters, tmp_path: Path, content: str) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (folder / name).write_bytes((adapters["lora-task"] / name).read_bytes())
    (folder / PROVENANCE_FILE).write_bytes(content.encode("utf-8", "surrogateescape"))
    code, output = run("inspect", folder)
    assert code == 0, output
    assert "provenance" in output and "unreadable" in output and "q_proj" in output
    code, output = run("inspect", folder, "--json")
    info = json.loads(output)
    assert code == 0 and info["provenance"] is None and "unreadable" in info["provenance_error"]
