"""What a task is: a loader per language, splits, one prompt template per protocol, the answer form and the
metric. A task is declared once and used by both training (``RenderedItem.target``) and evaluation
(``RenderedItem.prompt`` / ``choices`` / ``gold``).

Templates are data: ``str.format`` strings over the item's fields plus per-language words (the
lm-evaluation-harness prompts use words such as "right"/"richtig"). The few things that need code (dropping a
premise's final period, lower-casing a choice's first letter) are small ``derive`` functions.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from adamergex.data.languages import UnknownLanguageError, check_supported
from adamergex.errors import AdamergexError

Protocol = Literal["harness", "paper", "xlt"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
TaskKind = Literal["multiple_choice", "generation"]
Truncation = Literal["head", "head_tail"]
TRUNCATIONS: tuple[str, ...] = get_args(Truncation)
#: put between the head and the tail of a text cut by ``head_tail`` truncation.
TRUNCATION_MARKER = " … "


class TaskError(AdamergexError):
    """A task, split or protocol that does not exist, or an item that does not fit its task."""


@dataclass(frozen=True)
class TaskItem:
    """One example of a task in one language, in the task's normalised schema.

    Attributes:
        id: stable identifier (``<task>/<lang>/<split>/<source id or index>``).
        lang: ISO 639-1 code.
        fields: the example's fields (e.g. ``premise``, ``hypothesis``, ``label``).
    """

    id: str
    lang: str
    fields: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (inverse of :meth:`from_json`)."""
        return {"id": self.id, "lang": self.lang, "fields": dict(self.fields)}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> TaskItem:
        """Rebuild an item written by :meth:`to_json`."""
        return cls(id=str(record["id"]), lang=str(record["lang"]), fields=dict(record["fields"]))


@dataclass(frozen=True)
class RenderedItem:
    """An item exactly as the model sees it.

    Attributes:
        prompt: the context string (may be empty: some harness tasks score the whole sentence).
        choices: for multiple choice, the continuations scored after ``prompt`` (with their leading
            delimiter, usually a space); None for generation.
        gold: index of the correct choice, or the reference answer(s) for generation.
        target: the continuation a task adapter is trained to produce after ``prompt`` (loss on it only).
        id: the item's id.
        stop: for generation, the stop strings of this item's protocol and language (None: multiple choice).
        max_new_tokens: for generation, the generation budget of this item's protocol.
    """

    prompt: str
    choices: list[str] | None
    gold: int | str | list[str]
    target: str
    id: str
    stop: list[str] | None = None
    max_new_tokens: int | None = None

    @property
    def choice_index(self) -> int:
        """The gold choice of a multiple-choice item (a :class:`TaskError` for a generation item)."""
        if self.choices is None or not isinstance(self.gold, int):
            raise TaskError(f"item {self.id} is not a multiple-choice item; it has no gold choice index")
        return self.gold

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "choices": self.choices,
            "gold": self.gold,
            "target": self.target,
            "stop": self.stop,
            "max_new_tokens": self.max_new_tokens,
        }


