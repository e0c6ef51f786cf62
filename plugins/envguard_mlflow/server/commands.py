"""``envguard server``, ``envguard approve``, ``envguard approvals list|revoke`` and
``envguard promote``; registered through the ``envguard_add_commands`` hook.

The entry point ``mlflow-server`` (group ``envguard``) names this module. It imports neither
MLflow nor the server: each command imports what it needs when it runs, and says which extra to
install when MLflow is missing.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from envguard import hookimpl
from envguard.cli.output import emit_json

if TYPE_CHECKING:
    from envguard_mlflow.server.client import RegistryClient

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
    import subprocess  # here: every envguard command loads this module

    return subprocess.call(argv, env=env)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _client() -> RegistryClient:
    from envguard_mlflow.server.client import RegistryClient

    _require_mlflow("this command")
    return RegistryClient()


def _local_registry() -> bool:
    """True when MLflow's registry URI names a local registry (no server decides for it)."""
    _require_mlflow("this command")
    import mlflow

    from envguard_mlflow.local_registry import is_local_registry

    return is_local_registry(mlflow.get_registry_uri())


def _is_dataset(subject: str) -> bool:
    return not subject.startswith("models:/")


key_file_option = click.option(
    "--key-file",
    metavar="FILE",
    help="Your Ed25519 private key (default $ENVGUARD_APPROVER_KEY), for approvals without a "
    "server: datasets, and versions in a local registry.",
)


@click.command("approve")
@click.argument("subject", metavar="models:/NAME/VERSION|PATH|sha256:HEX")
@click.option("--to", "to", required=True, metavar="ENV_OR_ALIAS", help="Target environment.")
@click.option("--comment", default="", help="Why you approve (kept in the record).")
@key_file_option
@json_option
def approve_command(
    subject: str, to: str, comment: str, key_file: str | None, as_json: bool
) -> None:
    """Approve a model version, or moving a dataset, into an environment.

    On an envguard-guarded server (MLFLOW_TRACKING_URI is its URL), the server records the
    approval as the user MLFLOW_TRACKING_USERNAME names, signed with its key and bound to the
    version's source run and the sha256 of its files. For a dataset (a file or sha256:HEX), and
    for a version in a local registry (sqlite:///mlflow.db, ...), you sign the approval with
    your own key (--key-file), which the policy lists under [signers.YOUR_NAME] with purpose
    approval; it is recorded in the lineage log.
    """
    from envguard_mlflow.server.client import parse_model_version

    if _is_dataset(subject):
        from envguard_mlflow.local_commands import approve_dataset

        approve_dataset(subject, to, comment, key_file, as_json)
        return
    name, version = parse_model_version(subject)
    if _local_registry():
        from envguard_mlflow.local_commands import approve_local

        approve_local(name, version, to, comment, key_file, as_json)
        return
    if key_file:
        from envguard.errors import InputError

        raise InputError("--key-file", "a guarded server signs approvals itself; drop --key-file")
    data = _client().call(
        "POST",
        "/api/2.0/envguard/approvals",
        {"name": name, "version": version, "to": to, "comment": comment},
    )
    if as_json:
        emit_json(data)
        return
    s = data["approval"]
    click.echo(
        f"approved {s['model_version']} for {s['target_env']!r} as {s['approver']} "
        f"(approval {s['id']}, files sha256 {s['files_sha256'][:12]}…)"
    )


@click.group("approvals")
def approvals_group() -> None:
    """List and revoke approvals recorded by the envguard-guarded MLflow server."""


@approvals_group.command("list")
@click.argument("model_version", required=False, metavar="[models:/NAME/VERSION|PATH|sha256:HEX]")
@json_option
def approvals_list(model_version: str | None, as_json: bool) -> None:
    """List approvals (of one version or dataset, when named), with whether each still holds.

    From the guarded server for its registry; from the lineage log for datasets and local
    registries (approver-signed approvals only)."""
    from envguard_mlflow.server.client import parse_model_version

    if (model_version and _is_dataset(model_version)) or _local_registry():
        from envguard_mlflow.local_commands import list_local

        list_local(model_version, as_json)
        return

    params: dict[str, str] = {}
    if model_version:
        params["name"], params["version"] = parse_model_version(model_version)
    data = _client().call("GET", "/api/2.0/envguard/approvals", params=params)
    if as_json:
        emit_json(data)
        return
    rows = data["approvals"]
    if not rows:
        click.echo("no approvals")
    for a in rows:
        state = "revoked" if a["revoked"] else ("valid" if a["valid"] else "INVALID")
        click.echo(
            f"{a['id']}  {a['model_version']} -> {a['target_env']}  by {a['approver']}  "
            f"{a['time']}  {state}"
        )
        for problem in a["problems"]:
            click.echo(f"    {problem}")


