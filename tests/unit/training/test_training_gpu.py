"""CUDA path: bf16 weights with autocast, device placement, LoRA and (IA)³ training, then an AdaMergeX merge.

Run on a CUDA machine with ``python -m pytest -m gpu tests/unit/training/test_training_gpu.py`` (about
half a minute on one GPU); skipped elsewhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

import adamergex
from adamergex.data.reference import build_reference_corpus
from adamergex.models import load_base_model
from adamergex.provenance import read_provenance
from adamergex.training import TrainingConfig, TrainingResult, train_adapter
from tiny_lm_folders import tiny_tokenizer, toy_documents, toy_task_data

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def second_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second 'language': the toy sentences with their words reversed."""
    documents = [" ".join(reversed(document.split())) for document in toy_documents()]
    corpus = build_reference_corpus(documents, tiny_tokenizer(), chunk_tokens=24, seed=0)
    return corpus.save(tmp_path_factory.mktemp("gpu-data") / "reversed.jsonl")


def _train(model_dir: Path, data: str, out: Path, adapter: str, **extra: Any) -> TrainingResult:
    values: dict[str, Any] = {"max_length": 32, "max_steps": 8, "learning_rate": 2e-2 if adapter == "lora" else 0.1}
    values.update(extra)
    config = TrainingConfig(base=str(model_dir), data=data, lang="en", out=out, adapter=adapter, **values)
    result = train_adapter(config, progress=False)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    return result


def test_default_placement_is_cuda_with_bf16_when_supported(llama_dir: Path) -> None:
    loaded = load_base_model(str(llama_dir))
    parameter = next(loaded.model.parameters())
    assert parameter.device.type == "cuda" and loaded.device.startswith("cuda")
    expected = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    assert loaded.dtype == expected and parameter.dtype == expected


def test_lora_trains_on_gpu_with_bf16_autocast(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    result = _train(llama_dir, str(corpus_file), tmp_path / "ref", "lora", max_steps=15)
    record = read_provenance(result.out)
    assert record["device"].startswith("cuda")
    if torch.cuda.is_bf16_supported():
        assert record["dtype"] == "bfloat16" and record["mixed_precision"] == "bf16"
    # Trainable adapter weights stay fp32 over the bf16 base (PEFT's autocast_adapter_dtype).
    assert all(t.dtype == torch.float32 for t in load_file(str(result.out / "adapter_model.safetensors")).values())
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.validation_loss is not None and torch.isfinite(torch.tensor(result.validation_loss))


def test_ia3_trains_on_gpu(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    result = _train(llama_dir, str(corpus_file), tmp_path / "ia3", "ia3", max_steps=15)
    assert read_provenance(result.out)["device"].startswith("cuda")
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def _three_adapters(adapter: str, llama_dir: Path, corpora: tuple[Path, Path], tmp_path: Path) -> list[Path]:
    task = TrainingConfig(
        base=str(llama_dir),
        data="task:toy",
        lang="en",
        out=tmp_path / "task",
        adapter=adapter,
        max_steps=8,
        learning_rate=2e-2 if adapter == "lora" else 0.1,
    )
    train_adapter(task, data=toy_task_data(), progress=False)
    source = _train(llama_dir, str(corpora[0]), tmp_path / "ref-src", adapter).out
    target = _train(llama_dir, str(corpora[1]), tmp_path / "ref-tgt", adapter).out
    return [task.out, target, source]


def test_gpu_lora_adapters_merge_like_peft_cat(
    llama_dir: Path, corpus_file: Path, second_corpus: Path, tmp_path: Path
) -> None:
    task, target, source = _three_adapters("lora", llama_dir, (corpus_file, second_corpus), tmp_path)
    adamergex.merge(task=task, reference_target=target, reference_source=source, t=1.0, out=tmp_path / "merged")
    ids = torch.tensor([[2, 4, 6, 10, 12, 7]], device="cuda")

    base = AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32).to("cuda")
    merged = PeftModel.from_pretrained(base, tmp_path / "merged").eval()
    with torch.no_grad():
        merged_logits = merged(input_ids=ids).logits

    # Peer: PEFT's own exact concatenation of the three adapters with weights 1, t, -t.
    peer = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32).to("cuda"), task, adapter_name="task"
    )
    peer.load_adapter(target, adapter_name="target")
    peer.load_adapter(source, adapter_name="source")
    peer.add_weighted_adapter(["task", "target", "source"], [1.0, 1.0, -1.0], "peer", combination_type="cat")
    peer.set_adapter("peer")
    with torch.no_grad():
        peer_logits = peer.eval()(input_ids=ids).logits
    assert torch.isfinite(merged_logits).all() and merged_logits.device.type == "cuda"
    torch.testing.assert_close(merged_logits, peer_logits, rtol=1e-4, atol=1e-4)


def test_gpu_ia3_adapters_merge_multiplicatively(
    llama_dir: Path, corpus_file: Path, second_corpus: Path, tmp_path: Path
) -> None:
    task, target, source = _three_adapters("ia3", llama_dir, (corpus_file, second_corpus), tmp_path)
    t = 0.5
    adamergex.merge(task=task, reference_target=target, reference_source=source, t=t, out=tmp_path / "merged")
    vectors = [load_file(str(folder / "adapter_model.safetensors")) for folder in (task, target, source)]
    merged = load_file(str(tmp_path / "merged" / "adapter_model.safetensors"))
    assert merged.keys() == vectors[0].keys()
    for name, l_task in vectors[0].items():
        expected = l_task * (t * (vectors[1][name] / vectors[2][name] - 1) + 1)
        torch.testing.assert_close(merged[name], expected, rtol=1e-5, atol=1e-6)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(llama_dir, dtype=torch.float32).to("cuda"), tmp_path / "merged"
    ).eval()
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=torch.tensor([[2, 4, 6]], device="cuda")).logits).all()


def test_liger_kernels_train_like_the_plain_model(llama_dir: Path, corpus_file: Path, tmp_path: Path) -> None:
    """Liger's kernels (opt-in on CUDA) give the same losses as the plain modules, in fp32 to within float
    rounding. Each run is a child process: Liger patches the architecture for the whole process."""
    pytest.importorskip("liger_kernel")
    script = (
        "import json, sys\n"
        "from adamergex.training import TrainingConfig, train_adapter\n"
        "from adamergex.training.speed import Execution\n"
        "llama, corpus, out, liger = sys.argv[1:5]\n"
        "config = TrainingConfig(base=llama, data=corpus, lang='en', out=out, max_length=32, max_steps=4,\n"
        "                        learning_rate=2e-2, lora_dropout=0.0, dtype='float32')\n"
        "execution = Execution(fused_adamw=True, adapter_input_cast=False, liger_kernels=liger == '1')\n"
        "result = train_adapter(config, progress=False, execution=execution)\n"
        "print(json.dumps([r['loss'] for r in result.history]))\n"
    )
    losses = {}
    for liger in ("0", "1"):
        done = subprocess.run(
            [sys.executable, "-c", script, str(llama_dir), str(corpus_file), str(tmp_path / f"l{liger}"), liger],
            capture_output=True,
            text=True,
            check=True,
        )
        losses[liger] = json.loads(done.stdout.strip().splitlines()[-1])
    assert losses["1"] == pytest.approx(losses["0"], rel=1e-3)
