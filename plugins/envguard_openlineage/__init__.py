"""envguard's OpenLineage export: ``envguard audit export --format openlineage -o FILE|URL``.

The lineage log becomes OpenLineage RunEvents (built with the ``openlineage-python`` client):
one START and one COMPLETE per MLflow run, dataset registration and derivation (DVC stage or
masking step), with envguard's custom facets for the environment and the masking proof (see
:mod:`envguard_openlineage.facets` and ``docs/openlineage.md``). ``openlineage-python`` is imported
only when the command runs; without it the command says which extra to install.
"""

from __future__ import annotations

import click

from envguard import hookimpl

__all__ = ["envguard_add_commands"]


@hookimpl
def envguard_add_commands(cli: click.Group) -> None:
    """Add ``envguard audit export`` to the ``audit`` group."""
    from envguard_openlineage.commands import export_command

    audit = cli.commands.get("audit")
    if isinstance(audit, click.Group):
        audit.add_command(export_command)
