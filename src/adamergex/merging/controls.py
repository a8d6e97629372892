"""The random-direction control of the dose study: a reference gap of the true gap's size in a random direction.

AdaMergeX moves the task adapter along the reference gap ``Rt ⊖ Rs``. The control moves it by the same amount
along a random direction, so a gain that survives the swap is not evidence about languages. The control is
returned as a pair ``(R̃t, R̃s)`` with ``R̃t ⊖ R̃s`` the random gap, so every merge method (``merge`` with its
modes, the pipeline's methods) applies it unchanged: ``T ⊕ t · (R̃t ⊖ R̃s)``.

**LoRA** (additive on ``ΔW = s·B·A``). Per module the true gap is ``D = ΔW_Rt − ΔW_Rs`` (ΔW = 0 where an adapter
lacks the module). The control is ``G = B̃ Ã`` with Gaussian factors of width ``k = rank(D)`` (the numerical rank
of D, from the singular values of its factored form — at most ``r_Rt + r_Rs`` and ``min(out, in)``), rescaled so
``‖G‖_F = ‖D‖_F``: the same norm and the same (exact, low) rank, in a random direction. Only the norm and rank
are matched; G's singular values are those of a product of Gaussian factors. ``R̃t`` holds G (scale 1) and
``R̃s`` zero factors (ΔW = 0, LoRA's identity). A module with ``D = 0`` is left out of both.

**(IA)³** (multiplicative). The merge is ``l_out = l_T ⊙ (t · (ρ − 1) + 1)`` with ``ρ = l_Rt ⊘ l_Rs``: at every t
it multiplies ``l_T`` by ``1 + t·d`` with ``d = ρ − 1``, so the quantity the merge uses is ``d``, linearly in t
(it is *not* ``ρ^t``). The control draws a random unit direction ``u`` in log space and sets ``ρ̃ = exp(c·u)``:
positive like every scale ratio, and random in the geometry where multiplicative updates compose. With
``ia3_match="ratio"`` (the default) ``c ≥ 0`` solves ``‖exp(c·u) − 1‖ = ‖ρ − 1‖``, so the control's ``d̃`` has the
true ``d``'s norm and the merge moves ``l_T`` by the same relative amount at every t. With ``ia3_match="log"``
``c = ‖log ρ‖`` (the norm matched in log space, as issue 19 first phrased it); the two agree to first order when
ρ is near 1, and the ratio match differs from it by the convexity of exp (``exp(g) − 1`` is longer on the
positive side than on the negative). ``R̃t`` holds ``ρ̃`` and ``R̃s`` all-ones vectors, so the merge's
``l_R̃t ⊘ l_R̃s − 1`` is exactly ``d̃``.

Deterministic: module ``name``'s draw comes from a generator seeded by ``sha256(f"{seed}:{name}")``, so it does
not depend on which other modules the adapters hold or on the process.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, cast, get_args

import torch

from adamergex.adapters.io import read_adapter, write_adapter
from adamergex.adapters.types import Adapter, IA3Adapter, IA3Module, LoraAdapter, LoraModule
from adamergex.errors import IncompatibleAdaptersError, NumericalError
from adamergex.merging import ia3 as ia3_algebra
from adamergex.merging import lora as lora_algebra
from adamergex.merging.api import input_record
from adamergex.merging.combination import (
    check_compatible,
    check_shapes,
    ia3_output_config,
    ia3_vectors,
    lora_output_config,
    ordered_union,
    resolve_modules_to_save,
)
from adamergex.tensors import lowrank_frobenius_norm, lowrank_inner

#: What the (IA)³ control's norm matches: ``‖ρ̃ − 1‖ = ‖ρ − 1‖`` (the merge's update) or ``‖log ρ̃‖ = ‖log ρ‖``.
IA3Match = Literal["ratio", "log"]
IA3_MATCHES: tuple[str, ...] = get_args(IA3Match)
_ROLES = ("reference_target", "reference_source")
_BISECTION_STEPS = 200


@dataclass(frozen=True)
class ControlModule:
    """One module of a control: the gap's rank (LoRA; None for (IA)³), the matched norm, and the cosine between
    the control and the true gap in the matched quantity (ΔW for LoRA, ``ρ − 1`` or ``log ρ`` for (IA)³)."""

    name: str
    rank: int | None
    gap_norm: float
    cosine: float


@dataclass
class RandomDirection:
    """A random-direction control as a reference pair: ``R̃t ⊖ R̃s`` is the random gap, ``R̃s`` the identity."""

    reference_target: Adapter
    reference_source: Adapter
    modules: list[ControlModule]
    seed: int
    ia3_match: IA3Match | None = None


def module_generator(seed: int, name: str) -> torch.Generator:
    """A CPU generator for module ``name`` under ``seed``: ``sha256(f"{seed}:{name}")``'s first 63 bits."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") >> 1)


