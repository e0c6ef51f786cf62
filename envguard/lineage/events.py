"""Events of the lineage log and their hash chain.

An event is: a sequence number, a UTC time, the actor, the environment, a kind, the entities it
concerns, the links it adds to the lineage graph, a JSON payload, the sha256 of the policy it was
made under, the previous event's hash and its own hash.

The hash of event ``n`` is::

    sha256( f"{seq}\\n{prev_hash}\\n" + body )            (UTF-8 bytes, hex digest)

where ``prev_hash`` is the hash of event ``n - 1`` (64 zeros for the first event) and ``body`` is
the canonical JSON of the other fields: an object with the keys ``actor``, ``entities``,
``environment``, ``kind``, ``links``, ``payload``, ``policy_sha256``, ``time``, keys sorted at
every level, no whitespace, non-ASCII escaped, i.e. Python's
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``. The store keeps
that body as it was hashed (the ``body`` column); its ``time``, ``actor``, ``environment``,
``kind`` and ``policy_sha256`` columns are copies for queries. A third party re-verifies the log,
and the copies, with::

    import hashlib, json, sqlite3
    db = sqlite3.connect(".envguard/lineage.db")
    prev, expected = "0" * 64, 1
    names = ("time", "actor", "environment", "kind", "policy_sha256")
    rows = db.execute(f"SELECT seq, body, prev_hash, hash, {', '.join(names)} FROM events"
                      " ORDER BY seq")
    for seq, body, prev_col, digest, *copies in rows:
        assert seq == expected, f"event {expected} is missing"
        event = json.loads(body)
        canonical = json.dumps(event, sort_keys=True, separators=(",", ":"))
        computed = hashlib.sha256(f"{seq}\\n{prev}\\n{body}".encode()).hexdigest()
        assert body == canonical and prev_col == prev and computed == digest, \\
            f"event {seq} was altered"
        assert copies == [event[n] for n in names], f"event {seq}'s columns were altered"
        prev, expected = digest, seq + 1
    print("chain intact up to", expected - 1)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "GENESIS",
    "KINDS",
    "Event",
    "EventDraft",
    "Link",
    "canonical_json",
    "chain_hash",
    "utc_now",
]

GENESIS = "0" * 64

#: The kinds of event envguard records. Plugins may add their own, prefixed with their name.
KINDS = {
    "dataset.registered": "a dataset's origin environment was declared or found",
    "dataset.used": "a run (or process) used a dataset",
    "derivation": "outputs were derived from inputs by a step (a DVC stage, a masking, ...)",
    "artifact.logged": "a run logged an artifact",
    "proof.recorded": "a masking proof was recorded",
    "approval.granted": "an approval was granted",
    "approval.revoked": "an approval was revoked",
    "promotion.requested": "a promotion was requested",
    "promotion.allowed": "a promotion was allowed",
    "promotion.denied": "a promotion was denied",
    "data.moved": "data moved between environments",
    "decision": "a gate decided (data use, movement)",
    "violation.found": "a violation was found (at a gate or in a scan)",
    "object.stored": "an object was stored in a remote or bucket",
    "scan.completed": "an audit scan ended (counts, new and resolved findings)",
}

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode
_quote: Any = json.encoder.encode_basestring_ascii  # C; equals _dumps() of a str


def canonical_json(value: Any) -> str:
    return _dumps(value)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Link:
    """An edge of the lineage graph: ``src`` flows into ``dst`` (``relation`` says how)."""

    src: str
    dst: str
    relation: str = "derived"

    def as_list(self) -> list[str]:
        return [self.src, self.dst, self.relation]


@dataclass(frozen=True)
class EventDraft:
    """What a caller records; the store adds sequence, time (unless given) and hashes."""

    kind: str
    entities: Sequence[str] = ()
    links: Sequence[Link] = ()
    payload: Mapping[str, Any] = field(default_factory=dict)
    actor: str = ""
    environment: str = ""
    policy_sha256: str = ""
    time: str = ""

    def all_entities(self) -> list[str]:
        """The entities, plus both ends of every link, each once, in order of appearance."""
        seen: dict[str, None] = dict.fromkeys(self.entities)
        for link in self.links:
            seen.setdefault(link.src)
            seen.setdefault(link.dst)
        return list(seen)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "entities": list(self.entities),
            "links": [link.as_list() for link in self.links],
            "payload": dict(self.payload),
            "actor": self.actor,
            "environment": self.environment,
            "policy_sha256": self.policy_sha256,
            "time": self.time,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventDraft:
        return cls(
            kind=data["kind"],
            entities=tuple(data.get("entities", ())),
            links=tuple(Link(*item) for item in data.get("links", ())),
            payload=dict(data.get("payload", {})),
            actor=data.get("actor", ""),
            environment=data.get("environment", ""),
            policy_sha256=data.get("policy_sha256", ""),
            time=data.get("time", ""),
        )


def body_text(
    *,
    actor: str,
    entities_json: str,
    environment: str,
    kind: str,
    links_json: str,
    payload_json: str,
    policy_sha256: str,
    time: str,
) -> str:
    """The canonical body from stored columns (entities, links, payload already canonical)."""
    return (
        f'{{"actor":{_quote(actor)},"entities":{entities_json},'
        f'"environment":{_quote(environment)},"kind":{_quote(kind)},"links":{links_json},'
        f'"payload":{payload_json},"policy_sha256":{_quote(policy_sha256)},"time":{_quote(time)}}}'
    )


def chain_hash(seq: int, prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{seq}\n{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class Event:
    seq: int
    time: str
    actor: str
    environment: str
    kind: str
    entities: list[str]
    links: list[Link]
    payload: dict[str, Any]
    policy_sha256: str
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "actor": self.actor,
            "environment": self.environment,
            "kind": self.kind,
            "entities": self.entities,
            "links": [link.as_list() for link in self.links],
            "payload": self.payload,
            "policy_sha256": self.policy_sha256,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
