"""Can vLLM's multi-LoRA serving load an adapter, and with which ``max_lora_rank``?

The rules follow vLLM's own loading code (``vllm/lora/peft_helper.py``, ``vllm/lora/lora_model.py``,
``vllm/config/lora.py``; docs/merging.md says which sources were read):

- vLLM serves LoRA only; an (IA)³ adapter has no vLLM form.
- It refuses DoRA, trained biases (``bias`` other than ``"none"``, ``lora_bias``), ``modules_to_save`` (full module
  copies), inits that change the base weights (PiSSA, OLoRA, CorDA, LoftQ), ``layer_replication``, LoRA on
  parameters (``target_parameters``) and tensors that are not LoRA factors (it skips the base embedding copies
  PEFT saves with embedding LoRA).
- The engine is started with one ``max_lora_rank`` from a fixed list; every adapter's rank must fit under it.
- Releases read only ``r`` and ``lora_alpha`` from the config and scale **every** module by ``lora_alpha / r``
  (``/ sqrt(r)`` with ``use_rslora``), taking each module's rank from its tensors; newer sources also read
  ``rank_pattern`` / ``alpha_pattern``. An adapter loads the same in both exactly when each module's PEFT scale
  equals that one config-wide scale. adamergex's merged outputs are written with scale 1 in every module
  (``alpha = r`` per module), so per-module ranks in ``rank_pattern`` are harmless there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from adamergex.adapters.types import Adapter, IA3Adapter, LoraAdapter, lora_scale

#: The values vLLM accepts for ``max_lora_rank`` (``MaxLoRARanks`` in ``vllm/config/lora.py``).
VLLM_MAX_LORA_RANKS: tuple[int, ...] = (1, 8, 16, 32, 64, 128, 256, 320, 512)
#: The projections vLLM's decoder-model implementations take LoRA on (q, k, v and gate, up are packed there).
VLLM_PROJECTIONS = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
#: Base-weight-changing LoRA inits vLLM refuses (what PEFT writes as ``init_lora_weights``, lower-cased prefixes).
_BASE_CHANGING_INITS = ("pissa", "olora", "corda", "loftq")
#: Base-weight copies PEFT saves when embeddings are LoRA targets; vLLM skips them when loading.
_BASE_EMBEDDING_SUFFIXES = (".embed_tokens.base_layer.weight", ".lm_head.base_layer.weight")
_SCALE_TOLERANCE = 1e-6
_FOLD_SCALES = "adamergex combine --adapter DIR --weight 1 --out NEW writes the same ΔW with scale 1 in every module"


@dataclass(frozen=True)
class VllmCompatibility:
    """Whether vLLM loads an adapter as PEFT does, the ``max_lora_rank`` to serve it with, and why not.

    ``problems`` make it incompatible (vLLM refuses it or would compute another ΔW); ``notes`` are things to
    check against the served model, which this check cannot see.
    """

    compatible: bool
    largest_rank: int | None
    max_lora_rank: int | None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "compatible": self.compatible,
            "largest_rank": self.largest_rank,
            "max_lora_rank": self.max_lora_rank,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def smallest_max_lora_rank(rank: int) -> int | None:
    """The smallest value vLLM accepts for ``max_lora_rank`` that is at least ``rank``; None above the largest."""
    return next((allowed for allowed in VLLM_MAX_LORA_RANKS if allowed >= rank), None)


def _refused_features(config: dict[str, Any]) -> list[str]:
    """The config's features vLLM refuses to load, one message each."""
    problems = []
    if config.get("use_dora"):
        problems.append("DoRA (use_dora) is not supported by vLLM")
    if config.get("bias", "none") != "none" or config.get("lora_bias"):
        problems.append("vLLM loads no trained biases (bias / lora_bias)")
    if config.get("modules_to_save"):
        problems.append(
            f"vLLM refuses full module copies (modules_to_save: {config['modules_to_save']}); "
            "merge with --modules-to-save refuse"
        )
    init = config.get("init_lora_weights")
    if isinstance(init, str) and init.lower().startswith(_BASE_CHANGING_INITS):
        problems.append(f"init_lora_weights={init!r} changes the base weights, which vLLM does not do")
    if config.get("layer_replication"):
        problems.append("vLLM does not support layer_replication")
    if config.get("target_parameters"):
        problems.append("vLLM loads LoRA on modules, not on parameters (target_parameters)")
    return problems