def numerical_rank(singular_values: torch.Tensor, shape: tuple[int, int], scale: float) -> int:
    """How many singular values exceed ``scale · max(shape) · ε``.

    ``scale`` is the size of the inputs the matrix was computed from (at least σ_max): a difference of nearly
    equal products carries rounding of the inputs' size, so a tolerance relative to the result alone would
    count that rounding as rank (``torch.linalg.matrix_rank`` uses ``σ_max · max(shape) · ε``).
    """
    if singular_values.numel() == 0:
        return 0
    scale = max(scale, float(singular_values.max()))
    return int((singular_values > scale * max(shape) * torch.finfo(singular_values.dtype).eps).sum())


def random_lowrank_like(
    terms: Sequence[lora_algebra.Term], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float] | None:
    """Gaussian factors ``(Ã, B̃)`` with the rank and Frobenius norm of ``D = Σ_i c_i B_i A_i``, and ``‖D‖_F``.

    D is never formed: its singular values come from its factored form (:func:`~adamergex.merging.lora.
    compress_factors`), which gives the rank (:func:`numerical_rank`, against the terms' own norms) and
    ``‖D‖_F = √Σσ²`` without the cancellation of a Gram-matrix norm. Gaussian factors of width
    ``k ≤ min(out, in)`` have a product of rank k almost surely; both are scaled by ``√(‖D‖_F / ‖B̃ Ã‖_F)``.
    Everything in float64; None when D = 0.
    """
    lora_A, lora_B = lora_algebra.concat_factors(terms, torch.float64)
    shape = (int(lora_B.shape[0]), int(lora_A.shape[1]))
    singular_values = lora_algebra.compress_factors(lora_A, lora_B, 1).singular_values
    scale = max(lowrank_frobenius_norm(c * a, b) for c, a, b in terms)
    rank = numerical_rank(singular_values, shape, scale)
    if rank == 0:
        return None
    norm = float(torch.linalg.vector_norm(singular_values))
    random_A = torch.randn((rank, shape[1]), generator=generator, dtype=torch.float64)
    random_B = torch.randn((shape[0], rank), generator=generator, dtype=torch.float64)
    factor = math.sqrt(norm / lowrank_frobenius_norm(random_A, random_B))
    return random_A * factor, random_B * factor, norm


def log_scale_for_ratio_norm(direction: torch.Tensor, target: float) -> float:
    """The ``c ≥ 0`` with ``‖exp(c·u) − 1‖ = target`` for a direction ``u``, by bisection in float64.

    ``c ↦ ‖exp(c·u) − 1‖`` is 0 at 0 and increasing (each term ``(e^{c u_i} − 1)²`` grows with c), unbounded
    when some ``u_i > 0``; the caller ensures ``target`` is reachable.
    """
    u = direction.double()

    def norm(c: float) -> float:
        return float(torch.linalg.vector_norm(torch.expm1(c * u)))

    if target <= 0.0:
        return 0.0
    low, high = 0.0, 1.0
    while norm(high) < target:
        low, high = high, 2.0 * high
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        low, high = (middle, high) if norm(middle) < target else (low, middle)
    return 0.5 * (low + high)