@approvals_group.command("revoke")
@click.argument("approval_id", metavar="ID")
@click.option("--comment", default="", help="Why (kept in the record).")
def approvals_revoke(approval_id: str, comment: str) -> None:
    """Revoke an approval you granted (administrators may revoke any). With a local registry,
    an approver-signed approval in the lineage log (anyone may withdraw one; you are named)."""
    from envguard_mlflow.local_commands import is_dataset_approval, revoke_local

    if is_dataset_approval(approval_id) or _local_registry():
        revoke_local(approval_id, comment)
        return
    _client().call(
        "POST", "/api/2.0/envguard/approvals/revoke", {"id": approval_id, "comment": comment}
    )
    click.echo(f"revoked approval {approval_id}")


@click.command("promote")
@click.argument("model_version", metavar="models:/NAME/VERSION")
@click.option("--to", "to", required=True, metavar="ENV_OR_ALIAS", help="Target.")
@click.option("--dry-run", is_flag=True, help="Evaluate and print; move nothing.")
@click.option(
    "--override",
    "override",
    metavar="REASON",
    help="Emergency override (holders of the target's override_roles only): move despite the "
    "rules; the reason and every rule set aside are recorded.",
)
@json_option
def promote_command(
    model_version: str, to: str, dry_run: bool, override: str | None, as_json: bool
) -> int:
    """Evaluate a promotion, print every reason, and on allow move the version.

    TO is an environment, an alias or a stage; an environment moves the first alias (else
    stage) the policy maps to it. The move goes through MLflow, so the server decides again
    and records it. With --override REASON the server decides with the override and makes the
    move itself (event promotion.overridden). With a local registry (sqlite:///mlflow.db, ...)
    the same rules decide in this process, and envguard's registry store decides the move
    again. Exit 0 allowed, 1 denied.
    """
    from envguard_mlflow.server.client import ServerRefused, parse_model_version

    name, version = parse_model_version(model_version)
    if _local_registry():
        if override is not None:
            from envguard.errors import InputError

            raise InputError("--override", "an emergency override is made by a guarded server only")
        from envguard_mlflow.local_commands import promote_local

        return promote_local(model_version, to, dry_run, as_json)
    client = _client()
    if override is not None and not dry_run:
        if not override.strip():
            from envguard.errors import InputError

            raise InputError("--override", "give the reason for the emergency override")
        return _override(client, model_version, name, version, to, override, as_json)
    check = {"name": name, "version": version, "to": to}
    if override is not None:
        check["override"] = override  # --dry-run --override: what the override would do
    data = client.call("POST", "/api/2.0/envguard/promotions/check", check)
    allowed = bool(data["decision"]["allowed"])
    move = data["move"]
    moved = False
    if allowed and not dry_run:
        if not move["kind"]:
            from envguard.errors import InputError

            raise InputError(f"--to {to}", "the policy maps no alias or stage to it")
        try:
            _move(client.uri, name, version, move["kind"], move["name"])
            moved = True
        except ServerRefused as exc:
            data["explain"] = str(exc)
            allowed = False
    if as_json:
        emit_json({**data, "dry_run": dry_run, "moved": moved})
    else:
        click.echo(data["explain"])
        if moved:
            where = f"@{move['name']}" if move["kind"] == "alias" else f"stage {move['name']}"
            click.echo(f"moved {model_version} to {where}")
    return 0 if allowed else 1


def _override(
    client: RegistryClient,
    model_version: str,
    name: str,
    version: str,
    to: str,
    reason: str,
    as_json: bool,
) -> int:
    from envguard_mlflow.server.client import ServerRefused

    body = {"name": name, "version": version, "to": to, "reason": reason}
    try:
        data = client.call("POST", "/api/2.0/envguard/promotions/override", body)
    except ServerRefused as exc:
        if as_json:
            emit_json({"decision": {"allowed": False}, "explain": str(exc), "moved": False})
        else:
            click.echo(str(exc))
        return 1
    if as_json:
        emit_json(data)
    else:
        move = data["move"]
        where = f"@{move['name']}" if move["kind"] == "alias" else f"stage {move['name']}"
        click.echo(data["explain"])
        click.echo(f"moved {model_version} to {where}")
    return 0


def _move(uri: str, name: str, version: str, kind: str, target: str) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from envguard_mlflow.server.client import ServerRefused

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        if kind == "alias":
            client.set_registered_model_alias(name, target, version)
        else:
            client.transition_model_version_stage(name, version, target)
    except MlflowException as exc:
        if exc.error_code == "PERMISSION_DENIED":
            raise ServerRefused(exc.message) from None
        raise


@hookimpl
def envguard_add_commands(cli: click.Group) -> None:
    """Add ``server``, ``approve``, ``approvals`` and ``promote``."""
    for command in (server_command, approve_command, approvals_group, promote_command):
        cli.add_command(command)
