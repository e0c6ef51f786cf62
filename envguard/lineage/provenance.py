"""What an auditor asks of one entity: where it came from, who made it, who approved it.

:func:`name_entity` turns what the user typed (``models:/NAME/VERSION``, ``run:ID`` or a bare run
id, ``sha256:HEX``, a path) into an entity of the lineage store; :func:`gather_provenance` walks
the lineage graph up and down from it with the store's indexed queries (one query per level of the
graph, then one for the events that concern the nodes found), so that its cost grows with the
answer, not with the store. The answer is a plain dict, ``envguard.audit-lineage/v1``, documented
in ``docs/audit.md``; :mod:`envguard.lineage.provenance_view` draws it as a tree or as DOT.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from envguard.errors import InputError
from envguard.lineage import schema as t
from envguard.lineage.sql import _IN_CHUNK, _event

if TYPE_CHECKING:
    from envguard.lineage.events import Event
    from envguard.lineage.sql import Edge, SqlLineageStore
    from envguard.runtime import Runtime

__all__ = ["SCHEMA", "entity_events", "gather_provenance", "name_entity"]

SCHEMA = "envguard.audit-lineage/v1"

_MODEL = re.compile(r"^models:/([^/]+)/([0-9]+)$")
_SHA = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
_BARE_RUN = re.compile(r"^[0-9a-f]{32}$")
_RUN = re.compile(r"^run:([A-Za-z0-9_.-]+)$")
_OTHER = ("proof:", "approval:", "model:", "dvc-", "s3://", "gs://", "file://")
RUN_CREATED = "mlflow.run.created"
VERSION_CREATED = "mlflow.model_version.created"
_FORMS = (
    "name a model version (models:/NAME/VERSION), a run (run:ID or the 32-character id), a "
    "dataset digest (sha256: and 64 hex digits) or an existing file"
)


def name_entity(runtime: Runtime, text: str) -> str:
    """The lineage entity ``text`` names; :class:`InputError` (exit 2) when it is malformed."""
    text = text.strip()
    if text.startswith("models:"):
        if not _MODEL.match(text):
            raise InputError(
                text, "a model version is named models:/NAME/VERSION (VERSION a number)"
            )
        return text
    if text.startswith("sha256:"):
        match = _SHA.match(text)
        if not match:
            raise InputError(text, "a digest is sha256: followed by 64 hexadecimal digits")
        return f"sha256:{match.group(1).lower()}"
    if text.startswith("run:"):
        if not _RUN.match(text):
            raise InputError(text, "a run is named run:ID (letters, digits, '-', '_', '.')")
        return text
    if _BARE_RUN.match(text) and not Path(text).exists():
        return f"run:{text}"
    if text.startswith(_OTHER):
        return text
    path = Path(text)
    if path.is_dir():
        raise InputError(text, "a directory has no single digest; name one of its files")
    if path.is_file():
        return f"sha256:{_file_digest(runtime, path)}"
    raise InputError(text, f"no such file, and not an entity: {_FORMS}")


def _file_digest(runtime: Runtime, path: Path) -> str:
    """The file's sha256: the one a plugin (DVC) recorded for it unchanged, else read it."""
    found, _errors = runtime.plugins.resolve_origin(str(path), None, runtime.policy)
    known = next((f.digest for f in found if f.digest and f.digest_source), None)
    if known:
        return known.removeprefix("sha256:")
    from envguard.digests import sha256_file

    try:
        return sha256_file(path)
    except OSError as exc:
        raise InputError(str(path), f"cannot read the file: {exc.strerror}") from None


