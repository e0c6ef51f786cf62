"""Approvals: signed by the server's key, chained in the lineage log, bound to one version.

An approval is an ``approval.granted`` event whose payload holds a statement and its Ed25519
signature (purpose ``approval``)::

    {"type": "envguard.approval/v1", "id": ..., "approver": ..., "model_version":
     "models:/NAME/VERSION", "target_env": ..., "run_id": ..., "source": ...,
     "files_sha256": ..., "time": ..., "comment": ...}

signed over its canonical JSON. The approver is the user the server authenticated; nobody can
forge one by writing tags or rows, because the signature and the chain would not verify. An
``approval.revoked`` event (entity ``approval:ID``) withdraws it. At promotion time an approval
counts only if its signature verifies, it is not revoked, and the version's current binding
(source run and file digests) equals the one approved.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from envguard.decisions import Approval
from envguard.keys import signing_key, verify_signature
from envguard.lineage.events import canonical_json, utc_now

if TYPE_CHECKING:
    from envguard.lineage.sql import SqlLineageStore
    from envguard.policy import Policy
    from envguard_mlflow.server.versions import VersionBinding

__all__ = [
    "STATEMENT_TYPE",
    "RecordedApproval",
    "approval_entity",
    "decision_approvals",
    "new_statement",
    "read_approvals",
    "sign_statement",
]

STATEMENT_TYPE = "envguard.approval/v1"


def approval_entity(approval_id: str) -> str:
    return f"approval:{approval_id}"


def new_statement(
    approver: str, binding: VersionBinding, target_env: str, comment: str = ""
) -> dict[str, Any]:
    return {
        "type": STATEMENT_TYPE,
        "id": secrets.token_hex(8),
        "approver": approver,
        "model_version": binding.model_version,
        "target_env": target_env,
        "run_id": binding.run_id,
        "source": binding.source,
        "files_sha256": binding.files_sha256,
        "time": utc_now(),
        "comment": comment,
    }


def sign_statement(policy: Policy, statement: dict[str, Any]) -> dict[str, str]:
    key = signing_key(policy)
    signature = key.sign(canonical_json(statement).encode())
    return {"keyid": key.key_id, "signature": base64.b64encode(signature).decode()}


@dataclass(frozen=True)
class RecordedApproval:
    """An approval as the lineage log holds it, with what envguard found when checking it."""

    statement: dict[str, Any]
    seq: int
    recorded_by: str  # the event's actor
    keyid: str
    signature: str
    revoked: dict[str, Any] | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return str(self.statement.get("id", ""))

    @property
    def valid(self) -> bool:
        return not self.problems and self.revoked is None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.statement,
            "seq": self.seq,
            "keyid": self.keyid,
            "revoked": self.revoked,
            "valid": self.valid,
            "problems": list(self.problems),
        }


def _check(policy: Policy, statement: dict[str, Any], payload: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    try:
        signature = base64.b64decode(str(payload.get("signature", "")), validate=True)
        verify_signature(
            policy,
            "approval",
            str(payload.get("keyid", "")),
            signature,
            canonical_json(statement).encode(),
        )
    except (ValueError, TypeError) as exc:
        problems.append(f"signature: {exc}")
    if statement.get("type") != STATEMENT_TYPE:
        problems.append(f"not an {STATEMENT_TYPE} statement")
    return problems


def read_approvals(
    store: SqlLineageStore, policy: Policy, model_version: str | None = None
) -> list[RecordedApproval]:
    """Every approval recorded (of one version, when named), signatures checked, revocations
    applied, in the order they were granted."""
    found: dict[str, RecordedApproval] = {}
    for event in store.events(kind="approval.granted", entity=model_version):
        payload = event.payload
        statement = payload.get("statement")
        if not isinstance(statement, dict):
            continue
        problems = _check(policy, statement, payload)
        if statement.get("approver") != event.actor:
            problems.append("the recorded actor is not the approver")
        approval = RecordedApproval(
            statement,
            event.seq,
            event.actor,
            str(payload.get("keyid", "")),
            str(payload.get("signature", "")),
            problems=tuple(problems),
        )
        found.setdefault(approval.id, approval)
    if found:
        for event in store.events(kind="approval.revoked"):
            target = str(event.payload.get("id", ""))
            if target in found and found[target].revoked is None:
                found[target] = replace(
                    found[target],
                    revoked={
                        "by": event.actor,
                        "time": event.time,
                        "comment": event.payload.get("comment", ""),
                    },
                )
    return list(found.values())


def decision_approvals(
    recorded: list[RecordedApproval], binding: VersionBinding | None
) -> tuple[Approval, ...]:
    """The approvals :func:`~envguard.decisions.decide_promotion` weighs, each marked invalid
    with the reason when it does not hold for the version as it is now."""
    out: list[Approval] = []
    for item in recorded:
        s = item.statement
        reason = "; ".join(item.problems)
        if item.revoked is not None:
            reason = f"revoked by {item.revoked['by']} at {item.revoked['time']}"
        elif not reason and binding is None:
            reason = "the version's files could not be read to check the binding"
        elif not reason and binding is not None:
            if s.get("run_id") != binding.run_id or s.get("source") != binding.source:
                reason = "the version now comes from another run or source than the one approved"
            elif s.get("files_sha256") != binding.files_sha256:
                reason = "the version's files changed since the approval"
        out.append(
            Approval(
                approver=str(s.get("approver", "")),
                target_env=str(s.get("target_env", "")),
                model_version=str(s.get("model_version", "")),
                time=str(s.get("time", "")),
                comment=str(s.get("comment", "")),
                valid=not reason,
                invalid_reason=reason,
            )
        )
    return tuple(out)
