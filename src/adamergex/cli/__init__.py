"""The ``adamergex`` command line: one group, one module per family of subcommands.

Subcommand modules are imported only when their command runs, so ``adamergex merge`` does not pay for
importing transformers, datasets and the training stack.
"""

from __future__ import annotations

import importlib
import sys

import click

from adamergex import __version__
from adamergex.errors import AdamergexError, StorageError
from adamergex.files import STORAGE_ERRNOS, storage_error

# command name → "module:attribute" of its click command (register new commands here).
COMMANDS: dict[str, str] = {
    "merge": "adamergex.cli.adapters:merge_command",
    "combine": "adamergex.cli.adapters:combine_command",
    "inspect": "adamergex.cli.adapters:inspect_command",
    "data": "adamergex.cli.data:data_group",
    "train": "adamergex.cli.train:train_command",
    "eval": "adamergex.cli.eval:eval_command",
    "run": "adamergex.cli.pipeline:run_command",
    "report": "adamergex.cli.pipeline:report_command",
    "demo": "adamergex.cli.pipeline:demo_command",
}


class _Group(click.Group):
    """Lazily imported subcommands; user errors become one line on stderr and a non-zero exit."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AdamergexError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except OSError as error:  # a last line of defence for storage errors library code did not wrap
            if error.errno not in STORAGE_ERRNOS:
                raise
            click.echo(f"error: {storage_error(error, 'access', error.filename or '(a file)')}", err=True)
            sys.exit(StorageError.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="adamergex")
def main() -> None:
    """Cross-lingual transfer by adaptive adapter merging (AdaMergeX)."""