def entity_events(store: SqlLineageStore, entities: Iterable[str]) -> list[Event]:
    """Every event concerning any of ``entities``, each once, in order (indexed lookups)."""
    items = sorted(set(entities))
    seqs: set[int] = set()
    store.open()
    with store.engine.connect() as conn:
        for start in range(0, len(items), _IN_CHUNK):
            chunk = items[start : start + _IN_CHUNK]
            query = sa.select(t.event_entities.c.seq).where(t.event_entities.c.entity.in_(chunk))
            seqs.update(int(s) for (s,) in conn.execute(query))
        ordered = sorted(seqs)
        rows: list[Any] = []
        for start in range(0, len(ordered), _IN_CHUNK):
            chunk_seqs = ordered[start : start + _IN_CHUNK]
            rows.extend(conn.execute(sa.select(t.events).where(t.events.c.seq.in_(chunk_seqs))))
    return sorted((_event(r) for r in rows), key=lambda e: e.seq)


def gather_provenance(
    runtime: Runtime, entity: str, depth: int | None = None, *, verify: bool = True
) -> dict[str, Any]:
    """The auditor's answer about ``entity``; :class:`InputError` when the store has no record
    of it. ``verify``: check every masking proof in the answer again now."""
    store = runtime.store
    up = store.ancestors(entity, depth)
    down = store.descendants(entity, depth)
    nodes = {entity} | {n for e in (*up, *down) for n in (e.src, e.dst)}
    events = entity_events(store, nodes)
    if not events:
        raise InputError(
            entity,
            f"the lineage store {store.safe_url} holds no record of it; list what it knows "
            "with: envguard audit log",
        )
    # A model version whose producing run is known only from its approvals' binding: walk it too.
    extra_runs = _bound_runs(events) - nodes
    if extra_runs and (depth is None or depth > 1):
        for run in sorted(extra_runs):
            more = store.ancestors(run, None if depth is None else depth - 1)
            up.extend(more)
            nodes |= {run} | {n for e in more for n in (e.src, e.dst)}
        events = entity_events(store, nodes)
    return _answer(runtime, entity, depth, up, down, nodes, events, verify)


def _bound_runs(events: list[Event]) -> set[str]:
    found = set()
    for event in events:
        if event.kind == "approval.granted":
            run_id = (event.payload.get("statement") or {}).get("run_id")
            if run_id:
                found.add(f"run:{run_id}")
    return found


def _answer(
    runtime: Runtime,
    entity: str,
    depth: int | None,
    up: list[Edge],
    down: list[Edge],
    nodes: set[str],
    events: list[Event],
    verify: bool,
) -> dict[str, Any]:
    from envguard.lineage.provenance_sections import Sections

    edges = [_edge(e, "upstream") for e in up] + [_edge(e, "downstream") for e in down]
    sections = Sections(runtime, entity, nodes, edges, events, verify)
    return {
        "schema": SCHEMA,
        "entity": entity,
        "type": entity_type(entity),
        "store": runtime.store.safe_url,
        "depth": depth,
        "model_versions": sections.model_versions(),
        "runs": sections.runs(),
        "datasets": sections.datasets(),
        "steps": sections.steps(),
        "objects": sections.objects(),
        "approvals": sections.approvals(),
        "promotions": sections.promotions(),
        "edges": edges,
        "events": [
            {
                "seq": e.seq,
                "time": e.time,
                "kind": e.kind,
                "actor": e.actor,
                "environment": e.environment,
            }
            for e in events
        ],
    }


def entity_type(entity: str) -> str:
    for prefix, name in (
        ("models:/", "model-version"),
        ("run:", "run"),
        ("sha256:", "dataset"),
        ("dvc-stage:", "step"),
        ("dvc-remote:", "object"),
        ("s3://", "object"),
        ("proof:", "proof"),
        ("approval:", "approval"),
        ("dvc-", "content"),
    ):
        if entity.startswith(prefix):
            return name
    return "other"


def _edge(edge: Edge, direction: str) -> dict[str, Any]:
    return {
        "src": edge.src,
        "dst": edge.dst,
        "relation": edge.relation,
        "seq": edge.seq,
        "depth": edge.depth,
        "direction": direction,
    }


def payload_json(event: Event) -> str:
    return json.dumps(event.payload, sort_keys=True)
