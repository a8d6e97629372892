"""The fields of ``adapter_config.json`` that adamergex reads, as one typed model per adapter kind.

Every value is checked strictly (``r`` must be an integer, not ``4.7`` or ``"8"``; alpha a finite number;
patterns valid regular expressions), so a malformed file is refused with one line naming the field instead of
being truncated, copied into an output, or crashing a merge. Fields adamergex does not read pass through
unchanged (PEFT configs carry many more).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adamergex.errors import AdapterFormatError

SUPPORTED_PEFT_TYPES = ("LORA", "IA3")
ModuleNames = list[str] | str | None


def _check_patterns(patterns: dict[str, Any] | None) -> dict[str, Any] | None:
    for key in patterns or {}:
        try:
            re.compile(rf"(.*\.)?({key})$")
        except re.error as error:
            raise ValueError(f"key {key!r} is not a valid regular expression ({error})") from None
    return patterns


class AdapterConfigFields(BaseModel):
    """Fields every supported adapter kind shares."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    peft_type: str
    base_model_name_or_path: str | None = None
    task_type: str | None = None
    target_modules: ModuleNames = None
    exclude_modules: ModuleNames = None
    modules_to_save: list[str] | None = None
    layers_to_transform: int | list[int] | None = None
    layers_pattern: ModuleNames = None
    inference_mode: bool = False

    @field_validator("peft_type")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value.upper() not in SUPPORTED_PEFT_TYPES:
            raise ValueError(f"{value!r} is not supported; expected one of {', '.join(SUPPORTED_PEFT_TYPES)}")
        return value


class LoraConfigFields(AdapterConfigFields):
    """A LoRA config: the rank and alpha that set each module's scale, and the variants adamergex refuses."""

    r: int = Field(ge=1)
    lora_alpha: float
    use_rslora: bool = False
    rank_pattern: dict[str, int] | None = None
    alpha_pattern: dict[str, float] | None = None
    use_dora: bool | None = False
    bias: Literal["none", "all", "lora_only"] = "none"
    lora_bias: bool = False
    target_parameters: list[str] | None = None

    @field_validator("alpha_pattern")
    @classmethod
    def _alpha_keys(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        return _check_patterns(value)

    @field_validator("rank_pattern")
    @classmethod
    def _rank_keys(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for key, rank in (value or {}).items():
            if rank < 1:
                raise ValueError(f"rank {rank} for {key!r} is not a positive integer")
        return _check_patterns(value)


class IA3ConfigFields(AdapterConfigFields):
    """An (IA)³ config: which target modules scale their input (feed-forward) rather than their output."""

    feedforward_modules: ModuleNames = None


def _location(raw: Any, loc: tuple[Any, ...]) -> str:
    """The dotted path of ``loc`` through the data, without the type tags pydantic adds for unions."""
    parts, node = [], raw
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
            parts.append(str(part))
    return ".".join(parts) or str(loc[0]) if loc else "(top level)"


def _field_error(raw: Any, error: ValidationError) -> str:
    errors = error.errors()
    first = errors[0]
    location = _location(raw, first["loc"])
    if first["type"] == "missing":
        return f"field {location} is missing"
    if first["type"] == "value_error":
        return f"field {location}: {first['msg'].removeprefix('Value error, ')}"
    # A union reports one error per alternative at the same place: name them all.
    alternatives = [e["msg"].removeprefix("Input should be ") for e in errors if _location(raw, e["loc"]) == location]
    message = "Input should be " + " or ".join(dict.fromkeys(alternatives))
    got = first.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) and len(repr(got)) <= 60 else ""
    return f"field {location}: {message}{shown}"


def parse_adapter_config(raw: Any, path: str | Path) -> dict[str, Any]:
    """Check a parsed ``adapter_config.json`` (at ``path``) and return it unchanged.

    Raises :class:`AdapterFormatError` with one line naming the first bad field and what it should hold.
    """
    if not isinstance(raw, dict):
        raise AdapterFormatError(f"{path}: expected a JSON object")
    peft_type = raw.get("peft_type")
    kind = peft_type.upper() if isinstance(peft_type, str) else None
    model = LoraConfigFields if kind == "LORA" else IA3ConfigFields if kind == "IA3" else AdapterConfigFields
    try:
        model.model_validate(raw)
    except ValidationError as error:
        raise AdapterFormatError(f"{path}: {_field_error(raw, error)}") from None
    return raw