def random_log_ratio(ratio: torch.Tensor, generator: torch.Generator, match: IA3Match) -> torch.Tensor:
    """``ρ̃ = exp(c·u)`` for a Gaussian unit direction ``u`` (float64), with ``‖ρ̃ − 1‖ = ‖ρ − 1‖`` (``ratio``)
    or ``‖log ρ̃‖ = ‖log ρ‖`` (``log``; every ρ must be positive)."""
    ratio = ratio.double()
    u = torch.randn(ratio.shape, generator=generator, dtype=torch.float64)
    u = u / torch.linalg.vector_norm(u)
    if match == "log":
        if bool((ratio <= 0).any()):
            raise NumericalError("a ratio l_Rt ⊘ l_Rs is not positive; its logarithm is undefined (use ratio match)")
        return torch.exp(float(torch.linalg.vector_norm(torch.log(ratio))) * u)
    target = float(torch.linalg.vector_norm(ratio - 1.0))
    if not bool((u > 0).any()) and target >= math.sqrt(float((u < 0).sum())):
        u = -u  # exp(c·u) − 1 stays inside (−1, 0] when every u_i ≤ 0: flip so the target is reachable
    return torch.exp(log_scale_for_ratio_norm(u, target) * u)


def _cosine(inner: float, norm_a: float, norm_b: float) -> float:
    return inner / (norm_a * norm_b) if norm_a > 0 and norm_b > 0 else 0.0


def _lora_gap_terms(adapters: list[LoraAdapter], name: str) -> tuple[list[lora_algebra.Term], bool]:
    """``ΔW_Rt − ΔW_Rs`` of module ``name`` as terms ``(±s, A, B)``, and its embedding flag."""
    signed = zip(adapters, (1.0, -1.0), _ROLES, strict=True)
    present = [(a.modules[name], sign, role) for a, sign, role in signed if name in a.modules]
    check_shapes(name, {role: module.shape for module, _, role in present})
    embedding = {module.embedding for module, _, _ in present}
    if len(embedding) > 1:
        raise IncompatibleAdaptersError(f"module {name}: an embedding in one reference adapter, a linear in the other")
    terms = [(sign * module.scale, module.lora_A.double(), module.lora_B.double()) for module, sign, _ in present]
    return terms, embedding.pop()


def _lora_control(target: LoraAdapter, source: LoraAdapter, seed: int) -> RandomDirection:
    adapters = [target, source]
    modules: dict[str, LoraModule] = {}
    identity: dict[str, LoraModule] = {}
    reports: list[ControlModule] = []
    for name in ordered_union(adapters):
        terms, embedding = _lora_gap_terms(adapters, name)
        drawn = random_lowrank_like(terms, module_generator(seed, name))
        if drawn is None:
            continue
        random_A, random_B, norm = drawn
        modules[name] = LoraModule(random_A.to(target.dtype), random_B.to(target.dtype), 1.0, embedding)
        zero = torch.zeros((), dtype=target.dtype)
        identity[name] = LoraModule(
            zero.expand(1, random_A.shape[1]).clone(), zero.expand(random_B.shape[0], 1).clone(), 1.0, embedding
        )
        inner = sum(c * lowrank_inner(random_A, random_B, a, b) for c, a, b in terms)
        control_norm = lowrank_frobenius_norm(random_A, random_B)
        reports.append(ControlModule(name, int(random_A.shape[0]), norm, _cosine(inner, norm, control_norm)))
    if not modules:
        raise NumericalError("reference_target and reference_source have equal ΔW in every module; the gap is zero")
    same = list(modules) == list(target.modules)
    config = lora_output_config(target, {n: m.rank for n, m in modules.items()}, same, [])
    identity_config = lora_output_config(target, dict.fromkeys(identity, 1), same, [])
    return RandomDirection(LoraAdapter(config, modules), LoraAdapter(identity_config, identity), reports, seed)


