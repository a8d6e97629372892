"""The workload of benchmarks/gpu_throughput.py: the two shapes built from configs, synthetic data shaped like
the reference task and MultiEmo, and the model-FLOP count (see gpu_throughput's docstring for the formula)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    PretrainedConfig,
    PreTrainedTokenizerFast,
)

from adamergex.models.loading import LoadedModel
from adamergex.training import TrainingData
from adamergex.training.data import Example, examples_fingerprint, task_example

LABELS = [" positive", " negative", " neutral", " ambivalent"]
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "si", "po", "de", "an", "el", "or", "sch", "ung", "zy", "wa"]


def shape_config(shape: str) -> PretrainedConfig:
    """The architecture of ``shape``; ``tiny-*`` are the smoke test's stand-ins for the two real shapes."""
    special = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    if shape == "llama-2-7b":
        return LlamaConfig(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=32000,
            max_position_embeddings=4096,
            **special,
        )
    if shape == "gemma-3-270m":
        return Gemma3TextConfig(
            hidden_size=640,
            intermediate_size=2048,
            num_hidden_layers=18,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=256,
            vocab_size=262144,
            sliding_window=512,
            max_position_embeddings=32768,
            query_pre_attn_scalar=256,
            **special,
        )
    if shape == "tiny-llama":
        return LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            vocab_size=512,
            max_position_embeddings=256,
            **special,
        )
    if shape == "tiny-gemma":
        return Gemma3TextConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            vocab_size=512,
            sliding_window=16,
            max_position_embeddings=256,
            query_pre_attn_scalar=16,
            **special,
        )
    raise ValueError(f"unknown shape {shape!r}")


def build_model(shape: str, device: str, dtype: torch.dtype) -> Any:
    """Random weights, created on ``device`` in ``dtype`` (no CPU copy), SDPA attention, eval mode."""
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(shape_config(shape), dtype=dtype, attn_implementation="sdpa")
    return model.eval()


def synthetic_words(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(3000)]
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]  # Zipf-like, as in text
    return rng.choices(vocabulary, weights=weights, k=count)


def synthetic_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on synthetic words (ids 0-2: pad, BOS, EOS, as in the shapes' configs)."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    text = [" ".join(synthetic_words(200, seed)) for seed in range(200)]
    bpe.train_from_iterator(text, vocab_size=vocab_size, min_frequency=2, special_tokens=["<pad>", "<s>", "</s>"])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def review_items(count: int, words: int, seed: int) -> list[tuple[str, list[str], int]]:
    """Four-way items shaped like MultiEmo's harness prompt: (prompt, choices, gold)."""
    rng = random.Random(seed)
    return [
        (f"Review: {' '.join(synthetic_words(words, seed * 100_000 + i))}\nSentiment:", LABELS, rng.randrange(4))
        for i in range(count)
    ]


def choice_items(count: int, words: int, choice_words: int, seed: int) -> list[tuple[str, list[str], int]]:
    """Four-way items whose choices are sentences of ``choice_words`` words (as XCOPA, XStoryCloze or Belebele
    answers are): the harness runs prompt + choice once per choice; adamergex runs the prompt once for all four."""
    rng = random.Random(seed)
    items = []
    for i in range(count):
        prompt = f"Passage: {' '.join(synthetic_words(words, seed * 100_000 + i))}\nAnswer:"
        choices = [" " + " ".join(synthetic_words(choice_words, seed * 100_000 + i * 4 + c + 50_000)) for c in range(4)]
        items.append((prompt, choices, rng.randrange(4)))
    return items


def loaded(model: Any, tokenizer: Any, shape: str) -> LoadedModel:
    parameter = next(model.parameters())
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=shape,
        fingerprint=f"random:{shape}",
        device=str(parameter.device),
        dtype=parameter.dtype,
        source="config",
        path=Path("."),
    )


def reference_data(vocab: int, length: int, count: int) -> TrainingData:
    """Packed causal-LM blocks of random tokens (every position a label), as the reference task trains on."""
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(3, vocab, (count, length), generator=generator).tolist()
    train = [Example(input_ids=b, labels=b) for b in blocks]
    return TrainingData("reference", "reference:synthetic", "en", train, [], examples_fingerprint({}, train, []))


def task_data(tokenizer: Any, count: int, words: int, max_length: int) -> TrainingData:
    """Answer-only examples ``[BOS] prompt label`` from the synthetic review items (adamergex's task_example)."""
    train = [task_example(p, c[g], tokenizer, max_length=max_length) for p, c, g in review_items(count, words, 1)]
    return TrainingData("task", "task:synthetic", "en", train, [], examples_fingerprint({}, train, []))


# ---------------------------------------------------------------- FLOPs


def _pairs(n: int, window: int | None) -> int:
    if window is None or window >= n:
        return n * (n + 1) // 2
    return window * (window + 1) // 2 + (n - window) * window


def model_flops(config: Any, lengths: list[int], scored: list[int], adapter_parameters: int) -> float:
    """Training FLOPs of examples of ``lengths`` with ``scored`` label positions (see the module docstring)."""
    d, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or d // heads
    body = layers * (2 * d * heads * head_dim + 2 * d * kv * head_dim + 3 * d * ff)
    types = getattr(config, "layer_types", None) or ["full_attention"] * layers
    window = getattr(config, "sliding_window", None)
    total = 0.0
    for n, s in zip(lengths, scored, strict=True):
        pairs = sum(_pairs(n, window if kind == "sliding_attention" else None) for kind in types)
        matrices = 2 * body * n + 2 * d * config.vocab_size * s  # frozen weights: forward, then input gradient
        attention = 4 * heads * head_dim * pairs  # no weights: the backward takes both operands' gradients
        total += 2 * matrices + 3 * attention + 6 * adapter_parameters * n
    return total


def example_flops(config: Any, examples: list[Example], adapter_parameters: int) -> float:
    """A reference block attends across its documents, so each example counts as one sequence."""
    lengths = [len(e.input_ids) for e in examples]
    scored = [sum(1 for label in e.labels[1:] if label != -100) for e in examples]
    return model_flops(config, lengths, scored, adapter_parameters)
