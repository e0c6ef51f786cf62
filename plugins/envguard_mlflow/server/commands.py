"""``envguard server``, ``envguard approve``, ``envguard approvals list|revoke`` and
``envguard promote``; registered through the ``envguard_add_commands`` hook.

The entry point ``mlflow-server`` (group ``envguard``) names this module. It imports neither
MLflow nor the server: each command imports what it needs when it runs, and says which extra to
install when MLflow is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import click

from envguard import hookimpl

__all__ = ["envguard_add_commands"]


def _require_mlflow(what: str) -> None:
    import importlib.util

    from envguard.errors import ConfigError

    if importlib.util.find_spec("mlflow") is None:
        raise ConfigError(f"{what} needs MLflow: pip install 'envguard[mlflow]'")


@click.command(
    "server",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
@click.argument("mlflow_args", nargs=-1, type=click.UNPROCESSED)
def server_command(mlflow_args: tuple[str, ...]) -> int:
    """Run MLflow's tracking server with envguard guarding its registry.

    Runs `mlflow server --app-name envguard MLFLOW_ARGS...` with the policy envguard finds
    here. Basic auth is on: set MLFLOW_FLASK_SERVER_SECRET_KEY and, for the first start,
    MLFLOW_AUTH_ADMIN_PASSWORD. The policy and the lineage store are checked before MLflow
    starts; the server refuses to start without them.
    """
    from envguard.runtime import current
    from envguard_mlflow.server.context import ServerContext

    _require_mlflow("envguard server")
    runtime = current()
    ctx = ServerContext.load(runtime)
    env = {**os.environ, "ENVGUARD_CONFIG": str(ctx.policy.path)}
    if "--app-name" in mlflow_args:
        from envguard.errors import InputError

        raise InputError("--app-name", "envguard server always runs the app 'envguard'")
    argv = [sys.executable, "-m", "mlflow", "server", "--app-name", "envguard", *mlflow_args]
    return subprocess.call(argv, env=env)


@hookimpl
def envguard_add_commands(cli: click.Group) -> None:
    """Add ``server``, ``approve``, ``approvals`` and ``promote``."""
    cli.add_command(server_command)
