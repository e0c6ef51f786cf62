"""The ``envguard`` command.

Exit codes: 0 ok; 1 denied, or violations found; 2 usage or configuration error. Errors are one
clear message per problem and no traceback, unless ``--debug`` (or ``ENVGUARD_DEBUG=1``) asks
for one. Plugins add commands through the ``envguard_add_commands`` hook.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

import click

from envguard import __version__
from envguard.cli.output import print_error
from envguard.errors import EnvGuardError

__all__ = ["cli", "main"]


class EnvGuardGroup(click.Group):
    """A group that adds the plugins' commands when it is first asked for its commands."""

    _plugins_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        from envguard.runtime import current

        current().plugins.add_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._add_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command


@click.group(cls=EnvGuardGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="envguard")
@click.option(
    "--debug", is_flag=True, envvar="ENVGUARD_DEBUG", help="Show tracebacks and debug logging."
)
def cli(debug: bool) -> None:
    """envguard keeps training, testing and production apart in ML pipelines.

    Exit codes: 0 ok, 1 denied or violations found, 2 usage or configuration error.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _register_builtin_commands() -> None:
    from envguard.cli import policy_commands, proof_commands

    policy_commands.register(cli)
    proof_commands.register(cli)


_register_builtin_commands()


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``envguard`` script: run the CLI and map errors to exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("ENVGUARD_DEBUG", "") not in ("", "0")
    from envguard import runtime

    runtime.reset()  # each invocation reads the policy and ENVGUARD_* variables afresh
    try:
        result = cli.main(args=args, prog_name="envguard", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except EnvGuardError as exc:
        if debug:
            traceback.print_exc()
        print_error(exc, args)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(result, int) and not isinstance(result, bool):
        sys.exit(result)
    return None
