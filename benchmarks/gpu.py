"""The CUDA path end to end, with timings: train LoRA and (IA)³ adapters, merge them, evaluate — on a GPU.

A random Llama of ~150 M parameters (hidden 1024, 12 layers) with a byte-level BPE tokenizer trained on the
data is saved as a model folder and loaded through ``adamergex.models`` (bf16 on a GPU that supports it). Then:
UDHR reference adapters for English and German and an English MultiEmo task adapter (LoRA and (IA)³), an fp32
run of the same LoRA training for comparison, AdaMergeX merges, and MultiEmo German test scoring of base, Eng-FT
and AdaMergeX adapters with the batched scorer. The model is random, so the scores only show that the path
works; the timings are the point. Needs the UDHR and MultiEmo caches (``ADAMERGEX_CACHE``).

Usage: python benchmarks/gpu.py OUT_DIR
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

import adamergex
from adamergex.data.reference import load_reference_documents
from adamergex.data.tasks import get_task
from adamergex.evaluation.adapter import attach_adapter
from adamergex.evaluation.runner import evaluate
from adamergex.models import load_base_model
from adamergex.training import TrainingConfig, train_adapter


def build_model(folder: Path) -> None:
    texts = [
        item.fields["text"] for lang in ("en", "de") for item in get_task("multiemo").load(lang, "train", limit=3000)
    ]
    texts += load_reference_documents("udhr", "en") + load_reference_documents("udhr", "de")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=8192, min_frequency=2, special_tokens=["<s>", "</s>", "<pad>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=1024, intermediate_size=2816, num_hidden_layers=12,
                         num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=1024,
                         bos_token_id=0, eos_token_id=1, pad_token_id=2)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def train(base, model_dir: Path, out: Path, **settings) -> dict:
    config = TrainingConfig.build({"base": str(model_dir), "out": out, **settings})
    result = train_adapter(config, base=base, progress=False)
    return {"steps": result.steps, "tokens_per_second": result.tokens_per_second, "wall_time_s": result.wall_time_s,
            "first_loss": result.history[0]["loss"], "train_loss": result.train_loss,
            "validation_loss": result.validation_loss}  # fmt: skip


def score(base, adapter: Path | None, n: int) -> dict:
    model = base.model if adapter is None else attach_adapter(base, adapter)[0]
    torch.cuda.synchronize()
    started = time.perf_counter()
    result = evaluate(model, base.tokenizer, "multiemo", "de", split="test", limit=n, batch_size="auto",
                      progress=False, load_options={"max_text_tokens": 128, "tokenizer": base.tokenizer})  # fmt: skip
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    if adapter is not None:
        base.model = model.unload()
    return {"accuracy": result.metrics["accuracy"].value, "n": result.n, "batch_size": result.batch_size,
            "items_per_second": result.n / seconds}  # fmt: skip


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    work = Path(tempfile.mkdtemp())
    model_dir = work / "model"
    build_model(model_dir)
    report: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                    "python": platform.python_version(), "adamergex": adamergex.__version__}  # fmt: skip
    base = load_base_model(str(model_dir))
    report["base"] = {"device": base.device, "dtype": str(base.dtype),
                      "parameters": sum(p.numel() for p in base.model.parameters())}  # fmt: skip
    reference = {"data": "reference:udhr", "max_steps": 30, "batch_size": 8, "max_length": 256}
    task = {"data": "task:multiemo", "lang": "en", "limit": 4000, "max_steps": 60, "batch_size": 16,
            "max_length": 192, "max_text_tokens": 128}  # fmt: skip
    for kind in ("lora", "ia3"):
        for lang in ("en", "de"):
            report[f"train_reference_{kind}_{lang}"] = train(base, model_dir, work / f"ref-{kind}-{lang}",
                                                             adapter=kind, lang=lang, **reference)  # fmt: skip
        report[f"train_task_{kind}"] = train(base, model_dir, work / f"task-{kind}", adapter=kind, **task)
        merged = work / f"adamergex-{kind}"
        started = time.perf_counter()
        summary = adamergex.merge(work / f"task-{kind}", work / f"ref-{kind}-de", work / f"ref-{kind}-en", t=1.0,
                                  out=merged)  # fmt: skip
        report[f"merge_{kind}"] = {"seconds": time.perf_counter() - started, "modules": len(summary.modules),
                                   "max_relative_change": summary.max_relative_change}  # fmt: skip
    report["score_base"] = score(base, None, 1000)
    for kind in ("lora", "ia3"):
        report[f"score_eng_ft_{kind}"] = score(base, work / f"task-{kind}", 1000)
        report[f"score_adamergex_{kind}"] = score(base, work / f"adamergex-{kind}", 1000)
    fp32 = load_base_model(str(model_dir), dtype="float32")
    report["train_reference_lora_en_fp32"] = train(fp32, model_dir, work / "ref-fp32", adapter="lora", lang="en",
                                                   dtype="float32", **reference)  # fmt: skip
    report["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    (out / "gpu_results.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
