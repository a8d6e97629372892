"""A run whose cache the pipeline's code before it became steps (commit 418f070) made resumes under this code
with every step a cache hit and writes the same records.json and predictions.csv.

Slow (the tiny experiment run twice, about 2 minutes) and needs the repository's git history:
``python -m pytest -m slow tests/unit/pipeline/test_resume_across_versions.py``. ``test_golden.py`` checks the
same property on every run of the suite through the step keys the old code sealed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from rich.console import Console

from adamergex.pipeline.config import load_config
from adamergex.pipeline.runner import run_experiment

ROOT = Path(__file__).resolve().parents[3]
BEFORE_STEPS = "418f070"
TINY = ROOT / "tests" / "fixtures" / "pipeline" / "tiny.yaml"
OLD_RUN = """
import sys
from adamergex.pipeline.config import load_config
from adamergex.pipeline.runner import run_experiment
run_experiment(load_config(sys.argv[1], output=sys.argv[2]), progress=False)
"""


def _old_source(folder: Path) -> Path:
    """``src`` of the commit before the move, extracted from git (the test is skipped without the history)."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("needs git")
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", "--format=tar", BEFORE_STEPS, "src"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {BEFORE_STEPS} is not in this checkout's history")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


@pytest.mark.slow
def test_a_cache_the_old_code_made_is_all_hits(
    tmp_path: Path, model_dir: Path, udhr_dir: Path, multiemo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_src = _old_source(tmp_path / "old")
    folder = tmp_path / "run-folder"
    folder.mkdir()
    for name, target in (("tiny-llama", model_dir), ("udhr", udhr_dir), ("bigbench", multiemo_dir)):
        (folder / name).symlink_to(target, target_is_directory=True)
    output = folder / "run"
    env = {**os.environ, "PYTHONPATH": str(old_src)}
    subprocess.run([sys.executable, "-c", OLD_RUN, str(TINY), str(output)], cwd=folder, env=env, check=True)
    before = {name: (output / name).read_text() for name in ("records.json", "predictions.csv")}
    sealed = {json.loads(path.read_text())["key"] for path in (output / "cache").glob("*/*/step.json")}

    monkeypatch.chdir(folder)
    pipeline, _, _ = run_experiment(
        load_config(TINY, output=output), progress=False, console=Console(file=io.StringIO())
    )
    assert pipeline.log.executed == []
    assert len(pipeline.log.cached) == len(sealed)
    assert {name: (output / name).read_text() for name in before} == before
