"""``envguard approve|approvals|promote`` without a server: a local MLflow registry
(:mod:`envguard_mlflow.local_registry`) and datasets (:mod:`envguard.movement`).

Approvals here are signed by the approvers' own keys (``--key-file`` or
``$ENVGUARD_APPROVER_KEY``) and recorded in the policy's lineage log; a promotion is decided by
the same gate as the server's, and the move goes through MLflow, whose guarded registry store
decides again and records it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from envguard.cli.output import emit_json
from envguard.errors import ConfigError, Denied, InputError
from envguard_mlflow.local_registry import LocalRegistryContext

__all__ = [
    "approve_dataset",
    "approve_local",
    "is_dataset_approval",
    "list_local",
    "local_context",
    "promote_local",
    "revoke_local",
]


def local_context() -> LocalRegistryContext:
    """The gate's context for the registry MLflow's variables name (a local one); its store is
    envguard's guarded store, so that a move through it is decided again and recorded."""
    import mlflow
    from mlflow.tracking._model_registry.utils import _get_store

    from envguard.runtime import current
    from envguard_mlflow.facts import current_facts
    from envguard_mlflow.registry_store import GuardedRegistryStore

    registry_uri, tracking_uri = mlflow.get_registry_uri(), mlflow.get_tracking_uri()
    store = _get_store(registry_uri, tracking_uri)  # type: ignore[no-untyped-call]
    if current_facts() is None or not isinstance(store, GuardedRegistryStore):
        raise ConfigError(
            f"envguard does not guard the registry {registry_uri} in this process "
            f"(ENVGUARD_DISABLE is set, or no policy was found): unset ENVGUARD_DISABLE and "
            f"run where envguard.toml is (or set ENVGUARD_CONFIG)"
        )
    return LocalRegistryContext(current(), store, tracking_uri)


