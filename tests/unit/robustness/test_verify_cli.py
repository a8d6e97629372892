"""``adamergex run --verify`` checks every cache entry of the run folder, reachable from the config or not."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from adamergex.cli import main
from adamergex.pipeline.cache import StepCache, step_key


def test_verify_reports_a_damaged_orphan_entry_and_a_dry_run_keeps_it(tmp_path: Path) -> None:
    output = tmp_path / "run"
    cache = StepCache(output / "cache")
    for index in range(3):
        key = step_key("merge", {"orphan": index})
        with cache.produce("merge", key, {"orphan": index}) as folder:
            (folder / "weights.bin").write_bytes(bytes([index]) * 256)
    damaged = cache.path("merge", step_key("merge", {"orphan": 1}))
    (damaged / "weights.bin").write_bytes(b"\xff" * 256)
    config = {
        "name": "x",
        "base_model": "tiny",
        "target_langs": ["de"],
        "output": str(output),
        "tasks": [{"name": "multiemo", "options": {"archive": str(tmp_path / "absent")}}],
    }
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(config))

    result = CliRunner().invoke(main, ["run", str(tmp_path / "experiment.yaml"), "--verify", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "verified 3 cache entries: 1 damaged" in result.output
    assert f"merge/{damaged.name} is damaged: weights.bin does not match its sha256" in result.output
    assert damaged.exists()  # a dry run changes nothing
    assert StepCache(output / "cache").verify_all() == (
        3,
        [f"merge/{damaged.name}: weights.bin does not match its sha256"],
    )
    assert not damaged.exists()
