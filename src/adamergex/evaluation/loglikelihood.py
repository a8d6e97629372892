"""Multiple-choice scoring by log-likelihood, tokenised the way lm-evaluation-harness tokenises.

For an item with prompt ``c`` and choices ``x_1 .. x_k`` the score of choice ``j`` is

    LL_j = sum_t log p(x_j[t] | c, x_j[<t])              (summed, the harness ``acc``)
    LL_j / len(x_j)                                        (per character, the harness ``acc_norm``)

Tokenisation follows the harness convention so that the scored tokens are the same: trailing whitespace of
the prompt is moved to the front of the continuation, ``context + continuation`` is encoded as a whole and
the continuation tokens are what follows the separately encoded context; an empty prompt is replaced by the
BOS (else EOS) token.

Speed comes from two things the harness does not do. The prompt is run once per item, and every choice
is scored against its KV cache (the harness runs prompt + choice once per choice unless all choices are a
single token); and the vocabulary projection is computed only at the positions that are scored (the
harness projects every position of every row, which for a 262k-token vocabulary costs more than the
transformer body).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from tqdm.auto import tqdm

from adamergex.errors import AdamergexError
from adamergex.evaluation.sharding import SINGLE_PROCESS, Shard

_DEFAULT_MAX_LENGTH = 2048
_TOKENIZER_INFINITY = 1_000_000_000


@dataclass(frozen=True)
class ChoiceScores:
    """Scores of the choices of one item.

    ``loglikelihoods[j]`` is the summed log-probability of choice ``j``'s continuation tokens,
    ``token_counts[j]`` their number, ``char_counts[j]`` the characters of the choice without its leading
    whitespace (the harness normalises by the length of the choice without the target delimiter), and
    ``greedy[j]`` says whether every continuation token is the model's argmax.
    """

    loglikelihoods: tuple[float, ...]
    token_counts: tuple[int, ...]
    char_counts: tuple[int, ...]
    greedy: tuple[bool, ...]

    @property
    def normalized(self) -> tuple[float, ...]:
        """Log-likelihood per character of each choice."""
        return tuple(ll / max(chars, 1) for ll, chars in zip(self.loglikelihoods, self.char_counts, strict=True))

    @property
    def prediction(self) -> int:
        """Index of the choice with the highest summed log-likelihood (first one on ties, like argmax)."""
        return first_argmax(self.loglikelihoods)

    @property
    def prediction_normalized(self) -> int:
        """Index of the choice with the highest per-character log-likelihood."""
        return first_argmax(self.normalized)


def first_argmax(values: Sequence[float]) -> int:
    """Index of the largest value, the first one on ties (as ``argmax``)."""
    return max(range(len(values)), key=lambda index: (values[index], -index))


def model_max_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence the model takes: the config's position limit, else the tokenizer's, else 2048."""
    config = model.config
    for candidate in (getattr(config, "text_config", None), config):
        if candidate is None:
            continue
        for attribute in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(candidate, attribute, None)
            if isinstance(value, int) and value > 0:
                return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _TOKENIZER_INFINITY:
        return limit
    return _DEFAULT_MAX_LENGTH


