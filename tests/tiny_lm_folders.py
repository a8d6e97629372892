"""Tiny random causal LMs saved as real model folders with a real (word-level) tokenizer, for fast tests.

``write_tiny_lm(folder, "llama" | "gemma3")`` writes what ``save_pretrained`` writes for a model and its
tokenizer, so the code under test loads it exactly like a downloaded model.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from adamergex.training.data import TrainingData, examples_fingerprint, task_example

SPECIAL = ["<pad>", "<unk>", "<bos>", "<eos>"]
WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "bird",
    "fish",
    "sees",
    "eats",
    "likes",
    "chases",
    "red",
    "blue",
    "green",
    "small",
    "big",
    ".",
    ",",
    "->",
    "positive",
    "negative",
    "neutral",
    "review",
    "sentiment",
    ":",
    "is",
    "good",
    "bad",
    "day",
    "night",
    "and",
    "or",
]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over :data:`WORDS` (ids 0-3 are pad, unk, bos, eos)."""
    vocab = {token: index for index, token in enumerate(SPECIAL + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>", eos_token="<eos>"
    )


def tiny_model(arch: str, vocab_size: int, seed: int = 0) -> PreTrainedModel:
    """A 2-layer random Llama or Gemma-3 text model with all seven projection kinds."""
    torch.manual_seed(seed)
    common = {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 128,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
        # Larger than the default 0.02 so the (norm-capped) logits can move far enough to fit the toy data.
        "initializer_range": 0.2,
    }
    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(**common)).eval()
    if arch == "gemma3":
        config = Gemma3TextConfig(**common, head_dim=16, sliding_window=16, query_pre_attn_scalar=16)
        return Gemma3ForCausalLM(config).eval()
    raise ValueError(f"unknown tiny architecture {arch!r}")


def write_tiny_lm(folder: Path, arch: str = "llama", seed: int = 0) -> Path:
    """Save a tiny model of ``arch`` and its tokenizer into ``folder``; returns ``folder``."""
    tokenizer = tiny_tokenizer()
    model = tiny_model(arch, len(tokenizer), seed)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def toy_documents(count: int = 40) -> list[str]:
    """A learnable corpus: sentences from a fixed cycle of patterns (next word mostly determined)."""
    patterns = [
        "the cat sees the dog .",
        "a small bird eats the red fish .",
        "the big dog chases a blue cat .",
        "a green fish likes the small bird .",
    ]
    return [" ".join(patterns[(i + j) % len(patterns)] for j in range(6)) for i in range(count)]


_GGUF_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_GGUF_LAYER_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _llama_cpp_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """The q/k row order llama.cpp's converter writes (rotary halves interleaved); transformers undoes it."""
    return (
        weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)
    )


def write_tiny_gguf(path: Path, model: LlamaForCausalLM) -> Path:
    """Write ``model`` (a tiny Llama) as an F32 GGUF file the way llama.cpp's converter lays it out.

    The tokenizer metadata is a minimal SentencePiece-style vocabulary (:data:`WORDS` with ``▁`` prefixes);
    it loads, but only the model weights are meant to be compared.
    """
    config = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_vocab_size(config.vocab_size)
    tokens = SPECIAL + ["▁" + word for word in WORDS]
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * len(tokens))
    writer.add_token_types([3, 2, 3, 3] + [1] * len(WORDS))
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(3)
    writer.add_pad_token_id(0)
    writer.add_unk_token_id(1)
    for key, tensor in model.state_dict().items():
        if key in _GGUF_NAMES:
            name = _GGUF_NAMES[key]
        else:
            parts = key.split(".")
            name = f"blk.{parts[2]}.{_GGUF_LAYER_NAMES['.'.join(parts[3:-1])]}.weight"
        array = tensor.float().numpy()
        if name.endswith("attn_q.weight"):
            array = _llama_cpp_permute(array, config.num_attention_heads)
        elif name.endswith("attn_k.weight"):
            array = _llama_cpp_permute(array, config.num_key_value_heads)
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def toy_task_data() -> TrainingData:
    """A learnable answer-only task: the animal decides the answer."""
    tokenizer = tiny_tokenizer()
    animals = {"cat": " good", "dog": " bad", "bird": " good", "fish": " bad"}
    colours = ["red", "blue", "green"]
    sizes = ["small", "big"]
    pairs = [
        (f"review : the {size} {colour} {animal} sentiment :", answer)
        for animal, answer in animals.items()
        for colour in colours
        for size in sizes
    ]
    examples = [task_example(p, t, tokenizer, max_length=32) for p, t in pairs]
    train, validation = examples[:-4], examples[-4:]
    return TrainingData(
        kind="task",
        name="task:toy",
        lang="en",
        train=train,
        validation=validation,
        fingerprint=examples_fingerprint({"task": "toy"}, train, validation),
    )
