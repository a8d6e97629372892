"""Evaluate a loaded base model with an adapter folder attached (or alone): the one place that attaches an
adapter for evaluation, refusing one made for another base model, and detaches it afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from adamergex.adapters.config import parse_adapter_config
from adamergex.adapters.io import adapter_fingerprint
from adamergex.errors import AdamergexError, IncompatibleAdaptersError
from adamergex.evaluation.runner import EvalResult, evaluate
from adamergex.provenance import read_provenance


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
    if name and not _same_name(name, loaded.name, getattr(loaded, "path", None)):
        raise IncompatibleAdaptersError(
            f"adapter {adapter_dir} was made for base model {name!r}, not for the base model given, {loaded.name!r}"
        )


def attach_adapter(loaded: Any, adapter_dir: str | Path) -> tuple[Any, str]:
    """The base model wrapped with the adapter (``PeftModel``, eval mode) and the adapter's fingerprint."""
    from peft import PeftModel

    check_adapter_base(adapter_dir, loaded)
    try:
        model = PeftModel.from_pretrained(loaded.model, str(adapter_dir), is_trainable=False)
    except (ValueError, RuntimeError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise IncompatibleAdaptersError(
            f"adapter {adapter_dir} does not fit base model {loaded.name!r}: {first_line}"
        ) from None
    return model.eval(), adapter_fingerprint(adapter_dir)


def evaluate_adapter(
    loaded: Any,
    adapter_dir: str | Path | None,
    task: Any,
    langs: Sequence[str],
    *,
    options: Mapping[str, Any] | None = None,
    max_text_tokens: int | None = None,
    model_name: str | None = None,
    announce: Callable[[str], None] | None = None,
    **settings: Any,
) -> list[EvalResult]:
    """Evaluate ``loaded`` (a :class:`~adamergex.models.LoadedModel`) with ``adapter_dir`` attached, or alone
    when it is None, on ``task`` in each of ``langs``.

    The adapter is attached once (:func:`attach_adapter`) and removed afterwards, also on failure, so
    ``loaded.model`` is the plain base model again. ``options`` (the task loader's) and ``max_text_tokens``
    (inputs cut with the base model's tokenizer) reach ``task.load``; ``announce(lang)`` is called before each
    language; ``settings`` go to :func:`~adamergex.evaluation.runner.evaluate` (split, limit, protocol, ...).
    The results record the model (``model_name``, default the name it was loaded by), the adapter and both
    fingerprints.
    """
    load_options = dict(options or {})
    if max_text_tokens:
        load_options.update(max_text_tokens=max_text_tokens, tokenizer=loaded.tokenizer)
    model, fingerprint = (loaded.model, None) if adapter_dir is None else attach_adapter(loaded, adapter_dir)
    try:
        results = []
        for lang in langs:
            if announce is not None:
                announce(lang)
            result = evaluate(
                model,
                loaded.tokenizer,
                task,
                lang,
                model_name=model_name or loaded.name,
                model_fingerprint=loaded.fingerprint,
                load_options=load_options,
                adapter=None if adapter_dir is None else str(adapter_dir),
                adapter_fingerprint=fingerprint,
                **settings,
            )
            results.append(result)
        return results
    finally:
        if adapter_dir is not None:
            loaded.model = model.unload()
            loaded.model.eval()