def _ia3_control(target: IA3Adapter, source: IA3Adapter, seed: int, match: IA3Match) -> RandomDirection:
    adapters = [target, source]
    modules: dict[str, IA3Module] = {}
    identity: dict[str, IA3Module] = {}
    reports: list[ControlModule] = []
    for name in ordered_union(adapters):
        (l_target, l_source), feedforward = ia3_vectors(adapters, _ROLES, name, torch.float64)
        try:
            ratio = ia3_algebra.guarded_ratio(l_target, l_source).value
            control = random_log_ratio(ratio, module_generator(seed, name), match)
        except NumericalError as error:
            raise NumericalError(f"reference_source module {name}: {error}") from error
        true, drawn = (torch.log(ratio), torch.log(control)) if match == "log" else (ratio - 1.0, control - 1.0)
        norm = float(torch.linalg.vector_norm(true))
        inner = float((true * drawn).sum())
        reports.append(ControlModule(name, None, norm, _cosine(inner, norm, float(torch.linalg.vector_norm(drawn)))))
        modules[name] = IA3Module(control.to(target.dtype), feedforward)
        identity[name] = IA3Module(torch.ones_like(modules[name].vector), feedforward)
    return RandomDirection(
        IA3Adapter(ia3_output_config(target, modules, {}), modules),
        IA3Adapter(ia3_output_config(target, identity, {}), identity),
        reports,
        seed,
        match,
    )


def random_direction_reference(
    reference_target: Adapter,
    reference_source: Adapter,
    seed: int,
    *,
    ia3_match: IA3Match = "ratio",
    allow_base_mismatch: bool = False,
) -> RandomDirection:
    """The random-direction control of ``Rt ⊖ Rs`` as a pair ``(R̃t, R̃s)`` (see the module docstring).

    Args:
        reference_target, reference_source: the reference adapters (Rt, Rs) whose gap sets each module's size.
        seed: the control's seed; the same seed gives the same pair, bit for bit.
        ia3_match: for (IA)³, ``ratio`` (``‖ρ̃ − 1‖ = ‖ρ − 1‖``, what the merge applies) or ``log``.
        allow_base_mismatch: accept different ``base_model_name_or_path`` (shapes are still checked).

    Returns:
        A :class:`RandomDirection`: the two adapters (in memory, Rt's dtype; write them with
        :func:`~adamergex.adapters.io.write_adapter`) and a report per module.
    """
    if ia3_match not in IA3_MATCHES:
        raise ValueError(f"ia3_match must be one of {', '.join(IA3_MATCHES)}, got {ia3_match!r}")
    adapters = [reference_target, reference_source]
    check_compatible(adapters, _ROLES, allow_base_mismatch=allow_base_mismatch)
    resolve_modules_to_save(adapters, _ROLES, "refuse")
    if isinstance(reference_target, LoraAdapter):
        return _lora_control(reference_target, cast("LoraAdapter", reference_source), seed)
    return _ia3_control(reference_target, cast("IA3Adapter", reference_source), seed, ia3_match)


def write_random_direction(
    reference_target: Adapter | str | Path,
    reference_source: Adapter | str | Path,
    seed: int,
    out_target: str | Path,
    out_source: str | Path,
    *,
    ia3_match: IA3Match = "ratio",
    force: bool = False,
) -> RandomDirection:
    """:func:`random_direction_reference` written as two PEFT folders (R̃t to ``out_target``, R̃s to
    ``out_source``), each atomically with a provenance sidecar naming the inputs (paths, fingerprints), the seed,
    the match and the per-module report."""
    adapters = [a if not isinstance(a, str | Path) else read_adapter(a) for a in (reference_target, reference_source)]
    control = random_direction_reference(adapters[0], adapters[1], seed, ia3_match=ia3_match)
    record = {
        "tool": "adamergex",
        "method": "random-direction",
        "kind": adapters[0].kind,
        "seed": seed,
        "ia3_match": control.ia3_match,
        "inputs": [input_record(adapter, role) for adapter, role in zip(adapters, _ROLES, strict=True)],
        "modules": [asdict(module) for module in control.modules],
    }
    for adapter, out, role in zip(
        (control.reference_target, control.reference_source), (out_target, out_source), _ROLES, strict=True
    ):
        write_adapter(adapter, out, force=force, provenance={**record, "role": role})
    return control
