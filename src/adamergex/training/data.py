"""Training examples for the two adapter kinds of AdaMergeX, and how they are batched.

* **Reference task** (causal LM on plain text): every token is a label. Chunks of a reference corpus are
  *packed*: concatenated in corpus order and cut into blocks of ``max_length`` tokens, so no position is
  padding (every chunk already starts with BOS, which marks where a chunk began). Attention may cross a
  chunk boundary inside a block, as in transformers' ``run_clm`` ``group_texts``.
* **Target task** (a labelled task): ``[BOS] prompt target [EOS]`` with labels ``-100`` on BOS and the prompt,
  so the loss is on the answer tokens only; the EOS is there for generation tasks only unless asked for
  (:func:`resolve_append_eos`). Batches are *grouped by length* (sorted inside seeded
  mega-batches of 50 batches, as transformers' ``LengthGroupedSampler``) so little of a batch is padding.

Prompt and target are tokenised separately, so the boundary between them is exactly where the prompt ends,
the way log-likelihood scoring splits context and continuation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from adamergex.errors import AdamergexError
from adamergex.training.config import TrainingConfig
from adamergex.training.loss import IGNORE_INDEX

_MEGABATCH_FACTOR = 50


class EmptyDatasetError(AdamergexError):
    """The training data has no usable example."""


class TrainingDataError(AdamergexError):
    """The ``--data`` specification or the data it names is not usable."""


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and labels (``-100`` where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]

    @property
    def label_tokens(self) -> int:
        """Positions that contribute to the loss (the first token is never predicted)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


@dataclass
class TrainingData:
    """Tokenised training and validation examples with what identifies them.

    Attributes:
        kind: ``reference`` (loss on all tokens, packed) or ``task`` (loss on answers, length-grouped).
        name: the data as named by the user (``task:multiemo``, ``reference:udhr``, a corpus path).
        lang: ISO 639-1 language.
        train: training examples.
        validation: validation examples (may be empty).
        fingerprint: sha256 over the source's identity and every example's ids and labels.
        stats: counts (examples, tokens, label tokens) for the sidecar.
    """

    kind: Literal["reference", "task"]
    name: str
    lang: str
    train: list[Example]
    validation: list[Example]
    fingerprint: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def group_by_length(self) -> bool:
        """Task batches are grouped by length; packed reference blocks are (almost) all equally long."""
        return self.kind == "task"


