"""The public merge API: ``merge`` (AdaMergeX) and ``combine`` (weighted sums, e.g. baselines).

Both read adapter folders (or take in-memory adapters), combine them with :mod:`adamergex.merging.combination`,
optionally write the result atomically with a provenance sidecar, and return a :class:`MergeSummary`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

from adamergex.adapters.io import adapter_fingerprint, read_adapter, write_adapter
from adamergex.adapters.types import Adapter, IA3Adapter, LoraAdapter
from adamergex.errors import AdamergexError
from adamergex.merging.combination import (
    EXACT_LORA_MODES,
    IA3_MODES,
    IA3_RULES,
    LORA_MODES,
    Combination,
    ExactLoraMode,
    IA3Mode,
    IA3Rule,
    LoraMode,
    ModuleReport,
    ModulesToSave,
    check_compatible,
    combine_ia3,
    combine_lora,
    resolve_modules_to_save,
)
from adamergex.merging.ia3 import DEFAULT_MIN_ABS
from adamergex.tensors import dtype_by_name

AdapterLike = str | Path | Adapter
#: The arithmetic dtypes ``compute_dtype`` is meant for (the CLI offers these; float64 for exactness).
COMPUTE_DTYPES: tuple[str, ...] = ("float32", "float64")


@dataclass
class MergeSummary:
    """What a merge or combination did; ``adapter`` is the in-memory result (also when nothing was written)."""

    kind: str
    mode: str
    weights: list[float]
    roles: list[str]
    inputs: list[str | None]
    modules: list[ModuleReport]
    missing: dict[str, list[str]]
    notes: list[str]
    elapsed_s: float
    adapter: Adapter = field(repr=False)
    t: float | None = None
    out: Path | None = None

    @property
    def output_ranks(self) -> list[int]:
        return [m.output_rank for m in self.modules if m.output_rank is not None]

    @property
    def min_kept_energy(self) -> float | None:
        kept = [m.kept_energy for m in self.modules if m.kept_energy is not None]
        return min(kept) if kept else None

    @property
    def max_relative_change(self) -> float:
        return max(m.relative_change for m in self.modules)

    @property
    def clamped(self) -> int:
        return sum(m.clamped for m in self.modules)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (the in-memory adapter left out)."""
        return {
            "kind": self.kind,
            "mode": self.mode,
            "t": self.t,
            "weights": self.weights,
            "roles": self.roles,
            "inputs": self.inputs,
            "out": str(self.out) if self.out else None,
            "elapsed_s": round(self.elapsed_s, 4),
            "modules": len(self.modules),
            "output_rank": {"min": min(self.output_ranks), "max": max(self.output_ranks)}
            if self.output_ranks
            else None,
            "min_kept_energy": self.min_kept_energy,
            "max_relative_change": self.max_relative_change,
            "clamped": self.clamped,
            "missing": self.missing,
            "notes": self.notes,
            "per_module": [
                {
                    "name": m.name,
                    "input_ranks": list(m.input_ranks),
                    "output_rank": m.output_rank,
                    "kept_energy": m.kept_energy,
                    "relative_change": m.relative_change,
                    "clamped": m.clamped,
                }
                for m in self.modules
            ],
        }


def _load(adapter: AdapterLike) -> Adapter:
    return adapter if isinstance(adapter, LoraAdapter | IA3Adapter) else read_adapter(adapter)


def _resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    return dtype_by_name(dtype)


def input_record(adapter: Adapter, role: str) -> dict[str, Any]:
    """An input as provenance names it: its role, resolved path and fingerprint (None for in-memory ones)."""
    if adapter.path is None:
        return {"role": role, "path": None, "fingerprint": None}
    return {"role": role, "path": str(adapter.path.resolve()), "fingerprint": adapter_fingerprint(adapter.path)}


@dataclass
class _Prepared:
    adapters: list[Adapter]
    notes: list[str]
    extra: dict[str, torch.Tensor]
    out_dtype: torch.dtype | None
    work_dtype: torch.dtype
    settings: dict[str, Any]


def _prepare(
    adapters: Sequence[AdapterLike],
    roles: Sequence[str],
    *,
    modules_to_save: ModulesToSave,
    allow_base_mismatch: bool,
    dtype: str | torch.dtype | None,
    compute_dtype: str | torch.dtype,
    rank: int | None,
) -> _Prepared:
    """Load and check the inputs, resolve dtypes, and record the settings shared by merge and combine."""
    loaded = [_load(a) for a in adapters]
    notes = check_compatible(loaded, roles, allow_base_mismatch=allow_base_mismatch)
    extra, extra_notes = resolve_modules_to_save(loaded, roles, modules_to_save)
    out_dtype, work_dtype = _resolve_dtype(dtype), _resolve_dtype(compute_dtype)
    settings = {
        "rank": rank,
        "dtype": str(out_dtype) if out_dtype else None,
        "compute_dtype": str(work_dtype),
        "modules_to_save": modules_to_save,
        "allow_base_mismatch": allow_base_mismatch,
    }
    return _Prepared(loaded, notes + extra_notes, extra, out_dtype, work_dtype, settings)  # type: ignore[arg-type]


