"""Verification of the lineage log: the hash chain, the chain head, and the signed checkpoints.

Streams the events in order (memory stays flat) and names every finding by sequence number: an
edited event, a deleted event, an inserted or reordered event, a truncated tail (events removed
after a checkpoint), a checkpoint that does not match the chain or whose signature fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envguard.lineage.events import GENESIS, body_text, chain_hash

__all__ = ["Finding", "VerifyReport", "verify_store"]


@dataclass(frozen=True)
class Finding:
    seq: int
    problem: str  # edited, deleted, inserted-or-reordered, truncated, head, checkpoint
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "problem": self.problem, "message": self.message}


@dataclass
class VerifyReport:
    events: int = 0
    head_seq: int = 0
    checkpoints: int = 0
    pending_spool: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "checkpoints": self.checkpoints,
            "pending_spool": self.pending_spool,
            "findings": [f.to_dict() for f in self.findings],
        }


def verify_store(
    store: Any,
    verify_checkpoint: Callable[[str, bytes, bytes], str | None],
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify ``store``. ``verify_checkpoint(keyid, signature, message)`` returns None when the
    signature is good, else the reason it is not."""
    report = VerifyReport()
    findings = report.findings
    hashes_at: dict[int, str] = {}
    checkpoints = store.checkpoints()
    wanted = {cp.seq for cp in checkpoints}
    prev = GENESIS
    expected = 1
    last = 0
    for row in store.chain_rows():
        seq, time, actor, env, kind, entities, links, payload, policy, prev_col, stored = row
        report.events += 1
        if seq != expected:
            if seq > expected:
                span = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
                findings.append(Finding(expected, "deleted", f"event(s) {span} are missing"))
            prev = prev_col  # re-synchronise, so that later problems are still found
        body = body_text(
            actor=actor,
            entities_json=entities,
            environment=env,
            kind=kind,
            links_json=links,
            payload_json=payload,
            policy_sha256=policy,
            time=time,
        )
        if chain_hash(seq, prev, body) != stored:
            findings.append(_diagnose(seq, prev, prev_col, body, stored))
            prev = stored
        else:
            prev = stored
        if seq in wanted:
            hashes_at[seq] = stored
        expected = seq + 1
        last = seq
        if progress is not None and report.events % 50000 == 0:
            progress(report.events)
    head_seq, head_hash = store.head()
    report.head_seq = head_seq
    if head_seq != last or (last and head_hash != prev):
        findings.append(
            Finding(
                last, "head", f"the chain head says event {head_seq} but the last event is {last}"
            )
        )
    for cp in checkpoints:
        report.checkpoints += 1
        if cp.seq > last:
            findings.append(
                Finding(
                    cp.seq,
                    "truncated",
                    f"checkpoint {cp.seq} was signed but the log ends at {last}: "
                    f"events {last + 1}..{cp.seq} (at least) were removed",
                )
            )
        elif hashes_at.get(cp.seq) != cp.head_hash:
            findings.append(
                Finding(
                    cp.seq,
                    "checkpoint",
                    f"checkpoint {cp.seq} does not match the event it signed: "
                    f"the log was rewritten up to there",
                )
            )
        problem = verify_checkpoint(cp.keyid, cp.signature, cp.message())
        if problem:
            findings.append(Finding(cp.seq, "checkpoint", f"checkpoint {cp.seq}: {problem}"))
    findings.sort(key=lambda f: f.seq)
    return report


def _diagnose(seq: int, prev: str, prev_col: str, body: str, stored: str) -> Finding:
    for delta in (-1, 1, -2, 2):
        if chain_hash(seq + delta, prev_col, body) == stored:
            return Finding(
                seq,
                "inserted-or-reordered",
                f"event {seq} was written as event {seq + delta}: events were "
                f"inserted, removed or reordered before it",
            )
    if chain_hash(seq, prev_col, body) == stored and prev_col != prev:
        return Finding(
            seq,
            "inserted-or-reordered",
            f"event {seq} does not follow event {seq - 1}: the event before it was "
            f"changed, inserted or moved",
        )
    return Finding(seq, "edited", f"event {seq} was altered after it was recorded")
