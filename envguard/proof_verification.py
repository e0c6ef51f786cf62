"""Verifying a masking proof: every reason it fails, not the first.

The checks: the DSSE signature against the keys the policy trusts for ``masking``
(:func:`envguard.keys.verify_signature`); the statement's types and subject; the subject's sha256
against the data; the recorded validation; the policy the proof was made under. A proof that
cannot be read at all raises :class:`~envguard.errors.InputError` (exit 2 on the command line).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.decisions import Reason
from envguard.digests import sha256_file
from envguard.proofs import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    PURPOSE,
    STATEMENT_TYPE,
    MaskingProof,
    data_path_for,
    pae,
    read_proof,
)

if TYPE_CHECKING:
    from envguard.policy import Policy

__all__ = ["ProofVerification", "verify"]


@dataclass(frozen=True)
class ProofVerification:
    """The outcome of :func:`verify_proof`: valid when there is no reason."""

    proof: MaskingProof
    data_path: Path | None
    data_sha256: str | None
    signer: str | None  # the trusted signer's name in the policy ("self" for this installation)
    reasons: tuple[Reason, ...]
    notes: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, Any]:
        name, sha = self.proof.subject
        return {
            "valid": self.valid,
            "proof": str(self.proof.path),
            "proof_id": self.proof.proof_id,
            "subject": {"name": name, "sha256": sha},
            "data": str(self.data_path) if self.data_path else None,
            "data_sha256": self.data_sha256,
            "sources": [{"name": n, "sha256": d} for n, d in self.proof.sources],
            "policy_sha256": self.proof.policy_sha256,
            "signer": self.signer,
            "reasons": [
                {"rule": r.rule, "message": r.message, "remedy": r.remedy} for r in self.reasons
            ],
            "notes": list(self.notes),
        }


def _signature_reasons(
    policy: Policy, proof: MaskingProof, environ: Mapping[str, str] | None
) -> tuple[str | None, list[Reason]]:
    from envguard.keys import verify_signature

    remedy = (
        "re-run envguard mask with a key the policy trusts for masking, or add the signer's "
        "public key under [signers] with purposes = ['masking']"
    )
    envelope = proof.envelope
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        return None, [
            Reason(
                "proof-signature",
                f"payloadType is {envelope.get('payloadType')!r}, expected {PAYLOAD_TYPE!r}",
                remedy,
            )
        ]
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        return None, [Reason("proof-signature", "the proof carries no signature", remedy)]
    signed = pae(PAYLOAD_TYPE, proof.payload)
    failures: list[str] = []
    for entry in signatures:
        if not isinstance(entry, Mapping):
            failures.append("a signature entry is not an object")
            continue
        keyid, sig = entry.get("keyid"), entry.get("sig")
        try:
            raw = base64.b64decode(str(sig), validate=True)
            trusted = verify_signature(policy, PURPOSE, str(keyid), raw, signed, environ)
        except (binascii.Error, ValueError) as exc:
            failures.append(str(exc))
            continue
        return trusted.name, []
    return None, [Reason("proof-signature", "; ".join(failures), remedy)]


def _statement_reasons(proof: MaskingProof) -> list[Reason]:
    statement = proof.statement
    remedy = "use a proof written by envguard mask"
    reasons = []
    if statement.get("_type") != STATEMENT_TYPE:
        reasons.append(
            Reason(
                "proof-format", f"_type is {statement.get('_type')!r}, not {STATEMENT_TYPE}", remedy
            )
        )
    if statement.get("predicateType") != PREDICATE_TYPE:
        reasons.append(
            Reason(
                "proof-format",
                f"predicateType is {statement.get('predicateType')!r}, not {PREDICATE_TYPE}",
                remedy,
            )
        )
    if proof.subject[1] is None:
        reasons.append(Reason("proof-format", "no single subject with a sha256 digest", remedy))
    return reasons


def _validation_reasons(proof: MaskingProof) -> list[Reason]:
    validation = proof.predicate.get("validation")
    if not isinstance(validation, Mapping):
        validation = {}
    checks = validation.get("checks")
    remedy = "mask again (envguard mask) until the validation passes; add rules for failed columns"
    if not isinstance(checks, list) or not checks:
        return [Reason("proof-validation", "the proof records no validation checks", remedy)]
    failed = [c for c in checks if not (isinstance(c, Mapping) and c.get("success") is True)]
    if validation.get("success") is not True or failed:
        names = ", ".join(
            f"{c.get('column') or 'table'}: {c.get('check')}"
            for c in failed
            if isinstance(c, Mapping)
        )
        return [
            Reason(
                "proof-validation", f"the validation did not pass ({names or 'success'})", remedy
            )
        ]
    return []


def _policy_reasons(policy: Policy, proof: MaskingProof, known: Iterable[str]) -> list[Reason]:
    made_under = proof.policy_sha256
    if made_under is None:
        return [
            Reason("proof-policy", "the proof names no policy sha256", "mask again (envguard mask)")
        ]
    if made_under == policy.sha256 or made_under in set(known):
        return []
    return [
        Reason(
            "proof-policy",
            f"made under policy sha256 {made_under[:12]}…, which differs from the current "
            f"policy {policy.path} (sha256 {policy.sha256[:12]}…); its masking rules may differ",
            "mask the sources again under the current policy (envguard mask)",
        )
    ]


def verify(
    policy: Policy,
    proof_path: Path | str,
    data_path: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    known_policy_sha256s: Iterable[str] = (),
) -> ProofVerification:
    """See :func:`envguard.proofs.verify_proof`."""
    proof = read_proof(proof_path)
    notes: list[str] = []
    if data_path is None:
        beside = data_path_for(proof.path)
        if beside is not None and beside.is_file():
            data_path = beside
        else:
            notes.append("no data checked: pass the masked file to compare its sha256")
    signer, reasons = _signature_reasons(policy, proof, environ)
    reasons.extend(_statement_reasons(proof))
    data_sha256 = None
    if data_path is not None:
        data_path = Path(data_path)
        data_sha256 = sha256_file(data_path)
        expected = proof.subject[1]
        if expected is not None and expected != data_sha256:
            reasons.append(
                Reason(
                    "proof-digest",
                    f"{data_path} has sha256 {data_sha256[:12]}…, but the proof is about "
                    f"{proof.subject[0]!r} with sha256 {expected[:12]}…: the data changed after "
                    f"it was proven, or the proof belongs to another file",
                    "use the file the proof was made for, or mask the sources again",
                )
            )
    reasons.extend(_validation_reasons(proof))
    reasons.extend(_policy_reasons(policy, proof, known_policy_sha256s))
    return ProofVerification(
        proof,
        Path(data_path) if data_path else None,
        data_sha256,
        signer,
        tuple(reasons),
        tuple(notes),
    )