def _check_lora_mode(mode: str, modes: Sequence[str], rank: int | None) -> None:
    if mode not in modes:
        raise AdamergexError(f"mode {mode!r} is not a LoRA merge mode; expected one of {', '.join(modes)}")
    if mode != "svd" and rank is not None:
        raise AdamergexError(f"rank / --rank applies to mode svd only, not {mode!r}")


def _finish(
    combination: Combination,
    adapters: Sequence[Adapter],
    roles: Sequence[str],
    weights: Sequence[float],
    *,
    method: str,
    mode: str,
    t: float | None,
    settings: dict[str, Any],
    notes: list[str],
    out: str | Path | None,
    force: bool,
    dtype: torch.dtype | None,
    started: float,
) -> MergeSummary:
    summary = MergeSummary(
        kind=adapters[0].kind,
        mode=mode,
        weights=list(weights),
        roles=list(roles),
        inputs=[str(a.path) if a.path else None for a in adapters],
        modules=combination.modules,
        missing=combination.missing,
        notes=notes + combination.notes,
        elapsed_s=0.0,
        adapter=combination.adapter,
        t=t,
    )
    if dtype is not None:
        summary.adapter = combination.adapter.to(dtype)
    if out is not None:
        provenance = {
            "tool": "adamergex",
            "method": method,
            "kind": summary.kind,
            "mode": mode,
            "t": t,
            "weights": list(weights),
            "inputs": [input_record(a, role) for a, role in zip(adapters, roles, strict=True)],
            "settings": settings,
            "summary": {k: v for k, v in summary.to_dict().items() if k != "per_module"},
        }
        summary.out = write_adapter(summary.adapter, out, force=force, provenance=provenance)
    summary.elapsed_s = time.perf_counter() - started
    return summary


def merge(
    task: AdapterLike,
    reference_target: AdapterLike,
    reference_source: AdapterLike,
    t: float = 1.0,
    out: str | Path | None = None,
    *,
    mode: LoraMode | IA3Mode | None = None,
    rank: int | None = None,
    dtype: str | torch.dtype | None = None,
    compute_dtype: str | torch.dtype = torch.float32,
    modules_to_save: ModulesToSave = "refuse",
    allow_base_mismatch: bool = False,
    min_abs: float = DEFAULT_MIN_ABS,
    clamp: bool = False,
    force: bool = False,
) -> MergeSummary:
    """AdaMergeX: ``A(task, tgt) = T ⊕ t · (Rt ⊖ Rs)`` in the way the adapter acts on the model.

    LoRA (``mode`` ``concat`` — default, exact, rank Σr — ``svd`` — best rank-``rank`` — or ``factor``, the
    released code's factor-wise rule): ``ΔW_out = ΔW_T + t · (ΔW_Rt − ΔW_Rs)``.
    (IA)³ (``mode`` ``multiplicative`` — default — or ``additive``, the cross ablation):
    ``l_out = l_T ⊙ (t · (l_Rt ⊘ l_Rs − 1) + 1)``; a |l_Rs| below ``min_abs`` is an error unless ``clamp``.

    Args:
        task, reference_target, reference_source: adapter folders or in-memory adapters (T, Rt, Rs).
        t: the coefficient of the language difference; 0 gives back the task adapter.
        out: folder to write (atomically, with a provenance sidecar); ``None`` keeps the result in memory.
        rank: output rank for ``svd`` (default: the largest input rank).
        dtype: output dtype (default: the task adapter's); ``compute_dtype``: dtype of the arithmetic.
        modules_to_save: ``refuse`` (default) or ``task`` (copy the task adapter's full module copies).
        allow_base_mismatch: accept different ``base_model_name_or_path`` (shapes are still checked).

    Returns:
        A :class:`MergeSummary` whose ``adapter`` is the merged adapter.
    """
    started = time.perf_counter()
    roles = ["task", "reference_target", "reference_source"]
    prepared = _prepare(
        [task, reference_target, reference_source],
        roles,
        modules_to_save=modules_to_save,
        allow_base_mismatch=allow_base_mismatch,
        dtype=dtype,
        compute_dtype=compute_dtype,
        rank=rank,
    )
    weights = [1.0, float(t), -float(t)]
    if prepared.adapters[0].kind == "lora":
        mode = mode or "concat"
        _check_lora_mode(mode, LORA_MODES, rank)
        combination = combine_lora(
            cast("list[LoraAdapter]", prepared.adapters),  # one kind: check_compatible refused a mix
            weights,
            roles,
            mode=cast("LoraMode", mode),  # checked just above
            rank=rank,
            compute_dtype=prepared.work_dtype,
            extra_tensors=prepared.extra,
        )
    else:
        mode = mode or "multiplicative"
        if mode not in IA3_MODES:
            raise AdamergexError(f"mode {mode!r} is not an (IA)³ merge mode; expected one of {', '.join(IA3_MODES)}")
        if rank is not None:
            raise AdamergexError("rank / --rank applies to LoRA svd merges only, not to (IA)³")
        combination = combine_ia3(
            cast("list[IA3Adapter]", prepared.adapters),  # one kind: check_compatible refused a mix
            roles,
            t=float(t),
            mode=cast("IA3Mode", mode),  # checked just above
            min_abs=min_abs,
            clamp=clamp,
            compute_dtype=prepared.work_dtype,
            extra_tensors=prepared.extra,
        )
    prepared.settings.update(min_abs=min_abs, clamp=clamp)
    return _finish(
        combination,
        prepared.adapters,
        roles,
        weights,
        method="adamergex",
        mode=mode,
        t=float(t),
        settings=prepared.settings,
        notes=prepared.notes,
        out=out,
        force=force,
        dtype=prepared.out_dtype,
        started=started,
    )


