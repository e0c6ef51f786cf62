"""The scan's second look at the masking proofs behind ``masked`` links.

A ``masked`` link (source -> masked output) stops production lineage only while a masking proof
recorded for it still holds. When the scan judges whether data has production lineage, it
verifies every such link it meets again, now, with :mod:`envguard.proof_verification`:

* the proof as the lineage log recorded it (its DSSE envelope): signature against the keys the
  policy trusts for masking *today* (a key revoked since no longer counts), statement, subject
  digest (the link's output), validation, and the policy it was made under (one the log knows);
* the proof file, where the log recorded its path and the file is here: the same checks on the
  file as it is now (an altered file fails), and its subject must still be the link's output.

A link holds when one of its recorded proofs passes both. A link that does not hold is walked
like any derivation (fail closed), and its reasons are kept as evidence for the finding.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envguard.policy import Policy

__all__ = ["MaskedLinks"]


class MaskedLinks:
    """Re-verifies the proofs behind ``masked`` links, each link once per scan.

    Use :meth:`broken` as the ``follow_masked`` callback of
    :func:`envguard.lineage.origin.lineage_origins`; :attr:`failures` then holds, for each link
    that no longer holds, the evidence: ``{"source", "output", "proofs": [{"proof", "file",
    "reasons"}]}``."""

    def __init__(self, policy: Policy, store: Any) -> None:
        self.policy = policy
        self.store = store
        self.failures: dict[tuple[str, str], dict[str, Any]] = {}
        self._held: dict[tuple[str, str], bool] = {}
        self._known: list[str] | None = None

    def broken(self, src: str, dst: str) -> bool:
        """True when no proof recorded for the masked link ``src -> dst`` holds now."""
        key = (src, dst)
        if key not in self._held:
            problems = self._check(src, dst)
            self._held[key] = problems is None
            if problems is not None:
                self.failures[key] = {"source": src, "output": dst, "proofs": problems}
        return not self._held[key]

    def upstream_failures(self, entity: str) -> list[dict[str, Any]]:
        """The failures on links whose output is ``entity`` or upstream of it."""
        if not self.failures:
            return []
        from envguard.lineage.origin import upstream_graph

        nodes = {
            entity,
            *(src for edges in upstream_graph(self.store, entity).values() for src, _ in edges),
        }
        return [f for (_src, dst), f in sorted(self.failures.items()) if dst in nodes]

    def _known_policies(self) -> list[str]:
        if self._known is None:
            self._known = [str(h["sha256"]) for h in self.store.policy_history()]
        return self._known

    def _check(self, src: str, dst: str) -> list[dict[str, Any]] | None:
        """None when a recorded proof holds; else each recorded proof and why it fails."""
        problems: list[dict[str, Any]] = []
        for proof_id, envelope, path in self._recorded(src, dst):
            reasons = self._reasons(envelope, path, dst)
            if not reasons:
                return None
            problems.append({"proof": proof_id, "file": path, "reasons": reasons})
        if not problems:
            problems.append(
                {"proof": None, "file": None, "reasons": ["no masking proof is recorded for it"]}
            )
        return problems

    def _recorded(self, src: str, dst: str) -> list[tuple[str, dict[str, Any], str | None]]:
        """(proof entity, envelope, proof file or None) of every event that recorded the link,
        newest first."""
        rows = self.store.read(
            "SELECT ev.body FROM events ev JOIN edges ed ON ed.seq = ev.seq "
            "WHERE ed.src = ? AND ed.dst = ? AND ed.relation = 'masked' ORDER BY ev.seq DESC",
            [src, dst],
        )
        found: list[tuple[str, dict[str, Any], str | None]] = []
        for (body,) in rows:
            event = json.loads(body)
            if not any(link[:3] == [src, dst, "masked"] for link in event.get("links", [])):
                continue  # an index row that its event does not hold (audit verify --indexes)
            data = event.get("payload") or {}
            entities = event.get("entities") or []
            envelopes = dict(data.get("envelopes") or {})
            proofs = [str(e) for e in entities if str(e).startswith("proof:")]
            if isinstance(data.get("envelope"), dict) and proofs:
                envelopes.setdefault(proofs[0], data["envelope"])
            file = data.get("proof") if isinstance(data.get("proof"), str) else None
            for proof_id, envelope in envelopes.items():
                if isinstance(envelope, dict):
                    found.append((str(proof_id), envelope, file))
        return found

    def _reasons(self, envelope: dict[str, Any], path: str | None, dst: str) -> list[str]:
        from envguard.errors import InputError
        from envguard.proof_verification import verify
        from envguard.proofs import check_envelope

        sha = dst.removeprefix("sha256:") if dst.startswith("sha256:") else None
        known = self._known_policies()
        _signer, problems = check_envelope(self.policy, envelope, sha, known_policy_sha256s=known)
        reasons = [f"as recorded in the log: {p}" for p in problems]
        if path is None or not Path(path).is_file():
            return reasons
        try:
            checked = verify(self.policy, path, known_policy_sha256s=known)
        except InputError as exc:
            return [*reasons, f"the proof file {path}: {exc}"]
        # The data file beside the proof may have been replaced since; what was used is the
        # digest the link names, so the file's subject is compared with that instead.
        reasons.extend(
            f"the proof file {path}: {r.message}"
            for r in checked.reasons
            if r.rule != "proof-digest"
        )
        subject = checked.proof.subject[1]
        if sha is not None and subject != sha:
            reasons.append(
                f"the proof file {path} is about sha256 {str(subject)[:12]}…, not the masked "
                f"output {sha[:12]}… it was recorded for"
            )
        return reasons