@contextmanager
def _mlflow_input(subject: str) -> Iterator[None]:
    """MLflow's "does not exist" and "invalid" errors, as envguard's bad input (exit 2)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise InputError(subject, exc.message) from None
        raise


def _print_approval(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(data)
        return
    s = data["approval"]
    subject = s.get("model_version") or s.get("dataset")
    bound = s.get("files_sha256") or s.get("sha256") or ""
    click.echo(
        f"approved {subject} for {s['target_env']!r} as {s['approver']} "
        f"(approval {s['id']}, signed with your key, bound to sha256 {bound[:12]}…)"
    )


def approve_local(
    name: str, version: str, to: str, comment: str, key_file: str | None, as_json: bool
) -> None:
    from envguard.approvals import load_approver_key
    from envguard_mlflow.local_registry import grant_local_approval
    from envguard_mlflow.server.api import resolve_move

    ctx = local_context()
    key = load_approver_key(key_file, ctx.runtime.environ)
    target, _, _ = resolve_move(ctx, to)
    with _mlflow_input(f"models:/{name}/{version}"):
        approval = grant_local_approval(ctx, name, version, target, key, comment)
    data = {"approval": approval.statement, "keyid": approval.keyid}
    _print_approval({**data, "signature": approval.signature}, as_json)


def approve_dataset(
    dataset: str, to: str, comment: str, key_file: str | None, as_json: bool
) -> None:
    from envguard.approvals import load_approver_key
    from envguard.movement import grant_data_approval
    from envguard.runtime import current

    runtime = current()
    key = load_approver_key(key_file, runtime.environ)
    approval = grant_data_approval(runtime, dataset, to, key, comment)
    data = {"approval": approval.statement, "keyid": approval.keyid}
    _print_approval({**data, "signature": approval.signature}, as_json)


def promote_local(model_version: str, to: str, dry_run: bool, as_json: bool) -> int:
    """``envguard promote`` on a local registry: evaluate, print, and on allow move through
    MLflow (the guarded store decides again and records). Exit 0 allowed, 1 denied."""
    from mlflow import MlflowClient

    from envguard_mlflow.server.api import resolve_move
    from envguard_mlflow.server.client import parse_model_version
    from envguard_mlflow.server.promotion import PromotionGate

    name, version = parse_model_version(model_version)
    ctx = local_context()
    target, kind, move = resolve_move(ctx, to)
    with _mlflow_input(model_version):
        evaluation = PromotionGate(ctx).evaluate(name, version, target, ctx.runtime.actor)
    data: dict[str, Any] = {
        "target_env": target,
        "move": {"kind": kind, "name": move},
        "explain": evaluation.decision.explain(),
        **evaluation.to_dict(),
    }
    allowed, moved = evaluation.decision.allowed, False
    if allowed and not dry_run:
        if not kind:
            raise InputError(f"--to {to}", "the policy maps no alias or stage to it")
        client = MlflowClient(registry_uri=ctx.registry_uri)
        try:
            if kind == "alias":
                client.set_registered_model_alias(name, move, version)
            else:
                client.transition_model_version_stage(name, version, move)
            moved = True
        except Denied as exc:  # decided again at the move: something changed meanwhile
            data["explain"], allowed = str(exc), False
    if as_json:
        emit_json({**data, "dry_run": dry_run, "moved": moved})
    else:
        click.echo(data["explain"])
        if moved:
            where = f"@{move}" if kind == "alias" else f"stage {move}"
            click.echo(f"moved {model_version} to {where}")
    return 0 if allowed else 1


def list_local(subject: str | None, as_json: bool) -> None:
    """Approvals recorded in the lineage log (approver-signed), of one subject when named."""
    from envguard.approvals import read_approvals
    from envguard.runtime import current

    runtime = current()
    entity = subject
    if subject and not subject.startswith(("models:/", "sha256:")):
        from envguard.movement import identify

        entity = identify(runtime, subject).entity
    found = read_approvals(runtime.store, runtime.policy, entity, personal=True)
    if as_json:
        emit_json({"approvals": [a.to_dict() for a in found]})
        return
    if not found:
        click.echo("no approvals")
    for a in found:
        state = "revoked" if a.revoked else ("valid" if a.valid else "INVALID")
        target = a.statement.get("target_env")
        click.echo(f"{a.id}  {a.subject} -> {target}  by {a.statement.get('approver')}  "
                   f"{a.statement.get('time')}  {state}")  # fmt: skip
        for problem in a.problems:
            click.echo(f"    {problem}")


def is_dataset_approval(approval_id: str) -> bool:
    """True when this folder's policy names a lineage log that holds an approval of a dataset
    with this id (False without a policy: a client of a guarded server needs none)."""
    from envguard.approvals import approval_entity
    from envguard.errors import ConfigError
    from envguard.runtime import current

    try:
        events = current().store.events(
            kind="approval.granted", entity=approval_entity(approval_id)
        )
        return any("dataset" in (e.payload.get("statement") or {}) for e in events)
    except ConfigError:
        return False


def revoke_local(approval_id: str, comment: str) -> None:
    """Withdraw an approver-signed approval. A revocation only takes an approval away, so
    anyone may record one; the record names who did (``ENVGUARD_ACTOR`` or the OS user)."""
    from envguard.approvals import approval_entity, read_approvals
    from envguard.runtime import current

    runtime = current()
    found = {a.id: a for a in read_approvals(runtime.store, runtime.policy, personal=True)}
    approval = found.get(approval_id)
    if approval is None:
        raise InputError(approval_id, "no such approval; see envguard approvals list")
    if approval.revoked is not None:
        raise InputError(approval_id, "already revoked")
    draft = runtime.draft(
        "approval.revoked",
        entities=[approval_entity(approval_id), approval.subject],
        payload={"id": approval_id, "comment": comment},
        environment=str(approval.statement.get("target_env") or "") or None,
    )
    runtime.store.append(draft, required=True)
    click.echo(f"revoked approval {approval_id}")