def combine(
    adapters: Sequence[AdapterLike],
    weights: Sequence[float],
    out: str | Path | None = None,
    *,
    mode: ExactLoraMode = "concat",
    rank: int | None = None,
    dtype: str | torch.dtype | None = None,
    compute_dtype: str | torch.dtype = torch.float32,
    modules_to_save: ModulesToSave = "refuse",
    allow_base_mismatch: bool = False,
    force: bool = False,
    ia3_rule: IA3Rule = "weighted",
) -> MergeSummary:
    """A weighted combination ``Σ_i w_i · adapter_i``, e.g. the AriMerge baseline ``T + Rt``.

    LoRA: exact on ΔW (``ΔW_out = Σ_i w_i ΔW_i``; ``concat`` or ``svd`` as in :func:`merge`). (IA)³: the
    structure-blind ``l_out = Σ_i w_i l_i`` (an adapter lacking a module counts as l = 1), or with
    ``ia3_rule="deviation"`` the sum of deviations from identity ``l_out = 1 + Σ_i w_i (l_i − 1)`` (AriMerge),
    or with ``ia3_rule="product"`` the multiplicative ``l_out = ∏_i l_i^{w_i}`` (stacked adapters).
    The first adapter plays the task adapter's part (its config, its ``modules_to_save`` under
    ``modules_to_save="task"``).
    """
    started = time.perf_counter()
    if not adapters:
        raise AdamergexError("combine needs at least one adapter")
    if len(adapters) != len(weights):
        raise AdamergexError(f"got {len(adapters)} adapters but {len(weights)} weights; expected one weight each")
    roles = [f"adapter[{i}]" for i in range(len(adapters))]
    prepared = _prepare(
        adapters,
        roles,
        modules_to_save=modules_to_save,
        allow_base_mismatch=allow_base_mismatch,
        dtype=dtype,
        compute_dtype=compute_dtype,
        rank=rank,
    )
    weights = [float(w) for w in weights]
    if prepared.adapters[0].kind == "lora":
        _check_lora_mode(mode, EXACT_LORA_MODES, rank)
        combination = combine_lora(
            cast("list[LoraAdapter]", prepared.adapters),  # one kind: check_compatible refused a mix
            weights,
            roles,
            mode=cast("LoraMode", mode),  # checked just above
            rank=rank,
            compute_dtype=prepared.work_dtype,
            extra_tensors=prepared.extra,
        )
    else:
        if ia3_rule not in IA3_RULES:
            raise AdamergexError(f"(IA)³ rule {ia3_rule!r} is unknown; expected one of {', '.join(IA3_RULES)}")
        mode = ia3_rule  # type: ignore[assignment]
        combination = combine_ia3(
            cast("list[IA3Adapter]", prepared.adapters),  # one kind: check_compatible refused a mix
            roles,
            weights=weights,
            mode=ia3_rule,
            compute_dtype=prepared.work_dtype,
            extra_tensors=prepared.extra,
        )
    return _finish(
        combination,
        prepared.adapters,
        roles,
        weights,
        method="combine",
        mode=mode,
        t=None,
        settings=prepared.settings,
        notes=prepared.notes,
        out=out,
        force=force,
        dtype=prepared.out_dtype,
        started=started,
    )
