"""envguard's masking integration (extra ``gx``): ``envguard mask`` and masking proofs validated
with Great Expectations.

This module stays light: Great Expectations, pandas and pyarrow are imported only inside the
functions that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from envguard.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

__all__ = ["envguard_add_commands"]


@hookimpl
def envguard_add_commands(cli: click.Group) -> None:
    """Add ``envguard mask``."""
    from envguard_gx.commands import mask_command

    cli.add_command(mask_command)