def prefix_token_id(tokenizer: Any) -> int:
    """The token that stands in for an empty prompt: BOS, else EOS."""
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise AdamergexError("the tokenizer has neither a BOS nor an EOS token; one is needed for empty prompts")
    return int(token)


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Encode ``text`` with the tokenizer's own special tokens, unless it already starts with the BOS text."""
    bos_text = tokenizer.decode([prefix_token_id(tokenizer)])
    if bos_text and text.startswith(bos_text):
        return list(tokenizer.encode(text, add_special_tokens=False))
    return list(tokenizer.encode(text))


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of ``(context, continuation)`` as lm-evaluation-harness splits them for a causal LM.

    Trailing whitespace of the context moves to the continuation; the continuation tokens are the tokens of
    ``context + continuation`` after the first ``len(encode(context))`` ones. An empty context becomes the
    BOS/EOS token (or, when the continuation itself starts with that token, its first token).
    """
    if not continuation:
        raise AdamergexError(f"empty continuation for prompt {context[-40:]!r}; every choice must be non-empty")
    if context == "":
        continuation_ids = list(tokenizer.encode(continuation, add_special_tokens=False))
        prefix = prefix_token_id(tokenizer)
        if continuation_ids and continuation_ids[0] == prefix:
            return continuation_ids[:1], continuation_ids[1:]
        return [prefix], continuation_ids
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encode_text(tokenizer, context + continuation)
    context_ids = encode_text(tokenizer, context)
    return context_ids, whole[len(context_ids) :]


@dataclass
class _Group:
    """Choices that share the same context tokens (normally: all choices of one item)."""

    context: list[int]
    members: list[tuple[int, int, list[int]]]  # (item index, choice index, continuation ids)


def _group_requests(tokenizer: Any, items: Sequence[tuple[str, Sequence[str]]], max_length: int) -> list[_Group]:
    groups: dict[tuple[int, ...], _Group] = {}
    for item_index, (prompt, choices) in enumerate(items):
        if not choices:
            raise AdamergexError(f"item {item_index} has no choices; a multiple-choice item needs at least one")
        for choice_index, choice in enumerate(choices):
            context_ids, continuation_ids = encode_pair(tokenizer, prompt, choice)
            if not continuation_ids:
                raise AdamergexError(f"choice {choice!r} of item {item_index} encodes to no tokens")
            if len(continuation_ids) > max_length:
                raise AdamergexError(
                    f"choice {choice_index} of item {item_index} has {len(continuation_ids)} tokens, "
                    f"more than the model's {max_length}"
                )
            # As the harness does: keep the last max_length + 1 tokens of context + continuation.
            overflow = len(context_ids) + len(continuation_ids) - (max_length + 1)
            if overflow > 0:
                context_ids = context_ids[overflow:]
            key = (item_index, *context_ids)
            group = groups.setdefault(key, _Group(context_ids, []))
            group.members.append((item_index, choice_index, continuation_ids))
    return list(groups.values())


def cache_keyword(model: Any) -> str:
    """Name of the KV-cache argument of the model's forward (``cache`` in transformers 5, else the old one)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    parameters = inspect.signature(base.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def _output_cache(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _pad(
    rows: Sequence[Sequence[int]], pad_id: int, side: Literal["left", "right"]
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        if not row:
            continue
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[index, span] = torch.tensor(row, dtype=torch.long)
        mask[index, span] = 1
    return ids, mask


@torch.no_grad()
def _score_batch(
    model: Any, groups: Sequence[_Group], pad_id: int, cache_kw: str, device: torch.device
) -> list[tuple[int, int, float, int, bool]]:
    """Score every member of ``groups``: one pass over the contexts, one over the continuations.

    Contexts are left-padded so that each one ends in the last column: the next-token distribution after
    the context is the last position's, and the continuation pass appends to a cache whose real tokens are
    contiguous (a sliding-window attention layer counts cache slots, so padding must not sit between the
    context and the continuation). Position ids are counted over real tokens only, so padding does not
    shift them.
    """
    context_ids, context_mask = _pad([group.context for group in groups], pad_id, "left")
    context_ids, context_mask = context_ids.to(device), context_mask.to(device)
    positions = (context_mask.cumsum(-1) - 1).clamp(min=0)
    lengths = context_mask.sum(-1)
    multi_token = [
        (group_index, member)
        for group_index, group in enumerate(groups)
        for member in group.members
        if len(member[2]) > 1
    ]
    output = model(
        input_ids=context_ids,
        attention_mask=context_mask,
        position_ids=positions,
        use_cache=bool(multi_token),
        logits_to_keep=1,
    )
    results = _first_token_scores(groups, output.logits[:, -1])
    if multi_token:
        owners = torch.tensor([group_index for group_index, _ in multi_token], device=device)
        _add_continuation_scores(
            model,
            _output_cache(output),
            owners,
            [member for _, member in multi_token],
            context_mask,
            lengths,
            results,
            pad_id=pad_id,
            cache_kw=cache_kw,
        )
    return [
        (item_index, choice_index, ll, len(continuation), greedy)
        for group in groups
        for item_index, choice_index, continuation in group.members
        for ll, greedy in [results[(item_index, choice_index)]]
    ]


_Scores = dict[tuple[int, int], tuple[float, bool]]  # (item, choice) -> (log-likelihood so far, all greedy)


def _first_token_scores(groups: Sequence[_Group], last_logits: torch.Tensor) -> _Scores:
    """(log p, is greedy) of each member's first continuation token, from the logits after its group's context."""
    first_logprobs = torch.log_softmax(last_logits.float(), dim=-1)
    first_greedy = first_logprobs.argmax(dim=-1).tolist()
    results: _Scores = {}
    for group_index, group in enumerate(groups):
        for item_index, choice_index, continuation in group.members:
            results[(item_index, choice_index)] = (
                float(first_logprobs[group_index, continuation[0]]),
                first_greedy[group_index] == continuation[0],
            )
    return results


