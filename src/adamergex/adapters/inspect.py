"""Describe an adapter: kind, base model, modules grouped by type, ranks, scales, parameter count, norms, and
whether vLLM can serve it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from adamergex.adapters.types import Adapter, LoraAdapter
from adamergex.adapters.vllm import vllm_compatibility
from adamergex.tensors import lowrank_frobenius_norm


def module_type(name: str) -> str:
    """The last component of a module name (``model.layers.3.mlp.up_proj`` → ``up_proj``)."""
    return name.rsplit(".", 1)[-1]


def describe(adapter: Adapter) -> dict[str, Any]:
    """A JSON-ready description; per module type: count, ranks, scales and mean/max ‖ΔW‖_F or l statistics;
    ``vllm``: :func:`~adamergex.adapters.vllm.vllm_compatibility`."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in adapter.modules:
        groups[module_type(name)].append(name)
    per_type: dict[str, dict[str, Any]] = {}
    for kind, names in groups.items():
        if isinstance(adapter, LoraAdapter):
            modules = [adapter.modules[n] for n in names]
            norms = [lowrank_frobenius_norm(m.scale * m.lora_A, m.lora_B) for m in modules]
            per_type[kind] = {
                "count": len(names),
                "ranks": sorted({m.rank for m in modules}),
                "scales": sorted({round(m.scale, 6) for m in modules}),
                "shape": list(modules[0].shape),
                "delta_norm_mean": sum(norms) / len(norms),
                "delta_norm_max": max(norms),
            }
        else:
            vectors = [adapter.modules[n].vector.float() for n in names]
            per_type[kind] = {
                "count": len(names),
                "feedforward": adapter.modules[names[0]].feedforward,
                "size": int(vectors[0].numel()),
                "l_min": min(float(v.min()) for v in vectors),
                "l_max": max(float(v.max()) for v in vectors),
                "l_mean": sum(float(v.mean()) for v in vectors) / len(vectors),
                "max_abs_l_minus_1": max(float((v - 1).abs().max()) for v in vectors),
            }
    return {
        "path": str(adapter.path) if adapter.path else None,
        "kind": adapter.kind,
        "base_model": adapter.base_model,
        "task_type": adapter.config.get("task_type"),
        "dtype": str(adapter.dtype).removeprefix("torch."),
        "modules": len(adapter.modules),
        "parameters": adapter.num_parameters(),
        "modules_to_save": adapter.config.get("modules_to_save"),
        "extra_tensors": sorted(adapter.extra_tensors),
        "by_type": per_type,
        "vllm": vllm_compatibility(adapter).to_json(),
    }