Derive = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt format declared as data.

    Every string is a ``str.format`` template over the item's fields, the per-language ``words`` and whatever
    ``derive`` adds. For multiple choice, ``choices`` are the continuation templates and the gold index is
    ``fields[gold_field]``; the training target is the gold choice. For generation, ``target`` is the
    reference continuation and ``fields[answers_field]`` the reference answer(s).

    Attributes:
        prompt: template of the context.
        choices: templates of the continuations (multiple choice only), each with its leading delimiter.
        target: template of the trained continuation (generation only).
        words: per-language words, ``{lang: {name: word}}``; the key ``"*"`` applies to every language.
        derive: adds computed fields from the item's fields (for what a format string cannot express).
        gold_field: field holding the gold choice index.
        answers_field: field holding the reference answer(s) for generation.
        stop: stop-string templates for generation (formatted with the words, so they can be per language);
            None uses the task's :attr:`Task.stop`.
        max_new_tokens: generation budget; None uses the task's :attr:`Task.max_new_tokens`.
        source: where the format comes from (the harness task, or "adamergex instruction prompt").
    """

    prompt: str
    choices: tuple[str, ...] | None = None
    target: str | None = None
    words: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    derive: Derive | None = None
    gold_field: str = "label"
    answers_field: str = "answers"
    stop: tuple[str, ...] | None = None
    max_new_tokens: int | None = None
    source: str = ""

    def variables(self, item: TaskItem) -> dict[str, Any]:
        """The values the templates are formatted with: fields, then words, then derived fields."""
        values: dict[str, Any] = dict(item.fields)
        values.update(self.words.get("*", {}))
        values.update(self.words.get(item.lang, {}))
        if self.derive is not None:
            values.update(self.derive(values))
        return values

    def render(self, item: TaskItem) -> RenderedItem:
        """Format ``item``; raises :class:`TaskError` when a field or word is missing."""
        values = self.variables(item)
        try:
            prompt = self.prompt.format_map(values)
            if self.choices is not None:
                choices = [choice.format_map(values) for choice in self.choices]
                gold = int(values[self.gold_field])
                if not 0 <= gold < len(choices):
                    raise TaskError(f"item {item.id}: gold index {gold} is outside the {len(choices)} choices")
                return RenderedItem(prompt=prompt, choices=choices, gold=gold, target=choices[gold], id=item.id)
            if self.target is None:
                raise TaskError(f"item {item.id}: template has neither choices nor a target")
            target = self.target.format_map(values)
            answers = values[self.answers_field]
            references: str | list[str] = list(answers) if isinstance(answers, list | tuple) else str(answers)
            stop = None if self.stop is None else [text.format_map(values) for text in self.stop]
            return RenderedItem(
                prompt=prompt,
                choices=None,
                gold=references,
                target=target,
                id=item.id,
                stop=stop,
                max_new_tokens=self.max_new_tokens,
            )
        except KeyError as missing:
            raise TaskError(
                f"item {item.id} ({item.lang}): the prompt template needs field or word {missing}, "
                f"which the item does not have (fields: {', '.join(sorted(item.fields))})"
            ) from None


Loader = Callable[..., list[TaskItem]]


@dataclass(frozen=True)
class Task:
    """A task declared as data.

    Attributes:
        name: registry name.
        description: one line.
        languages: ISO 639-1 codes the loader supports.
        splits: split names the loader supports.
        kind: ``multiple_choice`` (scored by log-likelihood of each choice) or ``generation`` (greedy).
        metrics: metric names, the first is the headline metric.
        loader: ``loader(lang, split, **source_options) -> list[TaskItem]`` in the source's order.
        templates: one :class:`PromptTemplate` per protocol (``harness``, ``paper``, ``xlt``).
        max_new_tokens: generation budget (generation tasks) unless the protocol's template sets one.
        stop: stop strings for generation unless the protocol's template sets them; the rendered item
            carries the resolved values (:attr:`RenderedItem.stop`, :attr:`RenderedItem.max_new_tokens`).
        text_field: the long input field that ``max_text_chars`` / ``max_text_tokens`` truncate.
        source: the dataset and its reference.
        labels: class names, for classification tasks (index = gold choice).
        extract_answer: for generation, reads the answer from a generated text (and from each reference)
            before the metric compares them (:mod:`~adamergex.data.tasks.answers`); default: strip whitespace.
        label_fields: fields besides the templates' ``gold_field`` that hold or name the gold answer; an input
            used without its label (label-free calibration) has all of them removed before it is rendered.
        languages_by_split: the languages of a split that exists in fewer than :attr:`languages` (e.g. a
            training split taken from an English dataset); splits not named here exist in every language.
        split_sources: per split, the dataset it is read from when that is not the task's own (for messages
            and ``adamergex data list``).
    """

    name: str
    description: str
    languages: tuple[str, ...]
    splits: tuple[str, ...]
    kind: TaskKind
    metrics: tuple[str, ...]
    loader: Loader
    templates: Mapping[str, PromptTemplate]
    max_new_tokens: int | None = None
    stop: tuple[str, ...] = ()
    text_field: str | None = None
    source: str = ""
    labels: tuple[str, ...] | None = None
    extract_answer: Callable[[str], str] = str.strip
    label_fields: tuple[str, ...] = ()
    languages_by_split: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    split_sources: Mapping[str, str] = field(default_factory=dict)

    def check_language(self, lang: str) -> str:
        """Normalise ``lang`` and check the task has it (the error lists the task's languages)."""
        return check_supported(lang, self.languages, f"task {self.name!r}")

    def check_split(self, split: str) -> str:
        """Check the task has ``split`` (the error lists the task's splits)."""
        if split not in self.splits:
            raise TaskError(f"task {self.name!r} has no split {split!r}; expected one of: {', '.join(self.splits)}")
        return split

    def split_languages(self, split: str) -> tuple[str, ...]:
        """The languages ``split`` exists in (all of :attr:`languages` unless :attr:`languages_by_split` narrows
        it)."""
        return tuple(self.languages_by_split.get(self.check_split(split), self.languages))

    def has_split(self, lang: str, split: str) -> bool:
        """Whether the task has ``split`` in ``lang`` (e.g. for skipping a target-language training run); False
        for a language the task does not have at all."""
        try:
            lang = self.check_language(lang)
        except UnknownLanguageError:
            return False
        return split in self.splits and lang in self.split_languages(split)

    def check_split_language(self, lang: str, split: str) -> None:
        """Refuse a split in a language it does not exist in, naming the languages it has and its source."""
        languages = self.split_languages(split)
        if lang not in languages:
            source = f" ({self.split_sources[split]})" if split in self.split_sources else ""
            raise TaskError(
                f"task {self.name!r} has split {split!r}{source} only in {', '.join(languages)}, not in {lang!r}"
            )

    def source_options(self) -> tuple[str, ...]:
        """Names of the keyword options the loader takes (``archive``, ``data_files``, ``offline``, ...)."""
        parameters = inspect.signature(self.loader).parameters.values()
        return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)

    def check_source_options(self, options: Mapping[str, Any]) -> None:
        """Refuse options the loader does not take, naming the ones it does."""
        unknown = sorted(set(options) - set(self.source_options()))
        if unknown:
            raise TaskError(
                f"task {self.name!r} does not take option(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(self.source_options()) or 'none'}"
            )

    def load(
        self,
        lang: str,
        split: str,
        *,
        limit: int | None = None,
        seed: int = 0,
        max_text_chars: int | None = None,
        max_text_tokens: int | None = None,
        tokenizer: Any = None,
        truncation: Truncation = "head",
        **source_options: Any,
    ) -> list[TaskItem]:
        """Load ``split`` of the task in ``lang``.

        Args:
            lang: language (any form :func:`~adamergex.data.languages.normalize_language` accepts).
            split: one of :attr:`splits`.
            limit: keep a deterministic subset of this many items: a ``seed``-seeded sample of indices,
                returned in source order. The same ``limit`` and ``seed`` select the same indices in every
                language of equal size, so aligned languages keep aligned subsets.
            seed: seed of the subset.
            max_text_chars: cut :attr:`text_field` to this many characters.
            max_text_tokens: cut :attr:`text_field` to this many tokens of ``tokenizer`` (found with the
                tokenizer's offsets when it has them).
            tokenizer: needed with ``max_text_tokens``.
            truncation: what a cut keeps (:func:`truncate_text`): ``head`` (a prefix, the default) or
                ``head_tail`` (the first and the last tokens, joined by :data:`TRUNCATION_MARKER`).
            **source_options: passed to the loader (``archive``, ``data_files``, ``offline``, ...).
        """
        lang = self.check_language(lang)
        self.check_split(split)
        self.check_split_language(lang, split)
        self.check_source_options(source_options)
        check_truncation(truncation)
        items = self.loader(lang, split, **source_options)
        if limit is not None:
            items = deterministic_subset(items, limit, seed)
        if max_text_chars is not None or max_text_tokens is not None:
            if self.text_field is None:
                raise TaskError(f"task {self.name!r} has no long text field to truncate")
            items = [
                truncate_item(
                    item,
                    self.text_field,
                    max_chars=max_text_chars,
                    max_tokens=max_text_tokens,
                    tokenizer=tokenizer,
                    mode=truncation,
                )
                for item in items
            ]
        return items

    def render(self, item: TaskItem, protocol: Protocol = "harness") -> RenderedItem:
        """Render ``item`` with the template of ``protocol``."""
        if protocol not in self.templates:
            raise TaskError(
                f"task {self.name!r} has no protocol {protocol!r}; expected one of: {', '.join(self.templates)}"
            )
        rendered = self.templates[protocol].render(item)
        if self.kind == "generation":
            rendered = replace(
                rendered,
                stop=list(self.stop) if rendered.stop is None else rendered.stop,
                max_new_tokens=self.max_new_tokens if rendered.max_new_tokens is None else rendered.max_new_tokens,
            )
        return rendered