def _add_continuation_scores(
    model: Any,
    cache: Any,
    owners: torch.Tensor,
    members: Sequence[tuple[int, int, list[int]]],
    context_mask: torch.Tensor,
    lengths: torch.Tensor,
    results: _Scores,
    *,
    pad_id: int,
    cache_kw: str,
) -> None:
    """Add the log-probabilities of the remaining tokens of multi-token continuations to ``results``.

    Row ``i`` continues the cached context of group ``owners[i]``; its inputs are the continuation without
    its last token, right-padded, at positions following the context's real tokens.
    """
    device = owners.device
    cache.batch_select_indices(owners)
    cont_ids, cont_mask = _pad([member[2][:-1] for member in members], pad_id, "right")
    cont_ids, cont_mask = cont_ids.to(device), cont_mask.to(device)
    steps = torch.arange(cont_ids.shape[1], device=device)
    cont_positions = lengths[owners].unsqueeze(1) + steps.unsqueeze(0)
    output = model(
        input_ids=cont_ids,
        attention_mask=torch.cat([context_mask[owners], cont_mask], dim=1),
        position_ids=cont_positions,
        use_cache=True,
        **{cache_kw: cache},
    )
    # Row by row: log p(token) = logit - logsumexp(logits), without a second vocabulary-sized tensor.
    for row, (item_index, choice_index, continuation) in enumerate(members):
        targets = torch.tensor(continuation[1:], device=device)
        row_logits = output.logits[row, : len(targets)].float()
        picked = row_logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        rest = float((picked - torch.logsumexp(row_logits, dim=-1)).sum())
        first, greedy = results[(item_index, choice_index)]
        greedy = greedy and bool((row_logits.argmax(-1) == targets).all())
        results[(item_index, choice_index)] = (first + rest, greedy)


def score_multiple_choice(
    model: Any,
    tokenizer: Any,
    items: Sequence[tuple[str, Sequence[str]]],
    *,
    batch_size: int = 8,
    max_length: int | None = None,
    progress: bool = True,
    shard: Shard = SINGLE_PROCESS,
) -> list[ChoiceScores]:
    """Log-likelihood of each choice continuation of each ``(prompt, choices)`` item.

    Args:
        model: a causal LM (transformers or PEFT-wrapped) in eval mode.
        tokenizer: its tokenizer.
        items: ``(prompt, choices)`` pairs; each choice is the continuation scored after the prompt,
            including any leading space (the harness target delimiter).
        batch_size: number of prompts run together.
        max_length: model context limit; defaults to the config's position limit (as the harness).
        progress: show a progress bar (in the main process).
        shard: this process's share of the batches in a multi-process evaluation
            (:mod:`~adamergex.evaluation.sharding`); every process returns the scores of all items.

    Returns:
        one :class:`ChoiceScores` per item, in input order.
    """
    if batch_size < 1:
        raise AdamergexError(f"batch size must be at least 1, got {batch_size}")
    limit = max_length or model_max_length(model, tokenizer)
    groups = _group_requests(tokenizer, items, limit)
    # Longest contexts first: padding within a batch stays small and memory peaks show up at once.
    groups.sort(key=lambda group: -len(group.context))
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = prefix_token_id(tokenizer)
    device = next(model.parameters()).device
    cache_kw = cache_keyword(model)

    batches = shard.take([groups[start : start + batch_size] for start in range(0, len(groups), batch_size)])
    collected: dict[tuple[int, int], tuple[float, int, bool]] = {}
    total = sum(len(batch) for batch in batches)
    with tqdm(total=total, desc="scoring choices", unit="prompt", disable=not (progress and shard.is_main)) as bar:
        for batch in batches:
            for item_index, choice_index, ll, count, greedy in _score_batch(model, batch, pad_id, cache_kw, device):
                collected[(item_index, choice_index)] = (ll, count, greedy)
            bar.update(len(batch))
    collected = shard.merge(collected)

    scores = []
    for item_index, (_, choices) in enumerate(items):
        entries = [collected[(item_index, choice_index)] for choice_index in range(len(choices))]
        scores.append(
            ChoiceScores(
                loglikelihoods=tuple(entry[0] for entry in entries),
                token_counts=tuple(entry[1] for entry in entries),
                char_counts=tuple(len(choice.lstrip()) for choice in choices),
                greedy=tuple(entry[2] for entry in entries),
            )
        )
    return scores
