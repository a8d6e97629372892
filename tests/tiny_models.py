"""Tiny random transformers models for fast offline tests (importable from any test: ``from tiny_models import``)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def tiny_llama_config() -> LlamaConfig:
    return LlamaConfig(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
    )


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    """A tiny random Llama in eval mode; the same seed gives the same weights."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(tiny_llama_config()).eval()
