"""Apply the merge algebra to whole adapters: align modules, check compatibility, build the output config.

The functions here take in-memory adapters and return an in-memory adapter plus per-module reports; reading,
writing and provenance live in :mod:`adamergex.merging.api`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch

from adamergex.adapters.types import KIND_NAMES, Adapter, IA3Adapter, IA3Module, LoraAdapter, LoraModule
from adamergex.errors import IncompatibleAdaptersError, NumericalError
from adamergex.merging import ia3 as ia3_algebra
from adamergex.merging import lora as lora_algebra
from adamergex.tensors import all_finite, lowrank_frobenius_norm

#: LoRA modes that are exact on ΔW (``svd`` up to its rank), used by ``combine`` and the pipeline.
ExactLoraMode = Literal["concat", "svd"]
LoraMode = Literal[ExactLoraMode, "factor"]
IA3Mode = Literal["multiplicative", "additive"]
#: (IA)³ rules of ``combine``: the structure-blind ``Σ w_i l_i`` or ``1 + Σ w_i (l_i − 1)``, or the
#: multiplicative ``∏ l_i^{w_i}`` (stacked adapters).
IA3Rule = Literal["weighted", "deviation", "product"]
ModulesToSave = Literal["refuse", "task"]
EXACT_LORA_MODES: tuple[str, ...] = get_args(ExactLoraMode)
LORA_MODES: tuple[str, ...] = (*EXACT_LORA_MODES, "factor")
IA3_MODES: tuple[str, ...] = get_args(IA3Mode)
IA3_RULES: tuple[str, ...] = get_args(IA3Rule)
MODULES_TO_SAVE: tuple[str, ...] = get_args(ModulesToSave)


@dataclass(frozen=True)
class ModuleReport:
    """What happened to one module.

    ``relative_change`` is ``‖X_out − X_first‖_F / ‖X_first‖_F`` where X is ΔW (LoRA, computed from factors) or
    the (IA)³ vector, and "first" is the first input (the task adapter in AdaMergeX).
    """

    name: str
    input_ranks: tuple[int | None, ...]
    output_rank: int | None
    kept_energy: float | None
    relative_change: float
    clamped: int = 0


@dataclass
class Combination:
    """The in-memory result of combining adapters, with what the summary needs to say about it."""

    adapter: Adapter
    modules: list[ModuleReport]
    missing: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _kind_name(adapter: Adapter) -> str:
    return KIND_NAMES[adapter.kind]


def check_compatible(
    adapters: Sequence[Adapter], roles: Sequence[str], *, allow_base_mismatch: bool = False
) -> list[str]:
    """Refuse adapters of different kinds or (unless allowed) different base models; return notes."""
    notes: list[str] = []
    first, first_role = adapters[0], roles[0]
    for adapter, role in zip(adapters[1:], roles[1:], strict=True):
        if adapter.kind != first.kind:
            raise IncompatibleAdaptersError(
                f"{first_role} is a {_kind_name(first)} adapter but {role} is {_kind_name(adapter)}; "
                "expected adapters of one kind"
            )
    named = {role: a.base_model for a, role in zip(adapters, roles, strict=True) if a.base_model}
    unnamed = [role for a, role in zip(adapters, roles, strict=True) if not a.base_model]
    if len(set(named.values())) > 1:
        listing = ", ".join(f"{role}={name!r}" for role, name in named.items())
        if not allow_base_mismatch:
            raise IncompatibleAdaptersError(
                f"adapters name different base models ({listing}); expected one base model "
                "(pass --allow-base-mismatch / allow_base_mismatch=True if these name the same model)"
            )
        notes.append(f"base model names differ ({listing}); allowed by the user, shapes checked")
    if unnamed:
        notes.append(f"no base_model_name_or_path in {', '.join(unnamed)}; base model not checked by name")
    return notes


def _is_embedding_copy(key: str) -> bool:
    # PEFT saves the embedding's base weights when embeddings are LoRA targets (save_embedding_layers);
    # they are copies of the base model, identical across adapters of one base model.
    return key.endswith(".base_layer.weight")


def resolve_modules_to_save(
    adapters: Sequence[Adapter], roles: Sequence[str], policy: ModulesToSave
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The extra (non-adapter) tensors the output carries, following ``policy``; refuse when ambiguous.

    Full module copies (``modules_to_save``) hold no delta that can be merged without the base model, so by
    default any input holding them is refused; ``policy="task"`` copies the first (task) adapter's.
    """
    notes: list[str] = []
    holders = [
        role
        for adapter, role in zip(adapters, roles, strict=True)
        if any(not _is_embedding_copy(key) for key in adapter.extra_tensors)
    ]
    if holders and policy != "task":
        raise IncompatibleAdaptersError(
            f"{', '.join(holders)} hold full module copies (modules_to_save) that cannot be merged without the "
            "base model; expected none, or pass --modules-to-save task / modules_to_save='task' to copy the task "
            "adapter's"
        )
    extra = dict(adapters[0].extra_tensors)
    if holders:
        notes.append(f"modules_to_save copied from {roles[0]}; those of other inputs dropped")
    return extra, notes


