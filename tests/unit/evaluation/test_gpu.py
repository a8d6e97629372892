"""CUDA: the scorer and the generator give the CPU results on the GPU, and ``auto`` probes the device."""

from __future__ import annotations

import copy

import pytest
import torch

from adamergex.evaluation.generation import generate_greedy
from adamergex.evaluation.loglikelihood import score_multiple_choice
from adamergex.evaluation.runner import auto_batch_size

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

ITEMS = [
    ("The cat sat on the", [" mat", " log", " dog sat on the mat"]),
    ("", [" Der Hund schläft, richtig? Ja, die Katze", " Nein"]),
    ("我喜欢", [" 猫在睡觉", " 狗"]),
]


def test_scores_and_generations_match_cpu(llama, tokenizer) -> None:
    gpu_model = copy.deepcopy(llama).to("cuda")
    cpu = score_multiple_choice(llama, tokenizer, ITEMS, batch_size=2, progress=False)
    gpu = score_multiple_choice(gpu_model, tokenizer, ITEMS, batch_size=2, progress=False)
    for first, second in zip(cpu, gpu, strict=True):
        assert first.loglikelihoods == pytest.approx(second.loglikelihoods, abs=1e-3)
    prompts = ["The", "Frage: wie viele?\nAntwort:"]
    assert generate_greedy(gpu_model, tokenizer, prompts, max_new_tokens=8, progress=False) == generate_greedy(
        llama, tokenizer, prompts, max_new_tokens=8, progress=False
    )


def test_auto_batch_size_probes_the_gpu(llama) -> None:
    gpu_model = copy.deepcopy(llama).to("cuda")
    size = auto_batch_size(gpu_model, 64, 1000)
    assert 1 < size <= 256
