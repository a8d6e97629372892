"""Whether an adapter folder fits a base model: the base model it records, its kind, and each module it adapts
(present in the model, with the model's shapes). The one place that checks a user's own adapter before it is
used, e.g. as the task adapter T instead of training one.

The base model is duck-typed so this layer needs no model loader: a loaded model (an object with ``model``,
``name``, ``fingerprint`` and ``path``, such as :class:`adamergex.models.LoadedModel`) or a bare
``torch.nn.Module`` (a transformers model; its ``name_or_path`` is its name).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from adamergex.adapters.config import parse_adapter_config
from adamergex.adapters.io import adapter_fingerprint, read_adapter
from adamergex.adapters.types import KIND_NAMES, Adapter, LoraAdapter
from adamergex.errors import AdamergexError, IncompatibleAdaptersError
from adamergex.provenance import read_provenance

#: how many mismatched modules a message names before it counts the rest.
_NAMED = 3


@dataclass(frozen=True)
class AdapterFit:
    """An adapter folder that fits a base model, as provenance records it.

    Attributes:
        path: the folder.
        kind: ``lora`` or ``ia3``.
        fingerprint: :func:`~adamergex.adapters.io.adapter_fingerprint` of the folder (config and weights).
        base_model: the base model the adapter records (provenance, else ``base_model_name_or_path``).
        base_fingerprint: the base model's fingerprint the provenance records, if any.
        modules: number of adapted modules.
        parameters: number of adapter parameters.
    """

    path: str
    kind: str
    fingerprint: str
    base_model: str | None
    base_fingerprint: str | None
    modules: int
    parameters: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def recorded_base(adapter_dir: str | Path) -> tuple[str | None, str | None]:
    """The base model an adapter was made for: ``(name, fingerprint)`` from its provenance sidecar, else
    the name in ``adapter_config.json`` (``base_model_name_or_path``); None where nothing is recorded."""
    folder = Path(adapter_dir)
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise AdamergexError(f"{folder} is not an adapter folder: adapter_config.json is missing")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise AdamergexError(f"{config_path} is not valid JSON ({error.msg} at line {error.lineno})") from None
    parse_adapter_config(config, config_path)  # one line naming a malformed field, before PEFT sees it
    name: str | None = config.get("base_model_name_or_path") or None
    fingerprint: str | None = None
    provenance = read_provenance(folder) or {}
    base = provenance.get("base_model")
    if isinstance(base, dict):
        name = base.get("name") or name
        fingerprint = base.get("fingerprint")
    elif isinstance(base, str) and base:
        name = base
    fingerprint = provenance.get("base_model_fingerprint") or fingerprint
    return name, fingerprint


def _same_name(recorded: str, given: str, loaded_path: Path | None) -> bool:
    if recorded == given:
        return True
    candidates = {Path(given).expanduser().resolve()}
    if loaded_path is not None:
        candidates.add(Path(loaded_path).resolve())
    return Path(recorded).expanduser().resolve() in candidates


def check_adapter_base(adapter_dir: str | Path, loaded: Any) -> None:
    """Raise :class:`IncompatibleAdaptersError` when the adapter was made for a different base model.

    The recorded base fingerprint is compared with ``loaded.fingerprint`` when both exist (content, not
    names); otherwise the recorded name is compared with the name given and the folder loaded from.
    """
    name, fingerprint = recorded_base(adapter_dir)
    loaded_fingerprint = getattr(loaded, "fingerprint", None)
    if fingerprint and loaded_fingerprint:
        if fingerprint != loaded_fingerprint:
            raise IncompatibleAdaptersError(
                f"adapter {adapter_dir} was trained on base model {name or '?'} (fingerprint {fingerprint[:12]}), "
                f"not on the base model given, {loaded.name} (fingerprint {loaded_fingerprint[:12]})"
            )
        return
    if name and loaded.name and not _same_name(name, loaded.name, getattr(loaded, "path", None)):
        raise IncompatibleAdaptersError(
            f"adapter {adapter_dir} was made for base model {name!r}, not for the base model given, {loaded.name!r}"
        )


@dataclass(frozen=True)
class _Base:
    """The parts of a base model the checks read."""

    model: torch.nn.Module
    name: str
    fingerprint: str | None
    path: Path | None


def _as_base(base: Any) -> _Base:
    if isinstance(base, torch.nn.Module):
        return _Base(base, str(getattr(base, "name_or_path", "") or ""), None, None)
    return _Base(base.model, str(base.name), getattr(base, "fingerprint", None), getattr(base, "path", None))


def module_features(module: torch.nn.Module) -> tuple[int, int] | None:
    """``(in_features, out_features)`` of a layer an adapter can act on (linear, embedding, GPT-2's Conv1D);
    None for any other module."""
    if isinstance(module, torch.nn.Embedding):
        return module.num_embeddings, module.embedding_dim
    if isinstance(getattr(module, "in_features", None), int) and isinstance(getattr(module, "out_features", None), int):
        return int(module.in_features), int(module.out_features)  # type: ignore[arg-type]
    if isinstance(getattr(module, "nx", None), int) and isinstance(getattr(module, "nf", None), int):
        return int(module.nx), int(module.nf)  # type: ignore[arg-type]
    return None


def _module_problem(adapter: Adapter, name: str, module: torch.nn.Module | None) -> str | None:
    """What does not fit between the adapter's module ``name`` and the model's module; None when it fits."""
    if module is None:
        return f"{name} (not in the model)"
    features = module_features(module)
    if features is None:
        return f"{name} (a {type(module).__name__}, not a linear or embedding layer)"
    in_features, out_features = features
    if isinstance(adapter, LoraAdapter):
        have, expected = adapter.modules[name].shape, (out_features, in_features)
    else:
        vector = adapter.modules[name]
        have = tuple(vector.vector.shape)  # type: ignore[assignment]
        expected = (1, in_features) if vector.feedforward else (out_features, 1)
    if tuple(have) != expected:
        return f"{name} (adapter {tuple(have)}, model needs {expected})"
    return None


def check_adapter_fits(folder: str | Path, base: Any, kind: str) -> AdapterFit:
    """Check that the adapter in ``folder`` can act on ``base`` as an adapter of ``kind``, and describe it.

    Refused with one line (an :class:`~adamergex.errors.IncompatibleAdaptersError` naming the folder and what
    does not fit) when: the adapter is of another kind; it records another base model (provenance fingerprint,
    else the name, as :func:`check_adapter_base`); a module it adapts is not in the model or is not a linear
    or embedding layer; a module's shape is not the model's (LoRA: ``B·A`` is (out, in); (IA)³: (out, 1), or
    (1, in) for feed-forward modules). A folder that is not a readable PEFT adapter is an
    :class:`~adamergex.errors.AdapterFormatError` first.

    Args:
        folder: a PEFT adapter folder.
        base: a loaded model (``model``, ``name``, ``fingerprint``, ``path``) or a bare ``torch.nn.Module``.
        kind: the adapter kind the caller expects (``lora`` or ``ia3``).

    Returns:
        The adapter's :class:`AdapterFit`, with its fingerprint for provenance.
    """
    adapter = read_adapter(folder)
    if adapter.kind != kind:
        raise IncompatibleAdaptersError(
            f"adapter {folder} is a {KIND_NAMES.get(adapter.kind, adapter.kind)} adapter, "
            f"not the {KIND_NAMES.get(kind, kind)} adapter expected"
        )
    model = _as_base(base)
    check_adapter_base(folder, model)
    modules = dict(model.model.named_modules())
    problems = [p for name in adapter.modules if (p := _module_problem(adapter, name, modules.get(name)))]
    if problems:
        more = f" and {len(problems) - _NAMED} more" if len(problems) > _NAMED else ""
        raise IncompatibleAdaptersError(
            f"adapter {folder} does not fit base model {model.name or type(model.model).__name__!r}: "
            f"{len(problems)} of its {len(adapter.modules)} modules do not match: "
            f"{'; '.join(problems[:_NAMED])}{more}"
        )
    name, fingerprint = recorded_base(folder)
    return AdapterFit(
        path=str(folder),
        kind=adapter.kind,
        fingerprint=adapter_fingerprint(folder),
        base_model=name,
        base_fingerprint=fingerprint,
        modules=len(adapter.modules),
        parameters=adapter.num_parameters(),
    )
