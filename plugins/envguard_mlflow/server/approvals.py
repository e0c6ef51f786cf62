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
from typing import TYPE_CHECKING, Any

from envguard.approvals import (
    STATEMENT_TYPE,
    RecordedApproval,
    approval_entity,
    new_id,
    read_approvals,
)
from envguard.decisions import Approval
from envguard.keys import signing_key
from envguard.lineage.events import canonical_json, utc_now

if TYPE_CHECKING:
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


def new_statement(
    approver: str, binding: VersionBinding, target_env: str, comment: str = ""
) -> dict[str, Any]:
    return {
        "type": STATEMENT_TYPE,
        "id": new_id(),
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
