"""Where a dataset comes from: its origin, and any production data upstream of it.

Production lineage propagates along every derivation edge, through any number of steps, except
an edge whose relation is ``masked`` (a masking step whose output carries a masking proof that
verified when it was recorded). :func:`resolve_lineage` answers with a
:class:`~envguard.decisions.DataLineage` for the data-use gate: the production environment found
upstream (or the data's own origin), the chain of steps from there, and the masking proof when
production data is reached only through masking.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from envguard.decisions import DataLineage

if TYPE_CHECKING:
    from envguard.lineage.sql import SqlLineageStore
    from envguard.policy import Policy

__all__ = ["lineage_origins", "origins_of", "resolve_lineage", "upstream_graph"]

ORIGIN_KINDS = ("dataset.registered", "object.stored")
MAX_DEPTH = 64
_CHUNK = 500
_CACHE_MAX = 200_000


def origins_of(store: SqlLineageStore, entities: list[str]) -> dict[str, str]:
    """Entity -> the origin environment recorded first for it.

    Two indexed lookups, driven by the entities: their events (``event_entities``' primary
    key), then those events' kinds and payloads (``events``' primary key). A join lets a planner
    start from every origin event of the store instead (SQLite without statistics does), whose
    cost grows with the store rather than with the question. What this process has read is
    remembered (:class:`_Origins`): a found origin for good, a missing one up to the sequence
    number it was looked for, so that the next question reads only the events after it (a
    dataset used by every run would otherwise cost more with each use)."""
    memo = _origin_memo(store)
    found = {e: memo.found[e] for e in entities if e in memo.found}
    wanted = [e for e in entities if e not in found]
    if not wanted:
        return found
    head = int(store.read("SELECT seq FROM chain_head WHERE id = 1")[0][0])
    by_mark: dict[int, list[str]] = {}
    for entity in wanted:
        by_mark.setdefault(memo.checked.get(entity, 0), []).append(entity)
    touching: dict[int, list[str]] = {}
    for mark, group in by_mark.items():
        for start in range(0, len(group), _CHUNK):
            chunk = group[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = store.read(
                f"SELECT entity, seq FROM event_entities WHERE entity IN ({marks}) "  # noqa: S608 - placeholders only
                "AND seq > ? AND seq <= ?",
                [*chunk, mark, head],
            )
            for entity, seq in rows:
                touching.setdefault(int(seq), []).append(entity)
    seqs = sorted(touching)
    kinds = ",".join("?" * len(ORIGIN_KINDS))
    for start in range(0, len(seqs), _CHUNK):
        chunk_seqs = seqs[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk_seqs))
        rows = store.read(
            f"SELECT seq, body FROM events WHERE seq IN ({marks}) AND kind IN ({kinds}) "  # noqa: S608 - placeholders only
            "ORDER BY seq",
            [*chunk_seqs, *ORIGIN_KINDS],
        )
        for seq, body in rows:
            event = json.loads(body)
            if event.get("kind") not in ORIGIN_KINDS:
                continue  # the kind column is an index copy: the record decides
            origin = (event.get("payload") or {}).get("origin")
            if isinstance(origin, str):
                for entity in touching[int(seq)]:
                    found.setdefault(entity, origin)
    memo.remember(wanted, found, head)
    return found


class _Origins:
    """What this process has read about origins from one store. An entity's first recorded
    origin never changes (the log is append-only and later events come after it), so it is
    kept; an entity without one is kept with the sequence number it was looked for up to."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}
        self.checked: dict[str, int] = {}

    def remember(self, wanted: list[str], found: dict[str, str], head: int) -> None:
        if len(self.found) + len(self.checked) > _CACHE_MAX:
            self.found.clear()
            self.checked.clear()
        for entity in wanted:
            if entity in found:
                self.found[entity] = found[entity]
                self.checked.pop(entity, None)
            else:
                self.checked[entity] = head