def check_shapes(name: str, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a module whose shape differs between adapters (``shapes``: role → shape)."""
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{role} {tuple(shape)}" for role, shape in shapes.items())
        raise IncompatibleAdaptersError(f"module {name}: shapes differ ({listing}); expected equal shapes")


def ordered_union(adapters: Sequence[Adapter]) -> list[str]:
    """Every module name of ``adapters``, each once, in the order of first appearance."""
    names: dict[str, None] = {}
    for adapter in adapters:
        names.update(dict.fromkeys(adapter.modules))
    return list(names)


def _missing(adapters: Sequence[Adapter], roles: Sequence[str], names: Sequence[str]) -> dict[str, list[str]]:
    missing = {role: [n for n in names if n not in a.modules] for a, role in zip(adapters, roles, strict=True)}
    return {role: absent for role, absent in missing.items() if absent}


def _relative_change(
    out_A: torch.Tensor, out_B: torch.Tensor, first: LoraModule | None, others: Sequence[lora_algebra.Term] = ()
) -> float:
    """``‖ΔW_out − ΔW_first‖_F / ‖ΔW_first‖_F`` from factors.

    When the output is exactly ``ΔW_first + Σ others`` (concat), the change is the norm of ``Σ others`` and is
    computed from those terms alone, which avoids cancelling ΔW_first against itself.
    """
    if first is None:
        return float("inf")
    # A diagnostic: float32 Gram products suffice unless the change is a difference of nearly equal products.
    base = lowrank_frobenius_norm(first.scale * first.lora_A, first.lora_B, torch.float32)
    if others:
        diff_A, diff_B = lora_algebra.concat_factors(others, out_A.dtype)
        change = lowrank_frobenius_norm(diff_A, diff_B, torch.float32)
    else:
        diff_A = torch.cat([out_A, -first.scale * first.lora_A.to(out_A.dtype)], dim=0)
        diff_B = torch.cat([out_B, first.lora_B.to(out_B.dtype)], dim=1)
        change = lowrank_frobenius_norm(diff_A, diff_B)
    return change / base if base > 0 else float("inf") if change > 0 else 0.0


def lora_output_config(
    first: LoraAdapter, ranks: dict[str, int], same_modules: bool, extra_keys: Sequence[str]
) -> dict[str, Any]:
    """The task adapter's config with rank/alpha describing scale-1 factors (alpha = r for every module)."""
    config = dict(first.config)
    common = Counter(ranks.values()).most_common(1)[0][0]
    exceptions = {name: rank for name, rank in ranks.items() if rank != common}
    config.update(r=common, lora_alpha=common, use_rslora=False, rank_pattern=exceptions, alpha_pattern=exceptions)
    if not same_modules:
        config.update(target_modules=sorted(ranks), layers_to_transform=None, layers_pattern=None, exclude_modules=None)
    if not extra_keys:
        config["modules_to_save"] = None
    config["inference_mode"] = True
    return config


def combine_lora(
    adapters: Sequence[LoraAdapter],
    weights: Sequence[float],
    roles: Sequence[str],
    *,
    mode: LoraMode = "concat",
    rank: int | None = None,
    compute_dtype: torch.dtype = torch.float32,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Combination:
    """``ΔW_out = Σ_i w_i ΔW_i`` per module (a module an adapter lacks has ΔW = 0).

    ``concat`` is exact with rank Σ r_i; ``svd`` is the best rank-``rank`` approximation (default: the largest
    input rank), exact when ``rank`` ≥ the rank of the sum; ``factor`` is the released code's factor-wise sum.
    """
    names = ordered_union(adapters)
    missing = _missing(adapters, roles, names)
    if mode == "factor":
        return _combine_lora_factorwise(adapters, weights, roles, names, missing, compute_dtype, extra_tensors)
    if mode == "svd" and rank is None:
        rank = max(m.rank for a in adapters for m in a.modules.values())
    modules: dict[str, LoraModule] = {}
    reports: list[ModuleReport] = []
    notes: list[str] = []
    for name in names:
        combined = _combine_lora_module(name, adapters, weights, roles, mode, rank, compute_dtype)
        if combined is None:
            notes.append(f"module {name} has weight 0 in every input that has it; left out")
            continue
        modules[name], report = combined
        reports.append(report)
    if not modules:
        raise IncompatibleAdaptersError("every module has weight 0; expected at least one non-zero weight")
    extra = extra_tensors if extra_tensors is not None else {}
    config = lora_output_config(
        adapters[0],
        {name: m.rank for name, m in modules.items()},
        same_modules=list(modules) == list(adapters[0].modules),
        extra_keys=list(extra),
    )
    return Combination(LoraAdapter(config, modules, dict(extra)), reports, missing, notes)


def _combine_lora_module(
    name: str,
    adapters: Sequence[LoraAdapter],
    weights: Sequence[float],
    roles: Sequence[str],
    mode: LoraMode,
    rank: int | None,
    compute_dtype: torch.dtype,
) -> tuple[LoraModule, ModuleReport] | None:
    """``Σ_i w_i ΔW_i`` of one module as scale-1 factors (concat, or compressed by ``svd``) and its report;
    None when every input that has the module weighs it 0."""
    present = [(a, w, role) for a, w, role in zip(adapters, weights, roles, strict=True) if name in a.modules]
    check_shapes(name, {role: a.modules[name].shape for a, _, role in present})
    if len({a.modules[name].embedding for a, _, _ in present}) > 1:
        raise IncompatibleAdaptersError(f"module {name}: an embedding in some adapters, a linear in others")
    terms = [(w * a.modules[name].scale, a.modules[name].lora_A, a.modules[name].lora_B) for a, w, _ in present]
    first = adapters[0].modules.get(name)
    exact_others = [term for (a, w, _), term in zip(present, terms, strict=True) if a is not adapters[0]]
    exact_others = [term for term in exact_others if term[0] != 0.0]
    terms = [term for term in terms if term[0] != 0.0]
    if not terms:
        return None
    lora_A, lora_B = lora_algebra.concat_factors(terms, compute_dtype)
    kept = None
    exact = first is not None and weights[0] == 1.0
    if mode == "svd":
        compressed = lora_algebra.compress_factors(lora_A, lora_B, rank)  # type: ignore[arg-type]
        lora_A, lora_B, kept = compressed.lora_A, compressed.lora_B, compressed.kept_energy
        exact = exact and compressed.rank >= sum(int(a.shape[0]) for _, a, _ in terms)
    if not (all_finite(lora_A) and all_finite(lora_B)):
        raise NumericalError(f"module {name}: the merged factors are not finite")
    out_dtype = adapters[0].dtype
    module = LoraModule(lora_A.to(out_dtype), lora_B.to(out_dtype), 1.0, present[0][0].modules[name].embedding)
    report = ModuleReport(
        name=name,
        input_ranks=tuple(a.modules[name].rank if name in a.modules else None for a in adapters),
        output_rank=int(lora_A.shape[0]),
        kept_energy=kept,
        relative_change=_relative_change(lora_A, lora_B, first, exact_others if exact else ()),
    )
    return module, report


def _combine_lora_factorwise(
    adapters: Sequence[LoraAdapter],
    weights: Sequence[float],
    roles: Sequence[str],
    names: Sequence[str],
    missing: dict[str, list[str]],
    compute_dtype: torch.dtype,
    extra_tensors: dict[str, torch.Tensor] | None,
) -> Combination:
    if missing:
        role, absent = next(iter(missing.items()))
        raise IncompatibleAdaptersError(
            f"factor mode needs the same modules in every adapter, but {role} lacks {absent[0]} "
            f"({len(absent)} module(s)); use mode / --mode concat or svd"
        )
    modules: dict[str, LoraModule] = {}
    reports: list[ModuleReport] = []
    for name in names:
        present = [a.modules[name] for a in adapters]
        check_shapes(name, {role: m.shape for m, role in zip(present, roles, strict=True)})
        ranks, scales = sorted({m.rank for m in present}), sorted({m.scale for m in present})
        if len(ranks) > 1 or len(scales) > 1:
            raise IncompatibleAdaptersError(
                f"factor mode needs equal ranks and scales, but module {name} has ranks {ranks} and scales "
                f"{scales}; use mode / --mode concat or svd"
            )
        terms = [(w, m.lora_A, m.lora_B) for w, m in zip(weights, present, strict=True)]
        lora_A, lora_B = lora_algebra.factorwise_combine(terms, compute_dtype)
        scale = present[0].scale
        modules[name] = LoraModule(
            lora_A.to(adapters[0].dtype), lora_B.to(adapters[0].dtype), scale, present[0].embedding
        )
        reports.append(
            ModuleReport(
                name=name,
                input_ranks=tuple(m.rank for m in present),
                output_rank=int(lora_A.shape[0]),
                kept_energy=None,
                relative_change=_relative_change(scale * lora_A, lora_B, present[0]),
            )
        )
    config = dict(adapters[0].config)
    config["inference_mode"] = True
    extra = extra_tensors if extra_tensors is not None else {}
    if not extra:
        config["modules_to_save"] = None
    return Combination(LoraAdapter(config, modules, dict(extra)), reports, missing, [])


def _ones_like_module(adapters: Sequence[IA3Adapter], name: str) -> IA3Module:
    template = next(a.modules[name] for a in adapters if name in a.modules)
    return IA3Module(torch.ones_like(template.vector), template.feedforward)


def ia3_vectors(
    adapters: Sequence[IA3Adapter], roles: Sequence[str], name: str, compute_dtype: torch.dtype
) -> tuple[list[torch.Tensor], bool]:
    """Module ``name``'s vector in each adapter (l = 1 where an adapter lacks it) and its feed-forward flag;
    refuses differing shapes or flags."""
    present = {role: a.modules[name] for a, role in zip(adapters, roles, strict=True) if name in a.modules}
    check_shapes(name, {role: tuple(m.vector.shape) for role, m in present.items()})
    if len({m.feedforward for m in present.values()}) > 1:
        raise IncompatibleAdaptersError(f"module {name}: feed-forward in some adapters, not in others")
    modules = [a.modules.get(name) or _ones_like_module(adapters, name) for a in adapters]
    return [m.vector.to(compute_dtype) for m in modules], modules[0].feedforward


def _relative_vector_change(out: torch.Tensor, first: torch.Tensor) -> float:
    base = float(first.double().norm())
    change = float((out.double() - first.double()).norm())
    return change / base if base > 0 else float("inf") if change > 0 else 0.0


def combine_ia3(
    adapters: Sequence[IA3Adapter],
    roles: Sequence[str],
    *,
    t: float | None = None,
    weights: Sequence[float] | None = None,
    mode: IA3Mode | IA3Rule = "multiplicative",
    min_abs: float = ia3_algebra.DEFAULT_MIN_ABS,
    clamp: bool = False,
    compute_dtype: torch.dtype = torch.float32,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> Combination:
    """(IA)³ vectors per module (an adapter lacking a module has l = 1).

    ``multiplicative``/``additive`` take (task, reference_target, reference_source) and ``t``; ``weighted`` is
    the structure-blind ``Σ_i w_i l_i``; ``deviation`` the structure-blind sum of deviations from identity
    ``1 + Σ_i w_i (l_i − 1)`` (the AriMerge baseline); ``product`` the multiplicative ``∏_i l_i^{w_i}``
    (adapters stacked on one model).
    """
    names = ordered_union(adapters)
    missing = _missing(adapters, roles, names)
    out_dtype = adapters[0].dtype
    modules: dict[str, IA3Module] = {}
    reports: list[ModuleReport] = []
    for name in names:
        vectors, feedforward = ia3_vectors(adapters, roles, name, compute_dtype)
        vector, clamped = _ia3_rule(name, vectors, roles, mode, t, weights, min_abs, clamp)
        if not all_finite(vector):
            raise NumericalError(f"module {name}: the merged (IA)³ vector is not finite")
        modules[name] = IA3Module(vector.to(out_dtype), feedforward)
        reports.append(
            ModuleReport(
                name=name,
                input_ranks=tuple(None for _ in adapters),
                output_rank=None,
                kept_energy=None,
                relative_change=_relative_vector_change(vector, vectors[0]),
                clamped=clamped,
            )
        )
    extra = extra_tensors if extra_tensors is not None else {}
    config = ia3_output_config(adapters[0], modules, extra)
    notes = []
    total_clamped = sum(r.clamped for r in reports)
    if total_clamped:
        notes.append(f"clamped {total_clamped} element(s) of {roles[2]} with |l| < {min_abs:g} to ±{min_abs:g}")
    return Combination(IA3Adapter(config, modules, dict(extra)), reports, missing, notes)


def _ia3_rule(
    name: str,
    vectors: list[torch.Tensor],
    roles: Sequence[str],
    mode: IA3Mode | IA3Rule,
    t: float | None,
    weights: Sequence[float] | None,
    min_abs: float,
    clamp: bool,
) -> tuple[torch.Tensor, int]:
    """One module's output vector under ``mode`` and the number of clamped elements.

    ``multiplicative`` and ``additive`` take ``vectors`` = (task, reference_target, reference_source) and ``t``;
    ``deviation``, ``weighted`` and ``product`` take ``weights``.
    """
    if mode in ("multiplicative", "additive"):
        if t is None or len(vectors) != 3:
            raise ValueError(f"(IA)³ mode {mode} needs t and three adapters (task, reference_target, reference_source)")
        task, target, source = vectors
        if mode == "additive":
            return ia3_algebra.additive_merge(task, target, source, t), 0
        try:
            ratio = ia3_algebra.multiplicative_merge(task, target, source, t, min_abs=min_abs, clamp=clamp)
        except NumericalError as error:
            raise NumericalError(f"{roles[2]} module {name}: {error}") from error
        return ratio.value, ratio.clamped
    if weights is None:
        raise ValueError(f"(IA)³ rule {mode} needs weights")
    if mode == "deviation":
        return ia3_algebra.deviation_sum(vectors, weights), 0
    if mode == "product":
        return ia3_algebra.weighted_product(vectors, weights), 0
    return ia3_algebra.weighted_sum(vectors, weights), 0


def ia3_output_config(
    first: IA3Adapter, modules: dict[str, IA3Module], extra: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """The task adapter's config, narrowed to the output's modules when they differ, in inference mode."""
    config = dict(first.config)
    if list(modules) != list(first.modules):
        config.update(
            target_modules=sorted(modules),
            feedforward_modules=sorted(n for n, m in modules.items() if m.feedforward),
            exclude_modules=None,
        )
    if not extra:
        config["modules_to_save"] = None
    config["inference_mode"] = True
    return config
