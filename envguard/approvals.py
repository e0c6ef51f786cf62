"""Approvals as the lineage log holds them: signed statements, chained, revocable.

An approval is an ``approval.granted`` event whose payload holds a statement (type
``envguard.approval/v1``: id, approver, subject, target environment, time, comment, and what the
subject is bound to) and an Ed25519 signature over its canonical JSON. Two ways of signing, two
trust models (``docs/mlflow.md``, "Local registries"):

* **server-signed** (a guarded MLflow server's registry): the server authenticated the approver
  and signs with its own key; the event's actor is the approver.
* **approver-signed** (a local MLflow registry without a server, and datasets): the approver
  signs with a personal key, which the policy lists under ``[signers.NAME]`` with the purpose
  ``approval``. The approver *is* that signer's name: nobody can approve as ``grace`` without
  ``grace``'s private key, whatever ``ENVGUARD_ACTOR`` says. This installation's own key
  (``self``) never signs an approver-signed approval: every local user can read it.

An ``approval.revoked`` event (entity ``approval:ID``) withdraws an approval. A revocation can
only take approvals away, so it needs no signature.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import ConfigError
from envguard.keys import SigningKey, trusted_keys, verify_signature
from envguard.lineage.events import canonical_json, utc_now

if TYPE_CHECKING:
    from envguard.lineage.sql import SqlLineageStore
    from envguard.policy import Policy

__all__ = [
    "APPROVER_KEY_ENV_VAR",
    "STATEMENT_TYPE",
    "RecordedApproval",
    "approval_entity",
    "approver_name",
    "load_approver_key",
    "new_id",
    "new_statement",
    "read_approvals",
    "sign_as_approver",
]

STATEMENT_TYPE = "envguard.approval/v1"
#: The variable holding an approver's personal Ed25519 private key (PEM or base64).
APPROVER_KEY_ENV_VAR = "ENVGUARD_APPROVER_KEY"


def approval_entity(approval_id: str) -> str:
    return f"approval:{approval_id}"


def new_id() -> str:
    return secrets.token_hex(8)


def load_approver_key(key_file: str | None, environ: Mapping[str, str] | None = None) -> SigningKey:
    """The approver's personal key: ``key_file``, else ``$ENVGUARD_APPROVER_KEY``."""
    from cryptography.hazmat.primitives import serialization

    from envguard.keys import _private_from_text

    environ = os.environ if environ is None else environ
    if key_file:
        try:
            text, source = Path(key_file).read_bytes(), key_file
        except OSError as exc:
            raise ConfigError(
                f"--key-file {key_file}: cannot read it ({exc.strerror or exc}); name the file "
                f"holding your Ed25519 private key"
            ) from None
    elif environ.get(APPROVER_KEY_ENV_VAR, "").strip():
        text, source = environ[APPROVER_KEY_ENV_VAR].encode(), f"${APPROVER_KEY_ENV_VAR}"
    else:
        raise ConfigError(
            f"an approval without a server is signed with the approver's own key: pass "
            f"--key-file FILE or set {APPROVER_KEY_ENV_VAR} (an Ed25519 private key whose public "
            f'key the policy lists under [signers.YOUR_NAME] with purposes = ["approval"])'
        )
    private = _private_from_text(text, source)
    public_raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return SigningKey(private, public_raw, source)


def approver_name(policy: Policy, key: SigningKey, environ: Mapping[str, str] | None = None) -> str:
    """The signer the policy names for ``key`` (purpose ``approval``): the approver's identity."""
    trusted = trusted_keys(policy, "approval", environ).get(key.key_id)
    if trusted is None or trusted.name == "self":
        raise ConfigError(
            f"{key.source}: the policy ({policy.path}) lists no signer with this key for "
            f"approvals (public key {key.public_b64}); add it as [signers.YOUR_NAME] with "
            f'public_key = "{key.public_b64}" and purposes = ["approval"]'
        )
    return trusted.name


def sign_as_approver(key: SigningKey, statement: dict[str, Any]) -> dict[str, str]:
    signature = key.sign(canonical_json(statement).encode())
    return {
        "keyid": key.key_id,
        "signature": base64.b64encode(signature).decode(),
        "signed_by": "approver",
    }


def new_statement(
    approver: str, subject_field: str, subject: str, target_env: str, comment: str, **bound: Any
) -> dict[str, Any]:
    """A fresh statement: ``subject_field`` is ``model_version`` or ``dataset``."""
    return {
        "type": STATEMENT_TYPE,
        "id": new_id(),
        "approver": approver,
        subject_field: subject,
        "target_env": target_env,
        **bound,
        "time": utc_now(),
        "comment": comment,
    }


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

    @property
    def subject(self) -> str:
        return str(self.statement.get("model_version") or self.statement.get("dataset") or "")

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.statement,
            "seq": self.seq,
            "keyid": self.keyid,
            "revoked": self.revoked,
            "valid": self.valid,
            "problems": list(self.problems),
        }


def _check(
    policy: Policy, statement: dict[str, Any], payload: dict[str, Any], actor: str, personal: bool
) -> list[str]:
    problems: list[str] = []
    try:
        signature = base64.b64decode(str(payload.get("signature", "")), validate=True)
        signer = verify_signature(
            policy,
            "approval",
            str(payload.get("keyid", "")),
            signature,
            canonical_json(statement).encode(),
        )
        if personal and signer.name == "self":
            problems.append(
                "signed with this installation's own key, which every local user can read; an "
                "approval without a server must be signed with the approver's own key"
            )
        elif personal and signer.name != statement.get("approver"):
            problems.append(f"signed by {signer.name!r}, not by the approver")
    except (ValueError, TypeError) as exc:
        problems.append(f"signature: {exc}")
    if statement.get("type") != STATEMENT_TYPE:
        problems.append(f"not an {STATEMENT_TYPE} statement")
    if statement.get("approver") != actor:
        problems.append("the recorded actor is not the approver")
    return problems


def read_approvals(
    store: SqlLineageStore,
    policy: Policy,
    entity: str | None = None,
    *,
    personal: bool = False,
) -> list[RecordedApproval]:
    """Every approval recorded (of one subject, when ``entity`` names it: ``models:/N/V`` or
    ``sha256:HEX``), signatures checked, revocations applied, in the order granted. With
    ``personal``, only approver-signed approvals count (see the module's docstring)."""
    found: dict[str, RecordedApproval] = {}
    for event in store.events(kind="approval.granted", entity=entity):
        payload = event.payload
        statement = payload.get("statement")
        if not isinstance(statement, dict):
            continue
        approval = RecordedApproval(
            statement,
            event.seq,
            event.actor,
            str(payload.get("keyid", "")),
            str(payload.get("signature", "")),
            problems=tuple(_check(policy, statement, payload, event.actor, personal)),
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