def _origin_memo(store: SqlLineageStore) -> _Origins:
    memo: _Origins | None = getattr(store, "_envguard_origins", None)
    if memo is None:
        memo = _Origins()
        store._envguard_origins = memo  # type: ignore[attr-defined]
    return memo


def lineage_origins(
    store: SqlLineageStore,
    policy: Policy,
    entities: list[str],
    follow_masked: Callable[[str, str], bool] | None = None,
) -> dict[str, str | None]:
    """Many entities at once (an inventory of thousands of objects): entity -> the production
    environment reached upstream through edges that are not ``masked``, else the entity's own
    recorded origin, else None. The same walk as :func:`resolve_lineage`, without the chain;
    one query per level of the graph instead of several per entity. ``follow_masked(src, dst)``
    True walks that ``masked`` edge like any other (its masking proof no longer holds); by
    default every ``masked`` edge met is verified again
    (:class:`~envguard.scan.proof_checks.MaskedLinks`), as the data-use gate does: a masked
    link counts only while a proof recorded for it holds."""
    if follow_masked is None:
        from envguard.scan.proof_checks import MaskedLinks

        follow_masked = MaskedLinks(policy, store).broken
    upstream: dict[str, set[str]] = {}  # node -> its sources (masked edges left out)
    seen = set(entities)
    frontier = list(seen)
    depth = 0
    while frontier and depth < MAX_DEPTH:
        depth += 1
        nxt: list[str] = []
        for src, dst, relation in store.edges_into(frontier):
            if relation == "masked" and not follow_masked(src, dst):
                continue
            upstream.setdefault(dst, set()).add(src)
            if src not in seen:
                seen.add(src)
                nxt.append(src)
        frontier = nxt
    origins = origins_of(store, sorted(seen))
    prod_of: dict[str, str] = {n: o for n, o in origins.items() if _is_prod(policy, o)}
    downstream: dict[str, set[str]] = {}
    for dst, sources in upstream.items():
        for src in sources:
            downstream.setdefault(src, set()).add(dst)
    queue = list(prod_of)
    while queue:  # carry each production origin down to everything derived from it
        node = queue.pop()
        for child in downstream.get(node, ()):
            if child not in prod_of:
                prod_of[child] = prod_of[node]
                queue.append(child)
    return {e: prod_of.get(e) or origins.get(e) for e in entities}


_UPSTREAM = (
    "WITH RECURSIVE up(src, dst, relation) AS ("
    " SELECT src, dst, relation FROM edges WHERE dst = ?"
    " UNION SELECT e.src, e.dst, e.relation FROM edges e JOIN up ON e.dst = up.src)"
    " SELECT src, dst, relation FROM up"
)


_ANY_UPSTREAM = "SELECT 1 FROM edges WHERE dst = ? LIMIT 1"


def upstream_graph(store: SqlLineageStore, entity: str) -> dict[str, list[tuple[str, str]]]:
    """Every edge upstream of ``entity``, through any number of steps, in one recursive query
    over the ``dst`` index: node -> [(source, relation)]. ``UNION`` (not ``UNION ALL``) makes
    each edge appear once, so a cycle ends the recursion."""
    graph: dict[str, list[tuple[str, str]]] = {}
    if not store.read(_ANY_UPSTREAM, [entity]):
        return graph  # no edge into it: ~10 us, where the recursive query takes ~200 us
    rows = store.read(_UPSTREAM, [entity])
    for src, dst, relation in sorted((str(a), str(b), str(c)) for a, b, c in rows):
        graph.setdefault(dst, []).append((src, relation))
    return graph


def resolve_lineage(
    store: SqlLineageStore, policy: Policy, subject: str, entity: str, digest: str | None = None
) -> DataLineage:
    """Walk upstream of ``entity``; report production origin (or own origin) and masking.

    Two queries whatever the depth: the upstream graph (:func:`upstream_graph`) and the origins
    of its nodes; the walk itself is in memory, with no depth limit (a limit would let
    production data further up pass unseen)."""
    graph = upstream_graph(store, entity)
    nodes = sorted({entity, *(src for edges in graph.values() for src, _ in edges)})
    origins = origins_of(store, nodes)
    return _resolve(store, policy, subject, entity, digest, graph, origins)


