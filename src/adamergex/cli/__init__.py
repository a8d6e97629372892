"""The ``adamergex`` command line: one group, one module per family of subcommands."""

from __future__ import annotations

import sys

import click

from adamergex import __version__
from adamergex.cli.adapters import combine_command, inspect_command, merge_command
from adamergex.errors import AdamergexError


class _Group(click.Group):
    """A click group that turns user errors into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except AdamergexError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="adamergex")
def main() -> None:
    """Cross-lingual transfer by adaptive adapter merging (AdaMergeX)."""


main.add_command(merge_command)
main.add_command(combine_command)
main.add_command(inspect_command)
