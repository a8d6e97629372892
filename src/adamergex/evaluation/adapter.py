"""Evaluate a loaded base model with an adapter folder attached (or alone): the one place that attaches an
adapter for evaluation, refusing one made for another base model
(:func:`~adamergex.adapters.fit.check_adapter_base`), and detaches it afterwards."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from adamergex.adapters.fit import check_adapter_base
from adamergex.adapters.io import adapter_fingerprint
from adamergex.errors import IncompatibleAdaptersError
from adamergex.evaluation.runner import EvalResult, evaluate


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
