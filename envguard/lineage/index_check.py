"""Check the lineage store's derived data against the events they were derived from.

The hash chain covers each event's body. The rest of the store is derived from the bodies, for
queries: the ``time``, ``actor``, ``environment``, ``kind`` and ``policy_sha256`` columns of
``events``, the entity index (``event_entities``: every entity of an event and both ends of its
links) and the lineage graph (``edges``: its links). Someone with write access to the database
could delete an edge or change a ``kind`` and hide lineage from the gates without breaking the
chain; this check rebuilds what each event implies, in SQL, and compares both ways (missing
rows and rows no event holds). It parses every body, so it costs more than the chain check:
``envguard audit verify --indexes`` and ``envguard audit scan`` run it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["index_findings"]

#: At most this many findings of each kind per slice (the first ones name the problem).
SHOWN = 20

_SCALARS = ("kind", "time", "actor", "environment", "policy_sha256")

# Each "implied" statement rebuilds what the events of a slice imply and returns every implied
# row with whether the table holds it (a primary-key lookup): rows that are missing, and the
# count. Rows no event implies are found by comparing the table's total with the sum of the
# counts (:func:`extra_rows` lists them then, which scans the table).
_PREV = (
    "SELECT e.seq FROM events e JOIN events p ON p.seq = e.seq - 1"
    " WHERE {range} AND e.prev_hash <> p.hash ORDER BY e.seq LIMIT {shown}"
)

_SQLITE = {
    "columns": (
        "SELECT seq FROM events WHERE {range} AND ("  # noqa: S608 - fixed column names
        + " OR ".join(f"json_extract(body, '$.{c}') IS NOT {c}" for c in _SCALARS)
        + ") ORDER BY seq LIMIT {shown}"
    ),
    "entities": (
        "WITH ev AS MATERIALIZED (SELECT seq, json_extract(body, '$.entities') AS ents,"
        " json_extract(body, '$.links') AS links FROM events WHERE {range}),"
        " implied(seq, item) AS ("
        " SELECT ev.seq, j.value FROM ev, json_each(ev.ents) j"
        " UNION SELECT ev.seq, json_extract(j.value, '$[0]') FROM ev, json_each(ev.links) j"
        " UNION SELECT ev.seq, json_extract(j.value, '$[1]') FROM ev, json_each(ev.links) j)"
        " SELECT seq, item, EXISTS (SELECT 1 FROM event_entities a"
        " WHERE a.entity = implied.item AND a.seq = implied.seq) FROM implied"
    ),
    "edges": (
        "WITH implied(seq, src, dst, relation) AS (SELECT DISTINCT ev.seq,"
        " json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'),"
        " json_extract(j.value, '$[2]') FROM events ev, json_each(ev.body, '$.links') j"
        " WHERE {range})"
        " SELECT seq, src || ' -> ' || dst || ' (' || relation || ')', EXISTS (SELECT 1"
        " FROM edges a WHERE a.src = implied.src AND a.dst = implied.dst"
        " AND a.relation = implied.relation AND a.seq = implied.seq) FROM implied"
    ),
}

_POSTGRES = {
    "columns": (
        "SELECT seq FROM events WHERE {range} AND ("  # noqa: S608 - fixed column names
        + " OR ".join(f"(body::jsonb ->> '{c}') IS DISTINCT FROM {c}" for c in _SCALARS)
        + ") ORDER BY seq LIMIT {shown}"
    ),
    "entities": (
        "WITH ev AS MATERIALIZED (SELECT seq, body::jsonb AS b FROM events WHERE {range}),"
        " implied(seq, item) AS ("
        " SELECT ev.seq, jsonb_array_elements_text(ev.b -> 'entities') FROM ev"
        " UNION SELECT ev.seq, l ->> 0 FROM ev, jsonb_array_elements(ev.b -> 'links') l"
        " UNION SELECT ev.seq, l ->> 1 FROM ev, jsonb_array_elements(ev.b -> 'links') l)"
        " SELECT seq, item, EXISTS (SELECT 1 FROM event_entities a"
        " WHERE a.entity = implied.item AND a.seq = implied.seq) FROM implied"
    ),
    "edges": (
        "WITH implied(seq, src, dst, relation) AS (SELECT DISTINCT ev.seq, l ->> 0, l ->> 1,"
        " l ->> 2 FROM events ev, jsonb_array_elements(ev.body::jsonb -> 'links') l"
        " WHERE {range})"
        " SELECT seq, src || ' -> ' || dst || ' (' || relation || ')', EXISTS (SELECT 1"
        " FROM edges a WHERE a.src = implied.src AND a.dst = implied.dst"
        " AND a.relation = implied.relation AND a.seq = implied.seq) FROM implied"
    ),
}

_EXTRA = {
    "entities": "SELECT a.seq, a.entity FROM event_entities a WHERE NOT EXISTS ("
    "SELECT 1 FROM events ev WHERE ev.seq = a.seq) ORDER BY a.seq",
    "edges": "SELECT a.seq, a.src || ' -> ' || a.dst || ' (' || a.relation || ')' FROM edges a "
    "WHERE NOT EXISTS (SELECT 1 FROM events ev WHERE ev.seq = a.seq) ORDER BY a.seq",
}
# Rows beside real events that their event does not imply (a full pass: run only when the
# counts say such rows exist).
_BESIDE = {
    ("entities", False): "SELECT a.seq, a.entity FROM event_entities a"
    " JOIN events ev ON ev.seq = a.seq"
    " WHERE NOT EXISTS (SELECT 1 FROM json_each(ev.body, '$.entities') j"
    " WHERE j.value = a.entity)"
    " AND NOT EXISTS (SELECT 1 FROM json_each(ev.body, '$.links') l"
    " WHERE json_extract(l.value, '$[0]') = a.entity OR json_extract(l.value, '$[1]') = a.entity)"
    " ORDER BY a.seq",
    ("entities", True): "SELECT a.seq, a.entity FROM event_entities a"
    " JOIN events ev ON ev.seq = a.seq"
    " WHERE NOT (ev.body::jsonb -> 'entities' ? a.entity)"
    " AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(ev.body::jsonb -> 'links') l"
    " WHERE l ->> 0 = a.entity OR l ->> 1 = a.entity) ORDER BY a.seq",
    ("edges", False): "SELECT a.seq, a.src || ' -> ' || a.dst || ' (' || a.relation || ')'"
    " FROM edges a JOIN events ev ON ev.seq = a.seq"
    " WHERE NOT EXISTS (SELECT 1 FROM json_each(ev.body, '$.links') l"
    " WHERE json_extract(l.value, '$[0]') = a.src AND json_extract(l.value, '$[1]') = a.dst"
    " AND json_extract(l.value, '$[2]') = a.relation) ORDER BY a.seq",
    ("edges", True): "SELECT a.seq, a.src || ' -> ' || a.dst || ' (' || a.relation || ')'"
    " FROM edges a JOIN events ev ON ev.seq = a.seq"
    " WHERE NOT (ev.body::jsonb -> 'links'"
    " @> jsonb_build_array(jsonb_build_array(a.src, a.dst, a.relation))) ORDER BY a.seq",
}
_LABELS = {"entities": "entity index", "edges": "lineage graph"}
_TABLES = {"entities": "event_entities", "edges": "edges"}


def index_findings(
    cursor: Any, postgres: bool, low: int | None, high: int | None
) -> tuple[list[Any], dict[str, int]]:
    """Findings for the events with ``low < seq <= high`` (either end open when None), through
    an open DBAPI ``cursor``, and how many rows of each index those events imply."""
    from envguard.lineage.verify import Finding

    marker = "%s" if postgres else "?"

    def bounds(column: str) -> str:
        where = [f"{column} > {marker}"] if low is not None else []
        where += [f"{column} <= {marker}"] if high is not None else []
        return " AND ".join(where) or "1 = 1"

    params = [bound for bound in (low, high) if bound is not None]
    seq_range = bounds("seq")
    statements = _POSTGRES if postgres else _SQLITE
    findings: list[Finding] = []
    cursor.execute(
        _PREV.format(range=bounds("e.seq"), shown=SHOWN),
        tuple(params),
    )
    for (seq,) in cursor.fetchall():
        findings.append(
            Finding(
                int(seq),
                "index",
                f"event {seq}'s prev_hash column differs from the hash of event {int(seq) - 1} "
                f"(the chain itself is intact: only the copy was changed)",
            )
        )
    cursor.execute(statements["columns"].format(range=seq_range, shown=SHOWN), tuple(params))
    for (seq,) in cursor.fetchall():
        findings.append(
            Finding(
                int(seq),
                "index",
                f"event {seq}'s columns ({', '.join(_SCALARS)}) differ from its recorded body: "
                f"queries by kind or time would misreport it",
            )
        )
    implied: dict[str, int] = {}
    for table in ("entities", "edges"):
        cursor.execute(statements[table].format(range=seq_range), tuple(params))
        count = missing = 0
        while rows := cursor.fetchmany(10_000):
            count += len(rows)
            for seq, item, present in rows:
                if not present:
                    missing += 1
                    if missing <= SHOWN:
                        findings.append(
                            Finding(
                                int(seq),
                                "index",
                                f"the {_LABELS[table]} lacks {item} of event {seq}: lineage "
                                f"queries would miss it",
                            )
                        )
        implied[table] = count
    return findings, implied


def extra_rows(cursor: Any, postgres: bool, implied: dict[str, int]) -> list[Any]:
    """Compare each index's size with what the events imply; when an index holds more, name
    its rows that no event holds (rows pointing at no event, else a full comparison)."""
    from envguard.lineage.verify import Finding

    findings: list[Finding] = []
    for table, expected in implied.items():
        cursor.execute(f"SELECT count(*) FROM {_TABLES[table]}")  # noqa: S608 - fixed names
        (actual,) = cursor.fetchone()
        if int(actual) <= expected:
            continue  # fewer rows: the missing ones were named already
        cursor.execute(_EXTRA[table])
        orphans = cursor.fetchmany(SHOWN)
        for seq, item in orphans:
            findings.append(
                Finding(
                    int(seq),
                    "index",
                    f"the {_LABELS[table]} holds {item} for event {seq}, which does not exist",
                )
            )
        if orphans:
            continue
        cursor.execute(_BESIDE[table, postgres])
        for seq, item in cursor.fetchmany(SHOWN):
            findings.append(
                Finding(
                    int(seq),
                    "index",
                    f"the {_LABELS[table]} holds {item} for event {seq}, which the event does "
                    f"not hold",
                )
            )
    return findings
