"""Masking proofs: a signed statement that a masked output came from given sources, masked by
given methods, and passed a validation that found no raw PII in it.

A proof is an in-toto Statement v1 (so supply-chain tools can read it) in a DSSE envelope::

    {"payloadType": "application/vnd.in-toto+json",
     "payload": base64(statement),
     "signatures": [{"keyid": sha256(public key), "sig": base64(Ed25519(PAE(type, payload)))}]}

    statement = {"_type": "https://in-toto.io/Statement/v1",
                 "subject": [{"name": "masked.csv", "digest": {"sha256": "…"}}],
                 "predicateType": "https://envguard.dev/masking-proof/v1",
                 "predicate": {"sources", "columns", "policy", "validation", "tools", "time",
                               "signer"}}

The validation summary holds, per check, the expectation, the column, success and counts: never
a value from the data. It is written beside the output as ``OUTPUT.envguard-proof.json``.

:func:`verify_proof` checks everything and returns every reason the proof fails, not the first.
A proof that cannot be read at all raises :class:`~envguard.errors.InputError`. This module
imports ``cryptography`` only inside functions (through :mod:`envguard.keys`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import InputError

if TYPE_CHECKING:
    from envguard.policy import Policy
    from envguard.proof_verification import ProofVerification

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "PROOF_SUFFIX",
    "STATEMENT_TYPE",
    "MaskingFacts",
    "MaskingProof",
    "ValidationCheck",
    "build_statement",
    "check_envelope",
    "create_proof",
    "data_path_for",
    "pae",
    "proof_path_for",
    "read_proof",
    "sign_statement",
    "verify_proof",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://envguard.dev/masking-proof/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PROOF_SUFFIX = ".envguard-proof.json"
PURPOSE = "masking"


def proof_path_for(output: Path | str) -> Path:
    """Where the proof of ``output`` is written: ``OUTPUT.envguard-proof.json``."""
    output = Path(output)
    return output.with_name(output.name + PROOF_SUFFIX)


def data_path_for(proof: Path | str) -> Path | None:
    """The data file a proof sits beside (its name without the suffix), or None."""
    proof = Path(proof)
    if not proof.name.endswith(PROOF_SUFFIX) or proof.name == PROOF_SUFFIX:
        return None
    return proof.with_name(proof.name[: -len(PROOF_SUFFIX)])


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is signed, binding the type to the payload."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class ValidationCheck:
    """One expectation's outcome, aggregated over the whole output. Counts only, never values."""

    expectation: str  # the Great Expectations type, e.g. expect_column_values_to_not_match_regex
    column: str | None  # None for a table-level expectation
    check: str  # what it means, e.g. "no e-mail addresses"
    success: bool
    element_count: int = 0
    unexpected_count: int = 0
    missing_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "column": self.column,
            "check": self.check,
            "success": self.success,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "missing_count": self.missing_count,
        }


@dataclass(frozen=True)
class MaskingFacts:
    """What a masking run knows when it asks for a proof."""

    output_name: str
    output_sha256: str
    sources: Sequence[tuple[str, str]]  # (name, sha256)
    columns: Mapping[str, Mapping[str, Any]]  # column -> {"method": ..., parameters}
    checks: Sequence[ValidationCheck]
    row_count: int
    validator: Mapping[str, str]  # {"name": "great_expectations", "version": "1.24.1"}
    tools: Mapping[str, str] = field(default_factory=dict)

    @property
    def validation_success(self) -> bool:
        return bool(self.checks) and all(check.success for check in self.checks)


def build_statement(
    policy: Policy, facts: MaskingFacts, keyid: str, actor: str, now: datetime | None = None
) -> dict[str, Any]:
    """The in-toto Statement v1 of a masking run."""
    from envguard import __version__

    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": facts.output_name, "digest": {"sha256": facts.output_sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "sources": [{"name": n, "digest": {"sha256": d}} for n, d in facts.sources],
            "columns": {name: dict(rule) for name, rule in facts.columns.items()},
            "policy": {"sha256": policy.sha256},
            "validation": {
                **facts.validator,
                "success": facts.validation_success,
                "row_count": facts.row_count,
                "checks": [check.to_dict() for check in facts.checks],
            },
            "tools": {"envguard": __version__, **facts.tools},
            "time": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "signer": {"keyid": keyid, "identity": actor},
        },
    }


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_statement(
    policy: Policy, statement: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A DSSE envelope of ``statement`` signed with this installation's key."""
    from envguard.keys import signing_key

    key = signing_key(policy, environ)
    payload = _canonical(statement)
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key.key_id, "sig": base64.b64encode(signature).decode()}],
    }


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def create_proof(
    policy: Policy,
    facts: MaskingFacts,
    proof_path: Path,
    actor: str,
    environ: Mapping[str, str] | None = None,
) -> MaskingProof:
    """Build, sign and write the proof; only for a validation that passed."""
    from envguard.keys import signing_key

    if not facts.validation_success:
        raise ValueError("a masking proof is only written for a validation that passed")
    statement = build_statement(policy, facts, signing_key(policy, environ).key_id, actor)
    envelope = sign_statement(policy, statement, environ)
    _write_atomically(proof_path, json.dumps(envelope, indent=2) + "\n")
    return _parse(proof_path, envelope)


