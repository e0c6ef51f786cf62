"""The registry gate without a server: a local MLflow registry (``sqlite:///mlflow.db``, a
database URL, a folder), guarded inside the client process by the registry store wrapper.

The same :class:`~envguard_mlflow.server.promotion.PromotionGate` as the server decides, with
the same rules and the same records (``promotion.requested``, then ``promotion.allowed`` or
``promotion.denied``, in the policy's lineage log); only the facts come from elsewhere:

* MLflow's stores are the client's own (the guarded registry store, and the tracking store of
  the process's tracking URI), and the version's files are read through MLflow's artifact
  repository for their URI;
* nobody authenticated the approvers, so an approval counts only when the approver signed it
  with a personal key the policy trusts for approvals (``[signers.NAME]``, purpose
  ``approval``): :mod:`envguard.approvals`. ``envguard approve models:/NAME/V --to ENV
  --key-file KEY`` records one;
* the actor is the process's identity (``ENVGUARD_ACTOR``, else the operating-system user).

What this guards, and what it cannot, is in ``docs/mlflow.md`` ("Local registries"): a local
registry is a file its user can write without MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from envguard.decisions import Reason, conclude
from envguard.errors import Denied
from envguard_mlflow.server.versions import VersionBinding, bind_version, version_uri

if TYPE_CHECKING:
    from envguard.approvals import RecordedApproval
    from envguard.keys import SigningKey
    from envguard.lineage.sql import SqlLineageStore
    from envguard.policy import Policy
    from envguard.runtime import Runtime

__all__ = ["LocalRegistryContext", "grant_local_approval", "is_local_registry"]

_REMOTE = ("http", "https", "databricks", "databricks-uc", "uc")


def is_local_registry(uri: str) -> bool:
    """True for a registry this process opens itself (a database URL, a folder); False for a
    server (``http(s)://``, Databricks)."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else uri.lower()
    return scheme not in _REMOTE


@dataclass
class LocalRegistryContext:
    """What the promotion gate asks, answered in the client process (see the module)."""

    runtime: Runtime
    registry: Any  # MLflow's registry store for the local URI (reads only)
    tracking_uri: str
    personal_approvals: ClassVar[bool] = True
    _tracking: Any = field(default=None, repr=False)

    @property
    def policy(self) -> Policy:
        return self.runtime.policy

    @property
    def store(self) -> SqlLineageStore:
        return self.runtime.store

    @property
    def registry_uri(self) -> str:
        return str(getattr(self.registry, "_envguard_uri", ""))

    def registry_store(self) -> Any:
        return self.registry

    def tracking_store(self) -> Any:
        if self._tracking is None:
            from mlflow.tracking._tracking_service.utils import _get_store

            self._tracking = _get_store(self.tracking_uri)  # type: ignore[no-untyped-call]
        return self._tracking

    def bind(self, name: str, version: str) -> VersionBinding:
        return bind_version(self.registry, name, version, self.tracking_store())

    def is_prompt(self, name: str, version: str | None = None) -> bool:
        from envguard_mlflow.server.context import is_prompt

        return is_prompt(self.registry, name, version)

    def record(
        self,
        kind: str,
        *,
        actor: str,
        environment: str | None,
        entities: Sequence[str] = (),
        payload: Mapping[str, Any] | None = None,
        required: bool = True,
    ) -> None:
        from envguard_mlflow.server.context import record_event

        record_event(
            self.runtime,
            kind,
            actor=actor,
            environment=environment or self.runtime.environment.name,
            entities=entities,
            payload=payload,
            required=required,
        )


def _refusals(
    ctx: LocalRegistryContext, approver: str, creators: frozenset[str], target: str
) -> list[Reason]:
    rule = ctx.policy.promotion_rule(target)
    reasons: list[Reason] = []
    if rule is not None and rule.separation_of_duties and approver in creators:
        reasons.append(
            Reason(
                "separation-of-duties",
                f"{approver} created it (its run or the version) and cannot approve it for "
                f"{target!r}",
                "ask someone who did not train or register it",
                guideline=10,
            )
        )
    wanted = set(rule.approver_roles) if rule else set()
    if wanted and not wanted & ctx.policy.roles_of(approver):
        reasons.append(
            Reason(
                "approver-role",
                f"{approver} holds none of the roles {', '.join(sorted(wanted))}",
                f"ask a holder of {' or '.join(sorted(wanted))}",
                guideline=10,
            )
        )
    return reasons


def grant_local_approval(
    ctx: LocalRegistryContext,
    name: str,
    version: str,
    target: str,
    key: SigningKey,
    comment: str = "",
) -> RecordedApproval:
    """Sign (with the approver's ``key``) and record an approval of a local registry's version,
    bound to its source run and files. :class:`Denied` when the approver may not approve it."""
    from envguard.approvals import (
        RecordedApproval,
        approval_entity,
        approver_name,
        sign_as_approver,
    )
    from envguard_mlflow.server.approvals import new_statement
    from envguard_mlflow.server.promotion import PromotionGate, run_entity

    approver = approver_name(ctx.policy, key, ctx.runtime.environ)
    uri = version_uri(name, version)
    evaluation = PromotionGate(ctx).evaluate(name, version, target, approver)
    reasons = _refusals(ctx, approver, evaluation.request.creators, target)
    if evaluation.binding is None:
        reasons.append(
            Reason(
                "binding-unavailable",
                "the version's files could not be read, so the approval cannot be bound",
                "make the version's artifacts readable here, then retry",
            )
        )
    if reasons:
        decision = conclude("approval", uri, reasons, ctx.policy, target)
        if not decision.allowed:
            raise Denied(decision)
    binding = evaluation.binding or ctx.bind(name, version)
    statement = new_statement(approver, binding, target, comment)
    signature = sign_as_approver(key, statement)
    ctx.record(
        "approval.granted",
        actor=approver,
        environment=target,
        entities=[
            approval_entity(statement["id"]),
            uri,
            *([run_entity(binding.run_id)] if binding.run_id else []),
        ],
        payload={"statement": statement, **signature, "binding": binding.to_dict()},
    )
    return RecordedApproval(statement, 0, approver, signature["keyid"], signature["signature"])