def examples_fingerprint(identity: dict[str, Any], train: list[Example], validation: list[Example]) -> str:
    """sha256 of the canonical JSON of ``identity`` followed by every example's ids and labels."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    for split, examples in (("train", train), ("validation", validation)):
        digest.update(split.encode())
        for example in examples:
            digest.update(json.dumps([example.input_ids, example.labels]).encode())
    return digest.hexdigest()


def _stats(train: list[Example], validation: list[Example]) -> dict[str, Any]:
    return {
        "train_examples": len(train),
        "validation_examples": len(validation),
        "train_tokens": sum(len(e.input_ids) for e in train),
        "train_label_tokens": sum(e.label_tokens for e in train),
        "validation_tokens": sum(len(e.input_ids) for e in validation),
    }


def pack_chunks(chunks: list[list[int]], block: int) -> list[list[int]]:
    """Concatenate ``chunks`` and cut the stream into blocks of ``block`` tokens; the last may be shorter."""
    stream = [token for chunk in chunks for token in chunk]
    return [stream[start : start + block] for start in range(0, len(stream), block)]


def split_long(chunks: list[list[int]], block: int) -> list[list[int]]:
    """Without packing: each chunk on its own, cut into pieces of at most ``block`` tokens."""
    return [chunk[start : start + block] for chunk in chunks for start in range(0, len(chunk), block)]


def reference_examples(chunks: list[list[int]], max_length: int, *, packing: bool) -> list[Example]:
    """Causal-LM examples (labels = input ids) from token chunks; see the module docstring for packing."""
    blocks = pack_chunks(chunks, max_length) if packing else split_long(chunks, max_length)
    return [Example(input_ids=list(b), labels=list(b)) for b in blocks if len(b) >= 2]


def task_example(prompt: str, target: str, tokenizer: Any, *, max_length: int, append_eos: bool = True) -> Example:
    """``[BOS] prompt target [EOS]`` with labels only on ``target [EOS]``.

    When too long, the prompt loses tokens from its start (the end of a prompt, next to the answer, matters
    most); a target longer than ``max_length`` minus BOS is cut at its end.
    """
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] if prompt else []
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    if append_eos and tokenizer.eos_token_id is not None:
        target_ids = [*target_ids, tokenizer.eos_token_id]
    target_ids = target_ids[: max_length - len(bos)]
    room = max_length - len(bos) - len(target_ids)
    prompt_ids = prompt_ids[len(prompt_ids) - room :] if room > 0 else []
    context = bos + prompt_ids
    return Example(
        input_ids=context + target_ids,
        labels=[IGNORE_INDEX] * len(context) + target_ids,
    )


def resolve_append_eos(setting: bool | None, task_kind: str) -> bool:
    """Whether task answers end with a trained EOS: as set, else only for generation tasks.

    Multiple-choice scoring reads the log-likelihood of the answer tokens and never what follows them, so an
    EOS target only takes a share of a short run's loss away from the label. Generation needs it to stop.
    """
    return setting if setting is not None else task_kind == "generation"


def _check_ids(examples: list[Example], vocab_size: int, where: str) -> None:
    top = max((max(e.input_ids) for e in examples if e.input_ids), default=-1)
    if top >= vocab_size:
        raise TrainingDataError(
            f"{where} has token id {top} but the model's tokenizer has {vocab_size} tokens; "
            "rebuild the corpus with this model's tokenizer"
        )


def _reference_from_corpus(corpus: Any, config: TrainingConfig, name: str, lang: str) -> TrainingData:
    validation_chunks = corpus.validation
    train = reference_examples(corpus.train, config.max_length, packing=config.packing)
    validation = reference_examples(validation_chunks, config.max_length, packing=config.packing)
    identity = {
        "kind": "reference",
        "corpus": corpus.fingerprint,
        "max_length": config.max_length,
        "packing": config.packing,
    }
    return TrainingData(
        kind="reference",
        name=name,
        lang=lang,
        train=train,
        validation=validation,
        fingerprint=examples_fingerprint(identity, train, validation),
        stats={**_stats(train, validation), "corpus_fingerprint": corpus.fingerprint, "packing": config.packing},
    )


def _task_data(task_name: str, config: TrainingConfig, tokenizer: Any, lang: str) -> TrainingData:
    from adamergex.data.reference import split_indices
    from adamergex.data.tasks import get_task

    task = get_task(task_name)
    options = dict(config.data_options)
    load_options: dict[str, Any] = {"seed": config.seed, **options}
    if config.max_text_tokens is not None:
        load_options.update(max_text_tokens=config.max_text_tokens, tokenizer=tokenizer)
    items = task.load(lang, config.task_split, limit=config.limit, **load_options)
    validation_split = config.validation_split
    if validation_split is None and "validation" in task.splits and config.task_split != "validation":
        validation_split = "validation"
    if validation_split is not None:
        validation_items = task.load(lang, validation_split, limit=config.max_validation_items, **load_options)
    else:
        train_index, validation_index = split_indices(len(items), config.validation_fraction, config.seed)
        validation_items = [items[i] for i in validation_index][: config.max_validation_items]
        items = [items[i] for i in train_index]

    append_eos = resolve_append_eos(config.append_eos, task.kind)

    def encode(batch: list[Any]) -> list[Example]:
        rendered = [task.render(item, config.protocol) for item in batch]
        return [
            task_example(r.prompt, r.target, tokenizer, max_length=config.max_length, append_eos=append_eos)
            for r in rendered
        ]

    train, validation = encode(items), encode(validation_items)
    identity = {
        "kind": "task",
        "task": task.name,
        "lang": lang,
        "split": config.task_split,
        "validation_split": validation_split,
        "protocol": config.protocol,
        "options": {key: str(value) for key, value in options.items()},
        "append_eos": append_eos,
    }
    return TrainingData(
        kind="task",
        name=f"task:{task.name}",
        lang=lang,
        train=train,
        validation=validation,
        fingerprint=examples_fingerprint(identity, train, validation),
        stats={**_stats(train, validation), "task": task.name, "protocol": config.protocol, "append_eos": append_eos},
    )


def prepare_training_data(config: TrainingConfig, tokenizer: Any) -> TrainingData:
    """Tokenise the data named by ``config.data`` (see :class:`TrainingConfig`) for ``tokenizer``.

    Raises:
        TrainingDataError: the spec names nothing usable or the token ids do not fit the tokenizer.
        EmptyDatasetError: no training example is left.
    """
    from adamergex.data.languages import normalize_language
    from adamergex.data.reference import ReferenceCorpus, build_reference_corpus, load_reference_source

    lang = normalize_language(config.lang)
    spec = config.data
    if spec.startswith("task:"):
        data = _task_data(spec.removeprefix("task:"), config, tokenizer, lang)
    elif spec.startswith("reference:"):
        source = spec.removeprefix("reference:")
        loaded = load_reference_source(source, lang, **dict(config.data_options))
        documents = loaded.documents
        if config.limit is not None:
            documents = documents[: config.limit]
        if not any(document.strip() for document in documents):
            raise EmptyDatasetError(f"reference source {source!r} has no text for language {lang!r}")
        corpus = build_reference_corpus(
            documents,
            tokenizer,
            chunk_tokens=config.max_length,
            validation_fraction=config.validation_fraction,
            seed=config.seed,
            metadata={"source": source, "lang": lang, **loaded.metadata},
        )
        data = _reference_from_corpus(corpus, config, spec, lang)
    elif Path(spec).is_file():
        data = _reference_from_corpus(ReferenceCorpus.load(spec), config, spec, lang)
    else:
        raise TrainingDataError(
            f"data / --data {spec!r} is neither a reference corpus file, 'reference:SOURCE' nor 'task:NAME'"
        )
    if not data.train:
        raise EmptyDatasetError(f"data / --data {spec!r} gives no training example for language {lang!r}")
    data.validation = data.validation[: config.max_validation_items]
    _check_ids(data.train + data.validation, len(tokenizer), f"data / --data {spec!r}")
    return data


def batch_plan(lengths: list[int], batch_size: int, *, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """The micro-batches (lists of example indices) of one epoch; a pure function of its arguments.

    The order is a permutation from a generator seeded by ``(seed, epoch)``; with ``group_by_length``, each
    mega-batch of ``50 * batch_size`` examples is sorted by decreasing length before being cut into batches,
    and the batches are shuffled again, so a batch holds similar lengths without a fixed long-to-short order.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    mega = batch_size * _MEGABATCH_FACTOR
    batches: list[list[int]] = []
    for start in range(0, len(order), mega):
        group = sorted(order[start : start + mega], key=lambda index: -lengths[index])
        batches.extend(group[i : i + batch_size] for i in range(0, len(group), batch_size))
    shuffle = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffle]


def collate(examples: list[Example], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: ``input_ids``, ``attention_mask`` (0 on padding), ``labels``."""
    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
