"""The SQLAlchemy lineage store: SQLite (WAL) by default, PostgreSQL by URL.

SQLAlchemy is imported when it is first used: a store in a plain local SQLite file takes its hot
paths (schema check, reads, one-level edge lookups, appends) through the standard library's
driver (:mod:`envguard.lineage.sqlite_direct`) and never needs it on a command's usual path.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from envguard.errors import EnvGuardError, StoreError
from envguard.lineage import SCHEMA_REVISION
from envguard.lineage.events import (
    Event,
    EventDraft,
    Link,
    body_text,
    canonical_json,
    chain_hash,
    utc_now,
)
from envguard.lineage.spool import Spool
from envguard.lineage.sqlite_direct import (
    HANDLED_ERRORS,
    DirectConnection,
    DirectSqlite,
    direct_path,
)
from envguard.lineage.sqlite_direct import configure as configure_sqlite

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine

    from envguard.lineage import schema as t
else:

    class _Module:
        """A module imported on first attribute access (SQLAlchemy costs ~0.2-0.3 s)."""

        def __init__(self, name: str) -> None:
            self._name = name

        def __getattr__(self, attr: str) -> Any:
            return getattr(import_module(self._name), attr)

    sa = _Module("sqlalchemy")
    t = _Module("envguard.lineage.schema")

__all__ = ["Checkpoint", "Edge", "SqlLineageStore", "event_from_body"]

log = logging.getLogger(__name__)

_IN_CHUNK = 500


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    relation: str
    seq: int
    depth: int = 1


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    time: str
    keyid: str
    signature: bytes

    def message(self) -> bytes:
        return checkpoint_message(self.seq, self.head_hash, self.time)

    def to_dict(self) -> dict[str, Any]:
        import base64

        return {
            "seq": self.seq,
            "head_hash": self.head_hash,
            "time": self.time,
            "keyid": self.keyid,
            "signature": base64.b64encode(self.signature).decode(),
        }


def checkpoint_message(seq: int, head_hash: str, time: str) -> bytes:
    return canonical_json(
        {"head_hash": head_hash, "seq": seq, "time": time, "type": "envguard.checkpoint/v1"}
    ).encode()


class Signer(Protocol):
    """What the store needs to sign checkpoints: a key id and a sign function."""

    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


def redact_url(url: str) -> str:
    if direct_path(url) is not None:
        return url  # no credentials, nothing SQLAlchemy would render differently
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


class SqlLineageStore:
    """An append-only, hash-chained event log with a lineage graph over it."""

    def __init__(
        self,
        url: str,
        *,
        checkpoint_every: int = 1000,
        signer: Signer | None = None,
        spool_dir: Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.url = url
        self.safe_url = redact_url(url)
        self.checkpoint_every = checkpoint_every
        self.signer = signer
        self.spool = Spool(spool_dir) if spool_dir else None
        self._timeout = timeout
        path = direct_path(url)
        self._direct = DirectSqlite(path, timeout) if path is not None else None
        if self._direct is not None:
            self.is_postgres, self._marker = False, "?"  # pysqlite's dialect and paramstyle
        else:
            self.is_postgres = self.engine.dialect.name == "postgresql"
            self._marker = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = _write_statements(self._marker, self.is_postgres)
        self._ready = False

    @cached_property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (created with the store, or on first use for a plain SQLite
        file)."""
        return _make_engine(self.url, self._timeout)

    def _ensure_schema(self) -> None:
        """Create or upgrade the schema on first use (raises sqlalchemy errors as they come). A
        new plain SQLite file gets the current schema directly (``DirectSqlite.create_schema``)."""
        if not self._ready and self._direct is not None:
            # On any error SQLAlchemy reads it again below, and reports what it finds.
            with contextlib.suppress(sqlite3.Error):
                revision = self._direct.schema_revision()
                self._ready = revision == SCHEMA_REVISION or (
                    revision is None and self._direct.create_schema(SCHEMA_REVISION)
                )
        if not self._ready:
            from envguard.lineage.migrate import ensure_schema

            ensure_schema(self.engine, self.safe_url)
            self._ready = True

    def open(self) -> SqlLineageStore:
        """Make sure the store can be read; :class:`StoreError` with the reason if not."""
        try:
            self._ensure_schema()
        except sa.exc.DBAPIError as exc:
            raise StoreError(f"lineage store {self.safe_url}: cannot open: {_short(exc)}") from None
        return self

    def close(self) -> None:
        if self._direct is not None:
            self._direct.close()
        if "engine" in self.__dict__:
            self.engine.dispose()

    def __enter__(self) -> SqlLineageStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(envguard_write=True) as conn, conn.begin():
            yield conn

    def append(self, draft: EventDraft, *, required: bool = True) -> Event | None:
        """Record one event. ``required`` (the default): a failure raises :class:`StoreError` —
        for decisions that guard production. Otherwise the event is spooled and ``None`` returned.
        """
        events = self.append_many([draft], required=required)
        return events[0] if events else None

    def append_many(self, drafts: Sequence[EventDraft], *, required: bool = True) -> list[Event]:
        stamped = [d if d.time else _with_time(d) for d in drafts]
        if not stamped:
            return []  # nothing to record (a spooled batch waits for the next real write)
        pending = self.spool.pending() if self.spool else []
        try:
            self._ensure_schema()
            written = None if self._direct is None else self._append_direct(pending, stamped)
            if written is None:
                with self._writing() as conn:
                    replayed = [EventDraft.from_json(i) for _, items in pending for i in items]
                    written = self._append_locked(conn, [*replayed, *stamped])
        except _handled_errors() as exc:
            if self.spool:
                self.spool.release([path for path, _ in pending])
            if required or self.spool is None:
                raise StoreError(
                    f"lineage store {self.safe_url}: cannot record {len(stamped)} event(s) "
                    f"({_short(exc)}); the action is refused because its record is required"
                ) from None
            self.spool.write([d.to_json() for d in stamped])
            log.warning(
                "lineage store %s unavailable (%s); %d event(s) spooled to %s",
                self.safe_url,
                _short(exc),
                len(stamped),
                self.spool.folder,
            )
            return []
        if self.spool:
            self.spool.done([path for path, _ in pending])
        return written[len(written) - len(stamped) :]

    def _append_direct(
        self, pending: list[tuple[Path, list[dict[str, Any]]]], stamped: list[EventDraft]
    ) -> list[Event] | None:
        """The append through the standard library's driver (same transaction, statements and
        chain); None when it failed with an error the log does not handle itself: it was rolled
        back, and the append is made again through SQLAlchemy, which raises that error as it
        always did."""
        assert self._direct is not None
        try:
            with self._direct.writing() as conn:
                replayed = [EventDraft.from_json(item) for _, items in pending for item in items]
                return self._append_locked(conn, [*replayed, *stamped])
        except (*HANDLED_ERRORS, EnvGuardError):  # EnvGuardError: e.g. a signing key that
            raise  # cannot be loaded for a checkpoint; rolled back, and the same through SQLAlchemy
        except Exception:  # rolled back; SQLAlchemy's path raises it as before
            log.debug("direct SQLite append failed; appending through SQLAlchemy", exc_info=True)
            return None

    def _append_locked(
        self, conn: Connection | DirectConnection, drafts: Sequence[EventDraft]
    ) -> list[Event]:
        """Chain and insert ``drafts`` under the chain head's lock. Fixed statements run at the
        driver level (``exec_driver_sql``, executemany): an observation written at every run's
        end must cost little beside MLflow's own writes."""
        sql = self._sql
        seq, prev = conn.exec_driver_sql(sql["head"]).one()
        rows: list[tuple[Any, ...]] = []
        entity_rows: list[tuple[str, int]] = []
        edge_rows: list[tuple[str, str, str, int]] = []
        written: list[Event] = []
        for draft in drafts:
            seq += 1
            entities_json = canonical_json(list(draft.entities))
            links = [link.as_list() for link in draft.links]
            links_json = canonical_json(links)
            payload_json = canonical_json(dict(draft.payload))
            body = body_text(
                actor=draft.actor,
                entities_json=entities_json,
                environment=draft.environment,
                kind=draft.kind,
                links_json=links_json,
                payload_json=payload_json,
                policy_sha256=draft.policy_sha256,
                time=draft.time,
            )
            digest = chain_hash(seq, prev, body)
            rows.append(
                (
                    seq,
                    draft.time,
                    draft.actor,
                    draft.environment,
                    draft.kind,
                    draft.policy_sha256,
                    body,
                    prev,
                    digest,
                )
            )
            entity_rows.extend((e, seq) for e in draft.all_entities())
            edge_rows.extend((s, d, r, seq) for s, d, r in dict.fromkeys(map(tuple, links)))
            written.append(
                Event(
                    seq,
                    draft.time,
                    draft.actor,
                    draft.environment,
                    draft.kind,
                    list(draft.entities),
                    list(draft.links),
                    dict(draft.payload),
                    draft.policy_sha256,
                    prev,
                    digest,
                )
            )
            prev = digest
        conn.exec_driver_sql(sql["event"], rows)
        if entity_rows:
            conn.exec_driver_sql(sql["entity"], entity_rows)
        if edge_rows:
            conn.exec_driver_sql(sql["edge"], edge_rows)
        conn.exec_driver_sql(sql["move_head"], (seq, prev))
        if self.signer is not None and self.checkpoint_every:
            for event in written:
                if event.seq % self.checkpoint_every == 0:
                    self._insert_checkpoint(conn, event.seq, event.hash)
        return written

    def _insert_checkpoint(
        self, conn: Connection | DirectConnection, seq: int, head_hash: str
    ) -> Checkpoint:
        time = utc_now()
        assert self.signer is not None
        signature = self.signer.sign(checkpoint_message(seq, head_hash, time))
        cp = Checkpoint(seq, head_hash, time, self.signer.key_id, signature)
        if isinstance(conn, DirectConnection):
            conn.exec_driver_sql(_CHECKPOINT_INSERT, (seq, head_hash, time, cp.keyid, signature))
            return cp
        conn.execute(
            t.checkpoints.insert().values(
                **{k: getattr(cp, k) for k in ("seq", "head_hash", "time", "keyid", "signature")}
            )
        )
        return cp

    def checkpoint(self) -> Checkpoint:
        """Sign the current head now (``envguard audit checkpoint``)."""
        if self.signer is None:
            raise StoreError("no signing key configured for checkpoints")
        self.open()
        with self._writing() as conn:
            seq, head = conn.execute(sa.select(t.chain_head.c.seq, t.chain_head.c.hash)).one()
            if seq == 0:
                raise StoreError(f"lineage store {self.safe_url} is empty: nothing to checkpoint")
            existing = conn.execute(sa.select(t.checkpoints).where(t.checkpoints.c.seq == seq))
            row = existing.first()
            if row is not None:
                return Checkpoint(row.seq, row.head_hash, row.time, row.keyid, bytes(row.signature))
            return self._insert_checkpoint(conn, seq, head)

    # -- reading -------------------------------------------------------------------------------
    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement through a plain DBAPI cursor (``?`` placeholders,
        rewritten for the driver), for the hot paths of the gates: a pooled connection with no
        SQLAlchemy statement building, one statement, one snapshot. ``sql`` is fixed text from
        the caller; only ``params`` carry values."""
        self.open()
        if self._direct is not None:
            with contextlib.suppress(sqlite3.Error):  # SQLAlchemy's path reports it, as before
                return self._direct.read(sql, params)
        if self._marker != "?":
            sql = sql.replace("?", self._marker)
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(sql, tuple(params))
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()
                if self.is_postgres:
                    raw.rollback()  # end the read transaction psycopg opened
        finally:
            raw.close()

    def head(self) -> tuple[int, str]:
        self.open()
        with self.engine.connect() as conn:
            seq, digest = conn.execute(sa.select(t.chain_head.c.seq, t.chain_head.c.hash)).one()
        return int(seq), str(digest)

    def events(
        self,
        *,
        kind: str | None = None,
        entity: str | None = None,
        since: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> Iterator[Event]:
        self.open()
        if self._direct is not None:
            sql, params = _events_sql(kind, entity, since, after_seq, limit)
            rows = self._direct.stream(sql, params)
            try:
                first = next(rows, None)  # the statement runs here
            except sqlite3.Error:  # SQLAlchemy's path runs it again and reports it, as before
                pass
            else:
                if first is not None:
                    yield event_from_body(*first)
                    for row in rows:
                        yield event_from_body(*row)
                return
        query = sa.select(t.events).where(t.events.c.seq > after_seq).order_by(t.events.c.seq)
        if kind:
            query = query.where(t.events.c.kind == kind)
        if since:
            query = query.where(t.events.c.time >= since)
        if entity:
            sub = sa.select(t.event_entities.c.seq).where(t.event_entities.c.entity == entity)
            query = query.where(t.events.c.seq.in_(sub))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=2000).execute(query)
            for row in result:
                yield _event(row)

    def chain_rows(self, batch: int = 20000) -> Iterator[Sequence[Any]]:
        """(seq, body, prev_hash, hash) in sequence order, streamed in batches."""
        c = t.events.c
        last = 0
        self.open()
        with self.engine.connect() as conn:
            while True:
                rows = conn.execute(
                    sa.select(c.seq, c.body, c.prev_hash, c.hash)
                    .where(c.seq > last)
                    .order_by(c.seq)
                    .limit(batch)
                ).all()
                if not rows:
                    return
                yield from rows
                last = rows[-1][0]

    def checkpoints(self) -> list[Checkpoint]:
        self.open()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.checkpoints).order_by(t.checkpoints.c.seq)).all()
        return [Checkpoint(r.seq, r.head_hash, r.time, r.keyid, bytes(r.signature)) for r in rows]

    def _edges(self, conn: Connection, column: str, nodes: Iterable[str]) -> list[Any]:
        found: list[Any] = []
        items = list(nodes)
        for start in range(0, len(items), _IN_CHUNK):
            chunk = items[start : start + _IN_CHUNK]
            found.extend(conn.execute(sa.select(t.edges).where(t.edges.c[column].in_(chunk))))
        return found

    def _edges_to(self, nodes: Iterable[str]) -> list[tuple[str, str, str]]:
        """Edges whose ``dst`` is one of ``nodes``: (src, dst, relation)."""
        return self.edges_into(nodes)

    def edges_into(self, nodes: Iterable[str]) -> list[tuple[str, str, str]]:
        """Every edge whose ``dst`` is one of ``nodes``, as (src, dst, relation), one level only;
        for integrations that look up many entities at once (thousands of objects)."""
        self.open()
        if self._direct is not None:
            with contextlib.suppress(sqlite3.Error):  # SQLAlchemy's path reports it, as before
                return self._direct.edges("dst", nodes, _IN_CHUNK)
        with self.engine.connect() as conn:
            return [(r.src, r.dst, r.relation) for r in self._edges(conn, "dst", nodes)]

    def edges_out_of(self, nodes: Iterable[str]) -> list[tuple[str, str, str]]:
        """Every edge whose ``src`` is one of ``nodes``, as (src, dst, relation), one level."""
        self.open()
        if self._direct is not None:
            with contextlib.suppress(sqlite3.Error):  # SQLAlchemy's path reports it, as before
                return self._direct.edges("src", nodes, _IN_CHUNK)
        with self.engine.connect() as conn:
            return [(r.src, r.dst, r.relation) for r in self._edges(conn, "src", nodes)]

    def _walk(self, entity: str, depth: int | None, upstream: bool) -> list[Edge]:
        near, far = ("dst", "src") if upstream else ("src", "dst")
        seen = {entity}
        frontier = [entity]
        out: list[Edge] = []
        level = 0
        self.open()
        with self.engine.connect() as conn:
            while frontier and (depth is None or level < depth):
                level += 1
                nxt: list[str] = []
                for row in self._edges(conn, near, frontier):
                    out.append(Edge(row.src, row.dst, row.relation, row.seq, level))
                    node = getattr(row, far)
                    if node not in seen:
                        seen.add(node)
                        nxt.append(node)
                frontier = nxt
        return out

    def ancestors(self, entity: str, depth: int | None = None) -> list[Edge]:
        """Every edge upstream of ``entity`` (what it came from), nearest first."""
        return self._walk(entity, depth, upstream=True)

    def descendants(self, entity: str, depth: int | None = None) -> list[Edge]:
        """Every edge downstream of ``entity`` (what came from it), nearest first."""
        return self._walk(entity, depth, upstream=False)

    def path(self, src: str, dst: str, max_depth: int = 64) -> list[Edge] | None:
        """The shortest chain of edges from ``src`` down to ``dst``, or None."""
        parents: dict[str, Any] = {src: None}
        frontier = [src]
        self.open()
        with self.engine.connect() as conn:
            for _ in range(max_depth):
                if not frontier:
                    break
                nxt: list[str] = []
                for row in self._edges(conn, "src", frontier):
                    if row.dst in parents:
                        continue
                    parents[row.dst] = row
                    if row.dst == dst:
                        chain: list[Edge] = []
                        node: Any = row
                        while node is not None:
                            chain.append(Edge(node.src, node.dst, node.relation, node.seq))
                            node = parents[node.src]
                        return chain[::-1]
                    nxt.append(row.dst)
                frontier = nxt
        return None

    def touching(self, entity: str) -> list[Event]:
        """Every event that concerns ``entity`` (directly or as a link end), in order."""
        return list(self.events(entity=entity))

    def count(self) -> int:
        return self.head()[0]

    def counts_by_kind(self) -> dict[str, int]:
        self.open()
        query = sa.select(t.events.c.kind, sa.func.count()).group_by(t.events.c.kind)
        with self.engine.connect() as conn:
            return {str(kind): int(n) for kind, n in conn.execute(query)}

    def policy_history(self) -> list[dict[str, Any]]:
        """Every policy sha256 the log has seen, with its first and last use and event count."""
        self.open()
        c = t.events.c
        query = (
            sa.select(c.policy_sha256, sa.func.min(c.time), sa.func.max(c.time), sa.func.count())
            .group_by(c.policy_sha256)
            .order_by(sa.func.min(c.time))
        )
        with self.engine.connect() as conn:
            return [
                {"sha256": sha, "first": first, "last": last, "events": int(n)}
                for sha, first, last, n in conn.execute(query)
            ]

    def recent_edges(self, limit: int) -> list[Edge]:
        """The most recently recorded edges (for drawing the lineage graph)."""
        self.open()
        query = sa.select(t.edges).order_by(t.edges.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [Edge(r.src, r.dst, r.relation, r.seq) for r in conn.execute(query)]


_WRITES = {
    "head": "SELECT seq, hash FROM chain_head WHERE id = 1",
    "event": "INSERT INTO events (seq, time, actor, environment, kind, policy_sha256, body,"
    " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "entity": "INSERT INTO event_entities (entity, seq) VALUES (?, ?)",
    "edge": "INSERT INTO edges (src, dst, relation, seq) VALUES (?, ?, ?, ?)",
    "move_head": "UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1",
}


_CHECKPOINT_INSERT = (
    "INSERT INTO checkpoints (seq, head_hash, time, keyid, signature) VALUES (?, ?, ?, ?, ?)"
)


def _handled_errors() -> tuple[type[BaseException], ...]:
    """What an append handles (spool or refuse): the driver's errors on the direct path, and
    SQLAlchemy's wrappers of them (imported here only when one is being matched)."""
    return (
        *HANDLED_ERRORS,
        sa.exc.OperationalError,
        sa.exc.InterfaceError,
        sa.exc.InternalError,
    )


