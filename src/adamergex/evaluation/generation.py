"""Greedy generation in left-padded batches, cut at stop strings (each task reads its answer from the text
with its own ``extract_answer``, declared with the task).

Prompts are encoded the way lm-evaluation-harness encodes generation contexts (the tokenizer's own special
tokens, none added when the prompt already starts with the BOS text; left-truncated to leave room for the
new tokens), decoded without special tokens and cut at the first occurrence of any stop string, so the
generated text is the harness's ``generate_until`` output for the same prompt, stops and token budget.

Decoding is a plain greedy loop over a KV cache (what ``generate`` does for greedy search, without its
per-call set-up); a row leaves the batch as soon as its own text contains a stop string or it emits EOS,
instead of being computed until the whole batch is done. The cut text is the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from adamergex.errors import AdamergexError
from adamergex.evaluation.loglikelihood import cache_keyword, encode_text, model_max_length, prefix_token_id
from adamergex.evaluation.sharding import SINGLE_PROCESS, Shard


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the earliest occurrence of any non-empty stop string."""
    end = len(text)
    for marker in stop:
        if marker:
            found = text.find(marker)
            if found != -1:
                end = min(end, found)
    return text[:end]


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The tokens that end a generation: the model's generation config's EOS id(s), else the tokenizer's."""
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None) if config is not None else None
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(token) for token in (eos if isinstance(eos, list | tuple) else [eos])}


@torch.no_grad()
def _generate_batch(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    stop: Sequence[str],
    eos: set[int],
    pad_id: int,
    cache_kw: str,
    device: torch.device,
) -> list[str]:
    """Greedy decoding of one left-padded batch with a KV cache.

    A row leaves the batch as soon as it emits EOS or its text contains a stop string (its cache rows are
    dropped with ``batch_select_indices``), so the remaining rows are not slowed down by finished ones.
    Position ids count real tokens only, so left padding does not shift them.
    """
    width = max(len(ids) for ids in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids) :] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    output = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache = output.cache if getattr(output, "cache", None) is not None else output.past_key_values
    next_position = positions[:, -1] + 1
    rows = list(range(len(prompts)))  # batch row -> prompt index
    generated: list[list[int]] = [[] for _ in prompts]
    texts = [""] * len(prompts)
    markers = [marker for marker in stop if marker]
    for step in range(max_new_tokens):
        tokens = output.logits[:, -1].argmax(dim=-1)
        keep = []
        for batch_row, token in enumerate(tokens.tolist()):
            index = rows[batch_row]
            generated[index].append(token)
            texts[index] = tokenizer.decode(generated[index], skip_special_tokens=True)
            if token not in eos and not any(marker in texts[index] for marker in markers):
                keep.append(batch_row)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(rows):
            selected = torch.tensor(keep, device=device)
            cache.batch_select_indices(selected)
            tokens, mask, next_position = tokens[selected], mask[selected], next_position[selected]
            rows = [rows[batch_row] for batch_row in keep]
        mask = torch.cat([mask, torch.ones((len(rows), 1), dtype=mask.dtype, device=device)], dim=1)
        output = model(
            input_ids=tokens.unsqueeze(1),
            attention_mask=mask,
            position_ids=next_position.unsqueeze(1),
            use_cache=True,
            **{cache_kw: cache},
        )
        next_position = next_position + 1
    return texts


@torch.no_grad()
def generate_greedy(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    stop: Sequence[str] = (),
    batch_size: int = 8,
    max_length: int | None = None,
    progress: bool = True,
    shard: Shard = SINGLE_PROCESS,
) -> list[str]:
    """Greedy continuation of each prompt, cut at the first stop string.

    Args:
        model: a causal LM (transformers or PEFT-wrapped) in eval mode.
        tokenizer: its tokenizer.
        prompts: the exact texts the model sees.
        max_new_tokens: token budget per prompt.
        stop: stop strings; the text is cut before the first one (EOS always stops a row).
        batch_size: prompts generated together (left-padded).
        max_length: model context limit; defaults to the config's position limit. Prompts are
            left-truncated to ``max_length - max_new_tokens`` tokens.
        progress: show a progress bar (in the main process).
        shard: this process's share of the batches in a multi-process evaluation
            (:mod:`~adamergex.evaluation.sharding`); every process returns all texts.

    Returns:
        the generated texts, in input order.
    """
    if batch_size < 1:
        raise AdamergexError(f"batch size must be at least 1, got {batch_size}")
    if max_new_tokens < 1:
        raise AdamergexError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    limit = (max_length or model_max_length(model, tokenizer)) - max_new_tokens
    if limit < 1:
        raise AdamergexError(f"max_new_tokens={max_new_tokens} leaves no room for the prompt in the model's context")
    # An empty prompt is conditioned on the BOS/EOS token, as in log-likelihood scoring.
    encoded = [encode_text(tokenizer, prompt)[-limit:] or [prefix_token_id(tokenizer)] for prompt in prompts]
    order = sorted(range(len(prompts)), key=lambda index: -len(encoded[index]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else prefix_token_id(tokenizer)
    device = next(model.parameters()).device
    eos = _eos_ids(model, tokenizer)
    cache_kw = cache_keyword(model)
    batches = shard.take([order[start : start + batch_size] for start in range(0, len(order), batch_size)])
    outputs: dict[int, str] = {}
    total = sum(len(batch) for batch in batches)
    with tqdm(total=total, desc="generating", unit="item", disable=not (progress and shard.is_main)) as bar:
        for batch in batches:
            texts = _generate_batch(
                model,
                tokenizer,
                [encoded[index] for index in batch],
                max_new_tokens=max_new_tokens,
                stop=stop,
                eos=eos,
                pad_id=pad_id,
                cache_kw=cache_kw,
                device=device,
            )
            for index, text in zip(batch, texts, strict=True):
                outputs[index] = cut_at_stop(text, stop)
            bar.update(len(batch))
    outputs = shard.merge(outputs)
    return [outputs[index] for index in range(len(prompts))]
