"""Verification of the lineage log: the hash chain, the chain head, and the signed checkpoints.

The chain is valid when, for every event ``n``, (1) its stored hash equals
``sha256(f"{n}\\n{prev_hash}\\n" + body)`` over its stored body (the record itself), (2) its
``prev_hash`` equals the stored hash of event ``n - 1``, and (3) the sequence numbers have no
gap. Each check is local to two neighbouring events, so large logs are verified in slices, in
parallel processes, each streaming its slice through a plain database cursor (memory stays
flat). Every finding is named by sequence number: an edited event, a deleted event, an inserted
or reordered event, a truncated tail (events removed after a checkpoint), a checkpoint that does
not match the chain or whose signature fails; with ``indexes``, also derived data that does not
match the events (:mod:`envguard.lineage.index_check`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from envguard.lineage.events import GENESIS, chain_hash

if TYPE_CHECKING:
    from envguard.policy import Policy

__all__ = ["Finding", "VerifyReport", "checkpoint_verifier", "verify_store"]

#: Below this many events, verify in this process; above, in slices across processes.
PARALLEL_FROM = 200_000
_COLUMNS = "seq, body, hash"
_FETCH = 10_000
_NONE = -(2**64)  # below any sequence number a database can hold


@dataclass(frozen=True)
class Finding:
    seq: int
    problem: str  # edited, deleted, inserted-or-reordered, truncated, head, checkpoint, index
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "problem": self.problem, "message": self.message}


@dataclass
class VerifyReport:
    events: int = 0
    head_seq: int = 0
    checkpoints: int = 0
    pending_spool: int = 0
    indexes_checked: bool = False
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
            "indexes_checked": self.indexes_checked,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass
class _Slice:
    """What one slice found, and its two ends, so that slices can be joined."""

    count: int = 0
    first: tuple[int, str] | None = None  # (seq, prev_hash column) of its first event
    last: tuple[int, str] | None = None  # (seq, stored hash) of its last event
    findings: list[Finding] = field(default_factory=list)
    hashes: dict[int, str] = field(default_factory=dict)  # at the checkpoints' sequences
    implied: dict[str, int] = field(default_factory=dict)  # index rows its events imply


class _Reader:
    """Rows of one slice (low < seq <= high), in order, in batches, through a plain DBAPI cursor
    (no SQLAlchemy per row); and single ``prev_hash`` values when a row needs a closer look."""

    def __init__(self, url: str) -> None:
        from envguard.lineage.sql import _make_engine

        self.engine = _make_engine(url, 60.0)
        self.marker = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self.raw = self.engine.raw_connection()
        self.cursor = self.raw.cursor()

    def batches(self, low: int, high: int | None) -> Iterator[list[Any]]:
        m = self.marker
        bound = "" if high is None else f" AND seq <= {m}"
        last = low
        while True:
            params: tuple[int, ...] = (last,) if high is None else (last, high)
            self.cursor.execute(
                f"SELECT {_COLUMNS} FROM events WHERE seq > {m}{bound} "  # noqa: S608 - fixed columns, bound values
                f"ORDER BY seq LIMIT {_FETCH}",
                params,
            )
            rows: list[Any] = list(self.cursor.fetchall())
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def prev_hash(self, seq: int) -> str:
        self.cursor.execute(f"SELECT prev_hash FROM events WHERE seq = {self.marker}", (seq,))  # noqa: S608 - fixed text
        row: Any = self.cursor.fetchone()
        return str(row[0])

    def close(self) -> None:
        try:
            self.raw.rollback()
            self.raw.close()
        finally:
            self.engine.dispose()


def _index_slice(url: str, low: int, high: int | None) -> tuple[list[Finding], dict[str, int]]:
    from envguard.lineage.index_check import index_findings
    from envguard.lineage.sql import _make_engine

    engine = _make_engine(url, 60.0)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            postgres = engine.dialect.name == "postgresql"
            found, implied = index_findings(cursor, postgres, low or None, high)
            return found, implied
        finally:
            raw.rollback()
            raw.close()
    finally:
        engine.dispose()


def _extra_index_rows(url: str, implied: dict[str, int]) -> list[Finding]:
    from envguard.lineage.index_check import extra_rows
    from envguard.lineage.sql import _make_engine

    engine = _make_engine(url, 60.0)
    try:
        raw = engine.raw_connection()
        try:
            return extra_rows(raw.cursor(), engine.dialect.name == "postgresql", implied)
        finally:
            raw.rollback()
            raw.close()
    finally:
        engine.dispose()


def _verify_slice(
    url: str, low: int, high: int | None, wanted: frozenset[int], indexes: bool = False
) -> _Slice:
    out = _Slice()
    if indexes:
        found, out.implied = _index_slice(url, low, high)
        out.findings.extend(found)
    findings = out.findings
    reader = _Reader(url)
    sha256 = hashlib.sha256
    before, before_hash = _NONE, ""  # the event before (none yet in this slice)
    try:
        for rows in reader.batches(low, high):
            out.count += len(rows)
            for seq, body, stored in rows:
                # The usual case, checked inline: the next number, hashed over the hash before.
                if (
                    seq != before + 1
                    or sha256(f"{seq}\n{before_hash}\n{body}".encode()).hexdigest() != stored
                ):
                    prev_col = reader.prev_hash(seq)
                    if chain_hash(seq, prev_col, body) != stored:
                        findings.append(_diagnose(seq, prev_col, body, stored))
                    if before == _NONE:
                        out.first = (seq, prev_col)
                    else:
                        findings.extend(_link((before, before_hash), seq, prev_col))
                before, before_hash = seq, stored
                if seq in wanted:
                    out.hashes[seq] = stored
    finally:
        reader.close()
    out.last = (before, before_hash) if before != _NONE else None
    return out


def _link(previous: tuple[int, str], seq: int, prev_col: str) -> list[Finding]:
    """Check that event ``seq`` follows ``previous`` (its sequence and its hash)."""
    before, before_hash = previous
    if seq > before + 1:
        span = f"{before + 1}" if seq == before + 2 else f"{before + 1}..{seq - 1}"
        if prev_col == before_hash:
            return [
                Finding(
                    before + 1,
                    "inserted-or-reordered",
                    f"event(s) {span} are missing but event {seq} links to event "
                    f"{before}: the log was renumbered",
                )
            ]
        return [Finding(before + 1, "deleted", f"event(s) {span} are missing")]
    if prev_col != before_hash:
        return [
            Finding(
                seq,
                "inserted-or-reordered",
                f"event {seq} does not follow event {before}: the event before it was "
                f"changed, inserted or moved",
            )
        ]
    return []


def _diagnose(seq: int, prev_col: str, body: str, stored: str) -> Finding:
    for delta in (-1, 1, -2, 2):
        if chain_hash(seq + delta, prev_col, body) == stored:
            return Finding(
                seq,
                "inserted-or-reordered",
                f"event {seq} was written as event {seq + delta}: events were "
                f"inserted, removed or reordered before it",
            )
    return Finding(seq, "edited", f"event {seq} was altered after it was recorded")


def verify_store(
    store: Any,
    verify_checkpoint: Callable[[str, bytes, bytes], str | None],
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    indexes: bool = False,
) -> VerifyReport:
    """Verify ``store``. ``verify_checkpoint(keyid, signature, message)`` returns None when the
    signature is good, else the reason it is not. ``indexes``: also check the data derived from
    the events (:mod:`envguard.lineage.index_check`)."""
    report = VerifyReport()
    checkpoints = store.checkpoints()
    wanted = frozenset(cp.seq for cp in checkpoints)
    head_seq, head_hash = store.head()
    report.head_seq = head_seq
    slices = _run_slices(store.url, head_seq, wanted, workers, indexes)
    previous: tuple[int, str] | None = None
    hashes: dict[int, str] = {}
    for part in slices:
        report.events += part.count
        report.findings.extend(part.findings)
        hashes.update(part.hashes)
        if part.first is None:
            continue
        if previous is None:
            first_seq, first_prev = part.first
            if first_seq != 1 or first_prev != GENESIS:
                report.findings.extend(_link((0, GENESIS), first_seq, first_prev))
        else:
            report.findings.extend(_link(previous, *part.first))
        previous = part.last
        if progress is not None:
            progress(report.events)
    if indexes:
        report.indexes_checked = True
        implied: dict[str, int] = {}
        for part in slices:
            for table, n in part.implied.items():
                implied[table] = implied.get(table, 0) + n
        report.findings.extend(_extra_index_rows(store.url, implied))
    last_seq, last_hash = previous if previous else (0, GENESIS)
    if head_seq != last_seq or head_hash != last_hash:
        report.findings.append(
            Finding(
                last_seq,
                "head",
                f"the chain head says event {head_seq} but the last event is {last_seq}",
            )
        )
    report.findings.extend(_check_checkpoints(checkpoints, hashes, last_seq, verify_checkpoint))
    report.checkpoints = len(checkpoints)
    report.findings.sort(key=lambda f: f.seq)
    return report


def _check_checkpoints(
    checkpoints: Sequence[Any],
    hashes: dict[int, str],
    last_seq: int,
    verify_checkpoint: Callable[[str, bytes, bytes], str | None],
) -> list[Finding]:
    findings: list[Finding] = []
    for cp in checkpoints:
        if cp.seq > last_seq:
            findings.append(
                Finding(
                    cp.seq,
                    "truncated",
                    f"checkpoint {cp.seq} was signed but the log ends at "
                    f"{last_seq}: events {last_seq + 1}..{cp.seq} (at least) were removed",
                )
            )
        elif hashes.get(cp.seq) != cp.head_hash:
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
    return findings


def _run_slices(
    url: str, head_seq: int, wanted: frozenset[int], workers: int | None, indexes: bool
) -> list[_Slice]:
    count = workers or os.cpu_count() or 1
    if head_seq < PARALLEL_FROM or count < 2 or url in ("sqlite://", "sqlite:///:memory:"):
        return [_verify_slice(url, 0, None, wanted, indexes)]
    size = -(-head_seq // (count * 4))  # a few slices per worker, so they finish together
    bounds: list[tuple[int, int | None]] = [(low, low + size) for low in range(0, head_seq, size)]
    bounds[-1] = (bounds[-1][0], None)  # the last slice takes anything past the head, too
    import multiprocessing

    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
        futures = [
            pool.submit(_verify_slice, url, low, high, wanted, indexes) for low, high in bounds
        ]
        return [future.result() for future in futures]


def checkpoint_verifier(policy: Policy) -> Callable[[str, bytes, bytes], str | None]:
    """Check checkpoint signatures against the keys the policy trusts for ``checkpoint``."""
    from envguard.keys import verify_signature

    def verify(keyid: str, signature: bytes, message: bytes) -> str | None:
        try:
            verify_signature(policy, "checkpoint", keyid, signature, message)
        except ValueError as exc:
            return str(exc)
        return None

    return verify