def _scale_mismatches(adapter: LoraAdapter) -> list[str]:
    """Modules whose PEFT scale differs from the one config-wide scale that vLLM releases apply to all."""
    config = adapter.config
    uniform = lora_scale(int(config["r"]), float(config["lora_alpha"]), bool(config.get("use_rslora", False)))
    mismatched = [
        (name, module.scale)
        for name, module in adapter.modules.items()
        if not math.isclose(module.scale, uniform, rel_tol=_SCALE_TOLERANCE)
    ]
    if not mismatched:
        return []
    name, scale = mismatched[0]
    return [
        f"{len(mismatched)} module(s) have a scale other than lora_alpha / r = {uniform:g} (e.g. {name}: {scale:g}, "
        "from rank_pattern / alpha_pattern), which vLLM releases apply to every module; " + _FOLD_SCALES
    ]


def _module_notes(adapter: LoraAdapter) -> list[str]:
    """What to check against the served model: embedding LoRA, and module types outside the usual projections."""
    embeddings = sorted(name for name, module in adapter.modules.items() if module.embedding)
    others = sorted({name.rsplit(".", 1)[-1] for name in adapter.modules if name not in embeddings} - VLLM_PROJECTIONS)
    notes = []
    copies = [key for key in adapter.extra_tensors if key.endswith(_BASE_EMBEDDING_SUFFIXES)]
    if copies:
        notes.append(
            f"vLLM skips the saved base embedding weights ({copies[0]}) and uses the served model's own; the same "
            "when they equal the base model's (a resized vocabulary does not)"
        )
    if embeddings:
        notes.append(
            f"LoRA on embeddings ({embeddings[0]}{', ...' if len(embeddings) > 1 else ''}) loads only where vLLM's "
            "implementation of the model supports embedding LoRA"
        )
    if others:
        notes.append(
            f"module type(s) {', '.join(others)} are not among the usual projections; vLLM refuses modules its "
            "implementation of the model does not list"
        )
    return notes


def vllm_compatibility(adapter: Adapter) -> VllmCompatibility:
    """Check ``adapter`` against vLLM's LoRA loading rules (module docstring)."""
    if isinstance(adapter, IA3Adapter):
        return VllmCompatibility(
            compatible=False,
            largest_rank=None,
            max_lora_rank=None,
            problems=(
                "vLLM serves LoRA adapters only; fold the (IA)³ vectors into the base weights (scale W's rows, or "
                "its columns for feed-forward modules) and serve the result as a full model",
            ),
        )
    config = adapter.config
    declared = [int(config["r"]), *(int(rank) for rank in (config.get("rank_pattern") or {}).values())]
    largest = max([module.rank for module in adapter.modules.values()] + declared)
    problems = _refused_features(config)
    foreign = [key for key in adapter.extra_tensors if not key.endswith(_BASE_EMBEDDING_SUFFIXES)]
    if foreign and not config.get("modules_to_save"):
        problems.append(f"the weights hold tensors that are not LoRA factors, which vLLM refuses (e.g. {foreign[0]})")
    problems += _scale_mismatches(adapter)
    max_lora_rank = smallest_max_lora_rank(largest)
    if max_lora_rank is None:
        problems.append(f"rank {largest} is above vLLM's largest max_lora_rank, {VLLM_MAX_LORA_RANKS[-1]}")
    return VllmCompatibility(
        compatible=not problems,
        largest_rank=largest,
        max_lora_rank=max_lora_rank,
        problems=tuple(problems),
        notes=tuple(_module_notes(adapter)),
    )