def _write_statements(marker: str, postgres: bool) -> dict[str, str]:
    """The appender's fixed statements, in the driver's placeholder style; PostgreSQL locks the
    chain head row (SQLite's ``BEGIN IMMEDIATE`` already holds the write lock)."""
    out = {name: sql.replace("?", marker) for name, sql in _WRITES.items()}
    if postgres:
        out["head"] += " FOR UPDATE"
    return out


def _events_sql(
    kind: str | None, entity: str | None, since: str | None, after_seq: int, limit: int | None
) -> tuple[str, list[Any]]:
    """The statement :meth:`SqlLineageStore.events` runs through SQLAlchemy, for ``sqlite3``."""
    where: list[str] = ["seq > ?"]
    params: list[Any] = [after_seq]
    if kind:
        where.append("kind = ?")
        params.append(kind)
    if since:
        where.append("time >= ?")
        params.append(since)
    if entity:
        where.append("seq IN (SELECT seq FROM event_entities WHERE entity = ?)")
        params.append(entity)
    sql = f"SELECT seq, body, prev_hash, hash FROM events WHERE {' AND '.join(where)} ORDER BY seq"  # noqa: S608 - fixed clauses, values are parameters
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _event(row: Any) -> Event:
    """An event from its stored row: the record is the body (what the hash covers); the
    row's other columns are index copies and are not read here."""
    return event_from_body(row.seq, row.body, row.prev_hash, row.hash)


def event_from_body(seq: int, body: str, prev_hash: str, digest: str) -> Event:
    import json

    data = json.loads(body)
    return Event(
        int(seq),
        data["time"],
        data["actor"],
        data["environment"],
        data["kind"],
        list(data["entities"]),
        [Link(*item) for item in data["links"]],
        dict(data["payload"]),
        data["policy_sha256"],
        prev_hash,
        digest,
    )


def _with_time(draft: EventDraft) -> EventDraft:
    from dataclasses import replace

    return replace(draft, time=utc_now())


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _make_engine(url: str, timeout: float) -> Engine:
    from sqlalchemy import event as sa_event

    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": timeout})

        @sa_event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            configure_sqlite(dbapi_connection, timeout)

        @sa_event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("envguard_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    try:
        return sa.create_engine(
            url, pool_recycle=1800, connect_args={"connect_timeout": max(1, int(timeout))}
        )
    except (sa.exc.ArgumentError, ImportError) as exc:
        hint = ""
        if url.startswith("postgresql"):
            hint = "; for PostgreSQL: pip install 'envguard[postgres]'"
        raise StoreError(f"lineage store {redact_url(url)}: {exc}{hint}") from None