def rendered_fingerprint(rendered: list[RenderedItem]) -> str:
    """sha256 of the canonical JSON of rendered items: identifies exactly the data an adapter saw."""
    digest = hashlib.sha256()
    for item in rendered:
        digest.update(json.dumps(item.to_json(), sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def deterministic_subset(items: list[TaskItem], limit: int, seed: int) -> list[TaskItem]:
    """``limit`` items sampled with ``random.Random(seed)`` over indices, kept in source order."""
    if limit < 1:
        raise TaskError(f"limit must be a positive number of items, got {limit}")
    if limit >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[index] for index in chosen]


def check_truncation(mode: str) -> Truncation:
    """``mode`` if it is a truncation mode; otherwise a :class:`TaskError` naming the valid ones."""
    if mode not in TRUNCATIONS:
        raise TaskError(f"unknown truncation {mode!r}; expected one of: {', '.join(TRUNCATIONS)}")
    return mode  # type: ignore[return-value]


def head_tail_sizes(budget: int) -> tuple[int, int]:
    """(head, tail) sizes that share ``budget``: the head gets the odd one, ``ceil(budget / 2)``."""
    return budget - budget // 2, budget // 2


def _join(head: str, tail: str) -> str:
    return head.rstrip() + TRUNCATION_MARKER + tail.lstrip()


def truncate_text(
    text: str,
    *,
    max_chars: int | None = None,
    max_tokens: int | None = None,
    tokenizer: Any = None,
    mode: Truncation = "head",
) -> str:
    """``text`` cut to at most ``max_chars`` characters and at most ``max_tokens`` tokens.

    ``head`` keeps a prefix. ``head_tail`` keeps the first ``ceil(n / 2)`` and the last ``floor(n / 2)``
    characters or tokens (n the limit) and joins them with :data:`TRUNCATION_MARKER` (so a cut text is the
    marker's few tokens longer than n): reviews often state their verdict at the end. Token cuts keep the
    original characters (from the fast tokenizer's offset mapping), so nothing is re-spelled by decoding;
    without offsets they decode the kept ids.
    """
    check_truncation(mode)
    if max_chars is not None:
        if max_chars < 1:
            raise TaskError(f"max_text_chars must be positive, got {max_chars}")
        if len(text) > max_chars:
            head, tail = head_tail_sizes(max_chars) if mode == "head_tail" else (max_chars, 0)
            text = _join(text[:head], text[len(text) - tail :]) if tail else text[:head]
    if max_tokens is not None:
        if max_tokens < 1:
            raise TaskError(f"max_text_tokens must be positive, got {max_tokens}")
        if tokenizer is None:
            raise TaskError("max_text_tokens needs a tokenizer (pass tokenizer=...)")
        text = _truncate_tokens(text, max_tokens, tokenizer, mode)
    return text


def _truncate_tokens(text: str, max_tokens: int, tokenizer: Any, mode: Truncation) -> str:
    head, tail = head_tail_sizes(max_tokens) if mode == "head_tail" else (max_tokens, 0)
    if getattr(tokenizer, "is_fast", False):
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text
        head_end = offsets[head - 1][1]
        # a character split into several byte tokens may straddle the cut: never repeat it in the tail
        tail_start = max(offsets[len(offsets) - tail][0], head_end) if tail else len(text)
        return _join(text[:head_end], text[tail_start:]) if tail else text[:head_end]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_tokens:
        return text
    kept = tokenizer.decode(ids[:head])
    return _join(kept, tokenizer.decode(ids[len(ids) - tail :])) if tail else kept


def truncate_item(
    item: TaskItem,
    field_name: str,
    *,
    max_chars: int | None,
    max_tokens: int | None,
    tokenizer: Any,
    mode: Truncation = "head",
) -> TaskItem:
    """A copy of ``item`` whose ``field_name`` is cut by :func:`truncate_text`."""
    fields = dict(item.fields)
    fields[field_name] = truncate_text(
        str(fields[field_name]), max_chars=max_chars, max_tokens=max_tokens, tokenizer=tokenizer, mode=mode
    )
    return TaskItem(id=item.id, lang=item.lang, fields=fields)
