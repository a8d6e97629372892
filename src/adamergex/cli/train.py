"""``adamergex train``: train a LoRA or (IA)³ adapter; flags are derived from :class:`TrainingConfig`."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic.fields import FieldInfo

from adamergex.errors import AdamergexError
from adamergex.training.config import TrainingConfig

_MULTI_VALUE = {"data_options"}


def _base_type(annotation: Any) -> Any:
    """The annotation without ``| None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        kept = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


def _option(name: str, info: FieldInfo) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """One click option for a config field; default None so that unset flags leave YAML values alone."""
    flag = "--" + name.replace("_", "-")
    kind = _base_type(info.annotation)
    help_text = info.description or ""
    if name in _MULTI_VALUE:
        return click.option("--data-option", name, multiple=True, metavar="KEY=VALUE", help=help_text)
    if kind is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)
    if typing.get_origin(kind) is typing.Literal:
        return click.option(flag, name, type=click.Choice([str(v) for v in typing.get_args(kind)]), help=help_text)
    if typing.get_origin(kind) is list:
        return click.option(flag, name, metavar="A,B,...", help=help_text)
    click_type = {int: int, float: float, Path: click.Path(path_type=Path)}.get(kind, str)
    return click.option(flag, name, type=click_type, help=help_text)


def config_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with one option per :class:`TrainingConfig` field (in reverse for order)."""
    for name, info in reversed(list(TrainingConfig.model_fields.items())):
        function = _option(name, info)(function)
    return function


def _parse_pairs(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; each value is read as YAML (``true`` -> True, ``[a, b]`` -> a list, text stays text)."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise AdamergexError(f"--data-option {pair!r} must look like KEY=VALUE")
        try:
            parsed[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed[key.strip()] = value.strip()
    return parsed


def config_from_cli(config_file: Path | None, values: dict[str, Any]) -> TrainingConfig:
    """Merge a YAML file (if any) with the flags that were given (flags win) into a validated config."""
    given: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or (name in _MULTI_VALUE and not value):
            continue
        if name in _MULTI_VALUE:
            value = _parse_pairs(value)
        elif typing.get_origin(_base_type(TrainingConfig.model_fields[name].annotation)) is list:
            value = [part.strip() for part in str(value).split(",") if part.strip()]
        given[name] = value
    if config_file is not None:
        return TrainingConfig.from_yaml(config_file, **given)
    return TrainingConfig.build(given)


@click.command("train")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file of training settings (same names as the flags, with underscores); flags override it.",
)
@config_options
def train_command(config_file: Path | None, **values: Any) -> None:
    """Train a LoRA or (IA)³ adapter on a reference corpus (causal LM) or a task (answer-only loss).

    \b
    Examples:
      adamergex train --base gemma-3-270m --adapter lora --data reference:udhr --lang de --out ref-de
      adamergex train --base gemma-3-270m --data task:multiemo --lang en --out task-en --max-steps 60
      accelerate launch --multi_gpu --num_processes 2 "$(which adamergex)" train ...  (docs/training.md)
    """
    from adamergex.training.trainer import train_adapter

    config = config_from_cli(config_file, values)
    result = train_adapter(config)
    validation = "n/a" if result.validation_loss is None else f"{result.validation_loss:.4f}"
    if result.record.get("processes", 1) == 1 or _is_main_process():
        click.echo(
            f"wrote {result.out}: {result.steps} steps, train loss {result.train_loss:.4f}, "
            f"validation loss {validation}, {result.tokens_per_second:,.0f} tokens/s, {result.wall_time_s:.1f} s"
        )


def _is_main_process() -> bool:
    from accelerate.state import PartialState

    return PartialState().is_main_process
