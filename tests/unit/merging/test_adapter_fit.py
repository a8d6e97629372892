"""check_adapter_fits: a user's own adapter folder against a base model, on tiny random Llamas. Each refusal is
one line naming the folder and what does not fit; a fitting adapter comes back with its fingerprint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from transformers import LlamaForCausalLM

from adamergex.adapters.fit import AdapterFit, check_adapter_fits, module_features
from adamergex.adapters.io import adapter_fingerprint
from adamergex.errors import AdapterFormatError, IncompatibleAdaptersError
from adamergex.provenance import PROVENANCE_FILE
from tiny_adapter_folders import ia3_config, ia3_tensors, lora_config, lora_tensors, write_adapter_folder
from tiny_models import tiny_llama, tiny_llama_config

BASE = "tiny-random-llama"


def loaded(name: str = BASE, fingerprint: str | None = None, layers: int = 2) -> SimpleNamespace:
    """What a loaded base model offers the check (as adamergex.models.LoadedModel does)."""
    config = tiny_llama_config()
    config.num_hidden_layers = layers
    return SimpleNamespace(model=LlamaForCausalLM(config).eval(), name=name, fingerprint=fingerprint, path=None)


def refusal(folder: Path, base: object, kind: str) -> str:
    with pytest.raises(IncompatibleAdaptersError) as error:
        check_adapter_fits(folder, base, kind)
    message = str(error.value)
    assert "\n" not in message and str(folder) in message
    return message


def test_a_fitting_lora_and_ia3_adapter_are_described_with_their_fingerprint(
    make_lora: Callable[..., Path], make_ia3: Callable[..., Path]
) -> None:
    lora = make_lora("lora", seed=1, r=4)
    fit = check_adapter_fits(lora, loaded(), "lora")
    assert fit == AdapterFit(
        path=str(lora),
        kind="lora",
        fingerprint=adapter_fingerprint(lora),
        base_model=BASE,
        base_fingerprint=None,
        modules=14,  # 7 linear modules x 2 layers
        parameters=sum(
            2 * 4 * (i + o) for i, o in [(16, 16), (16, 8), (16, 8), (16, 16), (16, 32), (16, 32), (32, 16)]
        ),
    )
    assert json.loads(json.dumps(fit.to_json()))["fingerprint"] == adapter_fingerprint(lora)
    ia3 = make_ia3("ia3", seed=2)
    assert check_adapter_fits(ia3, tiny_llama(), "ia3").modules == 6  # a bare model works too
    (ia3 / PROVENANCE_FILE).write_text(json.dumps({"base_model": {"name": BASE, "fingerprint": "a" * 64}}))
    assert check_adapter_fits(ia3, loaded(fingerprint="a" * 64), "ia3").base_fingerprint == "a" * 64


def test_another_kind_is_refused(make_lora: Callable[..., Path]) -> None:
    lora = make_lora("lora", seed=1)
    assert "is a LoRA adapter, not the (IA)³ adapter expected" in refusal(lora, loaded(), "ia3")


def test_another_base_model_is_refused_by_name_and_by_fingerprint(make_lora: Callable[..., Path]) -> None:
    lora = make_lora("lora", seed=1)
    message = refusal(lora, loaded(name="meta-llama/Llama-2-7b-hf"), "lora")
    assert f"made for base model {BASE!r}" in message and "meta-llama/Llama-2-7b-hf" in message
    (lora / PROVENANCE_FILE).write_text(json.dumps({"base_model": {"name": BASE, "fingerprint": "f" * 64}}))
    message = refusal(lora, loaded(fingerprint="a" * 64), "lora")
    assert "fingerprint ffffffffffff" in message and "fingerprint aaaaaaaaaaaa" in message


def test_modules_missing_from_the_model_are_named_and_counted(make_lora: Callable[..., Path]) -> None:
    lora = make_lora("lora", seed=1)
    message = refusal(lora, loaded(layers=1), "lora")  # the adapter adapts layer 1, which this model lacks
    assert "7 of its 14 modules do not match: model.layers.1.mlp.down_proj (not in the model)" in message
    assert message.endswith("and 4 more")


def test_shapes_that_differ_from_the_model_are_named(tmp_path: Path) -> None:
    # tests/tiny_adapter_folders.py gives down_proj 24 inputs; the tiny Llama's down_proj has 32
    lora = write_adapter_folder(tmp_path / "lora", lora_config(), lora_tensors(seed=0))
    message = refusal(lora, loaded(name="tiny"), "lora")  # the name those folders record
    assert message.endswith(
        "1 of its 3 modules do not match: model.layers.0.mlp.down_proj (adapter (16, 24), model needs (16, 32))"
    )
    ia3 = write_adapter_folder(tmp_path / "ia3", ia3_config(), ia3_tensors(seed=0))
    assert "model.layers.0.mlp.down_proj (adapter (1, 24), model needs (1, 32))" in refusal(
        ia3, loaded(name="tiny"), "ia3"
    )


def test_a_module_that_is_not_a_layer_is_refused(tmp_path: Path) -> None:
    tensors = {key.replace("mlp.down_proj", "mlp"): value for key, value in lora_tensors(seed=0).items()}
    folder = write_adapter_folder(tmp_path / "lora", lora_config(), tensors)
    assert "model.layers.0.mlp (a LlamaMLP, not a linear or embedding layer)" in refusal(
        folder, loaded(name="tiny"), "lora"
    )


def test_a_folder_that_is_no_adapter_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(AdapterFormatError, match=r"no adapter_config\.json"):
        check_adapter_fits(tmp_path, loaded(), "lora")


def test_module_features_of_linear_embedding_and_other_modules() -> None:
    model = tiny_llama()
    assert module_features(model.model.layers[0].mlp.down_proj) == (32, 16)
    assert module_features(model.model.embed_tokens) == (64, 16)
    assert module_features(model.model.layers[0].mlp) is None