def _resolve(
    store: SqlLineageStore,
    policy: Policy,
    subject: str,
    entity: str,
    digest: str | None,
    graph: dict[str, list[tuple[str, str]]],
    origins: dict[str, str],
) -> DataLineage:
    parent: dict[str, tuple[str, str] | None] = {entity: None}  # node -> (child, relation)
    frontier = [entity]
    masked: list[tuple[str, str]] = []  # (source node, masked node) pairs
    prod_node: str | None = None
    while frontier:
        hit = next((n for n in frontier if _is_prod(policy, origins.get(n))), None)
        if hit is not None:
            prod_node = hit
            break
        nxt: list[str] = []
        for dst in frontier:
            for src, relation in graph.get(dst, ()):
                if relation == "masked":
                    masked.append((src, dst))
                    continue
                if src not in parent:
                    parent[src] = (dst, relation)
                    nxt.append(src)
        frontier = nxt
    own = origins.get(entity)
    if prod_node is not None:
        return DataLineage(subject, digest, origins[prod_node], _chain(prod_node, parent, origins))
    for src, dst in masked:
        upstream = _resolve(store, policy, subject, src, digest, graph, origins)
        if upstream.origin_env and _is_prod(policy, upstream.origin_env):
            proof = _proof_for(store, policy, src, dst)
            chain = (*upstream.chain, f"masked ({dst})")
            if proof:
                return DataLineage(subject, digest, upstream.origin_env, chain, masked_by=proof)
            return DataLineage(subject, digest, upstream.origin_env, chain)
    return DataLineage(subject, digest, own, (f"{own} origin",) if own else ())


def _is_prod(policy: Policy, env: str | None) -> bool:
    return env is not None and policy.has_environment(env) and policy.is_prod(env)


def _chain(
    node: str, parent: dict[str, tuple[str, str] | None], origins: dict[str, str]
) -> tuple[str, ...]:
    steps = [f"{_short(node)} (origin {origins[node]})"]
    current: str | None = node
    while current is not None and parent.get(current) is not None:
        child, relation = parent[current]  # type: ignore[misc]
        steps.append(f"{relation} -> {_short(child)}")
        current = child
    return tuple(steps)


def _short(entity: str) -> str:
    if entity.startswith("sha256:"):
        return entity[:19] + "…"
    return entity


def _proof_for(store: SqlLineageStore, policy: Policy, src: str, dst: str) -> str | None:
    """The masking proof behind a ``masked`` link, verified again now (signature against the
    policy's trusted keys, subject digest, validation, policy known to the log); None when no
    recorded proof holds."""
    from envguard.proofs import verify_envelope

    known = [h["sha256"] for h in store.policy_history()]
    subject = dst.removeprefix("sha256:")
    rows = store.read(
        "SELECT ev.body FROM events ev JOIN edges ed ON ed.seq = ev.seq "
        "WHERE ed.src = ? AND ed.dst = ? AND ed.relation = 'masked' ORDER BY ev.seq DESC",
        [src, dst],
    )
    sha = subject if dst.startswith("sha256:") else None
    for (body,) in rows:
        event = json.loads(body)
        if not any(link[:3] == [src, dst, "masked"] for link in event.get("links", [])):
            continue  # an index row that its event does not hold
        data = event.get("payload") or {}
        entities = event.get("entities") or []
        envelopes = dict(data.get("envelopes") or {})
        proofs = [e for e in entities if str(e).startswith("proof:")]
        if isinstance(data.get("envelope"), dict) and proofs:
            envelopes.setdefault(proofs[0], data["envelope"])
        for proof, envelope in envelopes.items():
            if isinstance(envelope, dict) and not verify_envelope(
                policy, envelope, sha, known_policy_sha256s=known
            ):
                return str(proof)
    return None
