"""Adapter folders for the robustness tests, and an isolated cache for every test here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tiny_adapter_folders import ia3_config, ia3_tensors, lora_config, lora_tensors, write_adapter_folder


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ADAMERGEX_CACHE", str(tmp_path_factory.getbasetemp() / "adamergex-cache"))
        yield


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Valid LoRA and (IA)³ task / reference-target / reference-source folders."""
    root = tmp_path_factory.mktemp("adapters")
    folders = {}
    for seed, role in enumerate(("task", "target", "source")):
        folders[f"lora-{role}"] = write_adapter_folder(root / f"lora-{role}", lora_config(), lora_tensors(seed))
        folders[f"ia3-{role}"] = write_adapter_folder(root / f"ia3-{role}", ia3_config(), ia3_tensors(seed))
    return folders
