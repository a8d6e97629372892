"""Tiny random causal LMs and an offline byte-level BPE tokenizer for the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

_CORPUS = [
    "The cat sat on the mat. The dog sat on the log. Question: how many? Answer: 12.",
    "Der Hund schläft, richtig? Ja, der Hund schläft. Nein, die Katze läuft. Frage: Antwort: 1,000",
    "Le chat dort, n'est-ce pas? Oui. Non. Aussi. perché quindi karena maka",
    "我喜欢猫。猫在睡觉。所以因为。 ภาษาไทยสวัสดีครับ القطة تنام على السجادة",
    "positive negative neutral ambivalent Review: Sentiment: Kontext: Frage:",
]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained in memory (any text encodes) that adds BOS like Llama/Gemma."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_CORPUS * 4, trainer=trainer)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", backend.token_to_id("<s>"))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def build_llama(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer random Llama with spread-out logits (so greedy choices are not near-ties)."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        initializer_range=0.2,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return LlamaForCausalLM(config).eval()


def build_gemma3(vocab_size: int, seed: int = 0) -> Gemma3ForCausalLM:
    """A 2-layer random Gemma-3 text model with a sliding-window layer, as in Gemma-3-270M."""
    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=1024,
        sliding_window=8,
        layer_types=["sliding_attention", "full_attention"],
        initializer_range=0.2,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return Gemma3ForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return build_tokenizer()


@pytest.fixture(scope="session")
def llama(tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    return build_llama(len(tokenizer))


@pytest.fixture(scope="session")
def gemma3(tokenizer: PreTrainedTokenizerFast) -> Gemma3ForCausalLM:
    return build_gemma3(len(tokenizer))


@pytest.fixture(scope="session")
def saved_llama(tmp_path_factory: pytest.TempPathFactory, llama: LlamaForCausalLM, tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llama")
    llama.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
