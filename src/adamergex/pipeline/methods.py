"""The pipeline's methods as one table: what each scores, which trained adapters it needs, whether it takes t,
which adapter kinds and task kinds it applies to, and (for merges) how its adapter is built.

Adding a method is one :class:`MethodSpec` in :data:`METHODS`; the experiment config's ``methods`` field, the
runner and the report read this table. The order of the table is the order of the report's rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from adamergex.adapters.io import read_adapter, write_adapter
from adamergex.adapters.types import ADAPTER_KINDS
from adamergex.merging.api import combine, merge
from adamergex.merging.combination import ExactLoraMode
from adamergex.merging.cross import cross_vs_additive, multiplicative_lora_cross

#: What a method scores: the base model alone, the training split's majority label, the task adapter T,
#: a task adapter trained in the target language, or a merge of trained adapters built by the method.
Scores = Literal["base model", "majority label", "task adapter", "target task adapter", "merge"]
#: The trained adapters a method reads (``target_task``: a task adapter trained in the target language).
Role = Literal["task", "reference_target", "reference_source", "target_task"]
TASK_KINDS: tuple[str, ...] = ("multiple_choice", "generation")


@dataclass(frozen=True)
class MergeJob:
    """Everything a merge needs: the adapter folders by role, t, where to write, and the run's LoRA settings.

    ``base_weights(names)`` gives the base model's weight of each named module (only the LoRA cross ablation,
    which works on adapted weights, asks for it).
    """

    kind: str
    parts: Mapping[str, Path]
    t: float
    out: Path
    lora_mode: ExactLoraMode
    rank: int | None
    base_weights: Callable[[set[str]], dict[str, torch.Tensor]]


Build = Callable[[MergeJob], None]


@dataclass(frozen=True)
class MethodSpec:
    """One row of the method table.

    Attributes:
        name: the name in configs and reports.
        summary: one line for the docs and the config's help text.
        scores: what is evaluated (see :data:`Scores`).
        needs: the trained adapters it reads.
        takes_t: whether it has a coefficient t (chosen or fixed); at t = 0 each such method is the task adapter.
        adapter_kinds: the adapter kinds it applies to (others are skipped with a note).
        task_kinds: the task kinds it applies to (others are skipped with a note).
        in_source: also scored in the source language (the other side of the transfer gap).
        build: for merges, writes the merged adapter of a :class:`MergeJob`.
        display: its name in the report's prose (``vs Eng-FT``).
        baseline: the zero-shot baseline every other method is compared with item by item (one method), whose
            source-language score gives the transfer gap.
        versus: further methods its rows are compared with (at the matching t selection where there is one).
    """

    name: str
    summary: str
    scores: Scores
    needs: tuple[Role, ...] = ()
    takes_t: bool = False
    adapter_kinds: tuple[str, ...] = ADAPTER_KINDS
    task_kinds: tuple[str, ...] = TASK_KINDS
    in_source: bool = False
    build: Build | None = None
    display: str = ""
    baseline: bool = False
    versus: tuple[str, ...] = ()


def _arimerge(job: MergeJob) -> None:
    """``T + t·Rt``: LoRA on ΔW; (IA)³ on deviations from identity, ``l_T + t·(l_Rt − 1)``."""
    combine([job.parts["task"], job.parts["reference_target"]], [1.0, job.t], job.out, ia3_rule="deviation")


def _adamergex(job: MergeJob) -> None:
    """``T ⊕ t·(Rt ⊖ Rs)`` with the adapter's own operators (LoRA: the run's exact mode; (IA)³: multiplicative)."""
    if job.kind == "lora":
        rank = job.rank if job.lora_mode == "svd" else None
        merge(*_triple(job), job.t, job.out, mode=job.lora_mode, rank=rank)
    else:
        merge(*_triple(job), job.t, job.out, mode="multiplicative")


def _adamergex_cross(job: MergeJob) -> None:
    """The other structure's operators: additive for (IA)³, multiplicative on adapted weights for LoRA (which
    also records how far that lands from the additive merge, ``cross_vs_additive.json`` beside the adapter)."""
    if job.kind != "lora":
        merge(*_triple(job), job.t, job.out, mode="additive")
        return
    adapters = [read_adapter(path) for path in _triple(job)]
    weights = job.base_weights(set().union(*(adapter.modules for adapter in adapters)))
    result = multiplicative_lora_cross(adapters, weights, job.t)  # type: ignore[arg-type]
    difference = cross_vs_additive(adapters, weights, job.t)  # type: ignore[arg-type]
    job.out.parent.mkdir(parents=True, exist_ok=True)
    (job.out.parent / "cross_vs_additive.json").write_text(json.dumps(difference, indent=2))
    inputs = [str(path) for path in _triple(job)]
    provenance = {"tool": "adamergex", "method": "adamergex-cross", "t": job.t, "inputs": inputs}
    write_adapter(result.adapter, job.out, provenance=provenance)


def _factor(job: MergeJob) -> None:
    """The released code's factor-wise rule (LoRA only; not ΔW-exact)."""
    merge(*_triple(job), job.t, job.out, mode="factor")


def _triple(job: MergeJob) -> tuple[Path, Path, Path]:
    return job.parts["task"], job.parts["reference_target"], job.parts["reference_source"]


_MERGE_PARTS: tuple[Role, ...] = ("task", "reference_target", "reference_source")

METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("base", "the base model without an adapter", "base model"),
        MethodSpec(
            "majority",
            "the training split's most frequent label for every item",
            "majority label",
            task_kinds=("multiple_choice",),
            in_source=True,
        ),
        MethodSpec(
            "eng-ft",
            "the source-language task adapter T applied as is (zero-shot transfer)",
            "task adapter",
            needs=("task",),
            in_source=True,
            display="Eng-FT",
            baseline=True,
        ),
        MethodSpec(
            "arimerge",
            "T + t·Rt, structure-blind",
            "merge",
            needs=("task", "reference_target"),
            takes_t=True,
            build=_arimerge,
            display="AriMerge",
        ),
        MethodSpec(
            "adamergex",
            "T ⊕ t·(Rt ⊖ Rs) with the adapter's own operators",
            "merge",
            needs=_MERGE_PARTS,
            takes_t=True,
            build=_adamergex,
            versus=("arimerge",),
        ),
        MethodSpec(
            "adamergex-cross",
            "the other structure's operators (ablation)",
            "merge",
            needs=_MERGE_PARTS,
            takes_t=True,
            build=_adamergex_cross,
            versus=("arimerge",),
        ),
        MethodSpec(
            "factor",
            "factor-wise sum of the released code (LoRA only)",
            "merge",
            needs=_MERGE_PARTS,
            takes_t=True,
            adapter_kinds=("lora",),
            build=_factor,
            versus=("arimerge",),
        ),
        MethodSpec(
            "target-ft",
            "a task adapter trained on target-language data (upper bound)",
            "target task adapter",
            needs=("task", "target_task"),
        ),
    )
}
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)
#: The method every other is compared with, item by item.
BASELINE: str = next(name for name, spec in METHODS.items() if spec.baseline)
#: The methods some method's rows are compared with besides the baseline (``versus``), in table order.
VERSUS: tuple[str, ...] = tuple(name for name in METHODS if any(name in spec.versus for spec in METHODS.values()))