@dataclass(frozen=True)
class MaskingProof:
    """A proof as read from its file: the envelope and the statement inside it."""

    path: Path
    envelope: Mapping[str, Any]
    payload: bytes
    statement: Mapping[str, Any]

    @property
    def proof_id(self) -> str:
        """sha256 of the signed payload: names this statement wherever it is copied."""
        return hashlib.sha256(self.payload).hexdigest()

    @property
    def predicate(self) -> Mapping[str, Any]:
        value = self.statement.get("predicate")
        return value if isinstance(value, Mapping) else {}

    @property
    def subject(self) -> tuple[str | None, str | None]:
        """(name, sha256) of the masked output."""
        subjects = self.statement.get("subject")
        if not isinstance(subjects, list) or len(subjects) != 1:
            return None, None
        first = subjects[0] if isinstance(subjects[0], Mapping) else {}
        digest = first.get("digest")
        sha = digest.get("sha256") if isinstance(digest, Mapping) else None
        return _str_or_none(first.get("name")), _str_or_none(sha)

    @property
    def sources(self) -> list[tuple[str, str]]:
        found = []
        for item in self.predicate.get("sources") or []:
            if isinstance(item, Mapping) and isinstance(item.get("digest"), Mapping):
                found.append((str(item.get("name")), str(item["digest"].get("sha256"))))
        return found

    @property
    def policy_sha256(self) -> str | None:
        policy = self.predicate.get("policy")
        return _str_or_none(policy.get("sha256")) if isinstance(policy, Mapping) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def read_proof(path: Path | str) -> MaskingProof:
    """Read a proof file; :class:`InputError` naming the file when it is not a DSSE envelope."""
    path = Path(path)
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(path), "proof file not found") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a folder; name a proof file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot read the proof: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            str(path), f"not a masking proof: invalid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    return _parse(path, envelope)


def _parse(path: Path, envelope: Any) -> MaskingProof:
    def bad(message: str) -> InputError:
        return InputError(str(path), f"not a masking proof: {message}")

    if not isinstance(envelope, dict):
        raise bad("expected a DSSE envelope (a JSON object)")
    payload_b64 = envelope.get("payload")
    if not isinstance(payload_b64, str):
        raise bad("the DSSE envelope has no 'payload'")
    try:
        payload = base64.b64decode(payload_b64, validate=True)
        statement = json.loads(payload)
    except (binascii.Error, ValueError):
        raise bad("'payload' is not base64 of a JSON statement") from None
    if not isinstance(statement, dict):
        raise bad("the statement is not a JSON object")
    return MaskingProof(path, envelope, payload, statement)


def verify_proof(
    policy: Policy,
    proof_path: Path | str,
    data_path: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    known_policy_sha256s: Iterable[str] = (),
) -> ProofVerification:
    """Check a proof: its signature against the policy's keys trusted for ``masking``, its subject
    digest against the data, its validation, and its policy. Every failure becomes a reason.

    ``data_path`` defaults to the file the proof sits beside (``OUTPUT`` for
    ``OUTPUT.envguard-proof.json``) when that file exists; otherwise the data is not checked and
    a note says so. ``known_policy_sha256s`` lists earlier policies accepted besides the current.
    See :mod:`envguard.proof_verification`.
    """
    from envguard.proof_verification import verify

    return verify(policy, proof_path, data_path, environ, known_policy_sha256s)


def verify_envelope(
    policy: Policy,
    envelope: Mapping[str, Any],
    subject_sha256: str | None,
    environ: Mapping[str, str] | None = None,
    known_policy_sha256s: Iterable[str] = (),
) -> list[str]:
    """Why a proof recorded in the lineage log does not hold for the data ``subject_sha256``:
    signature, statement, subject digest, validation and policy (an empty list: it holds).
    ``subject_sha256`` None: the digest was bound when the proof was recorded (a DVC output
    known by DVC's md5, whose proof was checked against the cached file)."""
    return check_envelope(policy, envelope, subject_sha256, environ, known_policy_sha256s)[1]


def check_envelope(
    policy: Policy,
    envelope: Mapping[str, Any],
    subject_sha256: str | None,
    environ: Mapping[str, str] | None = None,
    known_policy_sha256s: Iterable[str] = (),
) -> tuple[str | None, list[str]]:
    """:func:`verify_envelope`, with the name of the trusted signer whose signature verified
    (None when none did): ``(signer, problems)``."""
    from envguard.decisions import Reason
    from envguard.proof_verification import (
        _policy_reasons,
        _signature_reasons,
        _statement_reasons,
        _validation_reasons,
    )

    try:
        proof = _parse(Path("<lineage log>"), dict(envelope))
    except InputError as exc:
        return None, [str(exc)]
    signer, reasons = _signature_reasons(policy, proof, environ)
    reasons.extend(_statement_reasons(proof))
    if subject_sha256 is not None and proof.subject[1] != subject_sha256:
        reasons.append(Reason("proof-digest", "the proof is about other data", "mask again"))
    reasons.extend(_validation_reasons(proof))
    reasons.extend(_policy_reasons(policy, proof, known_policy_sha256s))
    return signer, [f"{r.rule}: {r.message}" for r in reasons]
