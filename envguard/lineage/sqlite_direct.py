"""A SQLite lineage store's hot paths through the standard library's driver, without SQLAlchemy.

Importing SQLAlchemy costs ~0.2-0.3 s, a third of a short command such as ``envguard data
check``. For a store in a local SQLite file named by a plain URL (``sqlite:////ABSOLUTE/PATH``,
no query string, no driver name), :class:`~envguard.lineage.sql.SqlLineageStore` takes its
schema check, ``read``, its one-level edge lookups and ``append_many`` through
:class:`DirectSqlite`: the same connection settings as its SQLAlchemy engine (``timeout``,
``busy_timeout``, WAL, ``synchronous = NORMAL``, autocommit with explicit ``BEGIN``), the same
transaction for an append (``BEGIN IMMEDIATE``, the chain head read and moved in it) and the same
statements.

Only success is handled here, and the errors the log handles itself (``OperationalError``,
``InterfaceError``, ``InternalError``: the store is locked, read-only or gone; the event is spooled
or the action refused, with the driver's message). Anything else (a schema to create or upgrade,
an unexpected row, any other error) is left to SQLAlchemy, which does and says exactly what it
always did: the schema check falls back to it, and an append rolled back here is made again
through it.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = [
    "HANDLED_ERRORS",
    "SCHEMA",
    "SCHEMA_OF",
    "DirectConnection",
    "DirectSqlite",
    "Unexpected",
    "configure",
    "direct_path",
]

log = logging.getLogger(__name__)

#: The errors an append handles (spool or refuse), as SQLAlchemy's wrappers of them are handled.
HANDLED_ERRORS = (sqlite3.OperationalError, sqlite3.InterfaceError, sqlite3.InternalError)

#: Idle connections kept, as SQLAlchemy's QueuePool keeps (more are closed when returned).
_POOL_SIZE = 5

# Characters that SQLAlchemy's URL parser keeps as they are in a database path (no %-escapes).
_URL = re.compile(r"^sqlite:///(/[A-Za-z0-9/._+~-]+)$")


#: The revision :data:`SCHEMA` is: created here only while it is envguard's current one.
SCHEMA_OF = "0002"

#: The schema of :data:`SCHEMA_OF` as alembic's migrations leave it in SQLite, statement for
#: statement (``sqlite_master`` keeps the text): creating it directly saves importing SQLAlchemy
#: and alembic (~1-2 s) on a store's first use. tests/lineage/test_sqlite_direct.py compares it
#: with what the migrations make; a new migration fails that test until this is brought up to it.
SCHEMA = (
    "CREATE TABLE alembic_version (\n\tversion_num VARCHAR(32) NOT NULL, \n\t"
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n)",
    "CREATE TABLE chain_head (\n\tid INTEGER NOT NULL, \n\tseq BIGINT NOT NULL, \n\t"
    "hash VARCHAR(64) NOT NULL, \n\tPRIMARY KEY (id)\n)",
    "CREATE TABLE event_entities (\n\tentity TEXT NOT NULL, \n\tseq BIGINT NOT NULL, \n\t"
    "PRIMARY KEY (entity, seq)\n)",
    "CREATE TABLE edges (\n\tsrc TEXT NOT NULL, \n\tdst TEXT NOT NULL, \n\t"
    "relation VARCHAR(64) NOT NULL, \n\tseq BIGINT NOT NULL, \n\t"
    "PRIMARY KEY (src, dst, relation, seq)\n)",
    "CREATE INDEX ix_edges_dst ON edges (dst, src)",
    "CREATE TABLE checkpoints (\n\tseq BIGINT NOT NULL, \n\thead_hash VARCHAR(64) NOT NULL, "
    "\n\ttime VARCHAR(40) NOT NULL, \n\tkeyid VARCHAR(64) NOT NULL, \n\t"
    "signature BLOB NOT NULL, \n\tPRIMARY KEY (seq)\n)",
    'CREATE TABLE "events" (\n\tseq BIGINT NOT NULL, \n\ttime VARCHAR(40) NOT NULL, \n\t'
    "actor TEXT NOT NULL, \n\tenvironment VARCHAR(64) NOT NULL, \n\tkind VARCHAR(64) NOT NULL, "
    "\n\tpolicy_sha256 VARCHAR(64) NOT NULL, \n\tprev_hash VARCHAR(64) NOT NULL, \n\t"
    "hash VARCHAR(64) NOT NULL, \n\tbody TEXT NOT NULL, \n\tPRIMARY KEY (seq)\n)",
    "CREATE INDEX ix_events_kind_seq ON events (kind, seq)",
    "CREATE INDEX ix_events_time ON events (time)",
)


def direct_path(url: str) -> str | None:
    """The file of a plain SQLite URL this module serves, else None (SQLAlchemy serves it)."""
    match = _URL.match(url)
    return match[1] if match else None


def configure(conn: Any, timeout: float) -> None:
    """Set up a new SQLite connection of a lineage store, on either path (this module's pool,
    or the SQLAlchemy engine's ``connect`` event): autocommit with explicit ``BEGIN``, the busy
    timeout, WAL and ``synchronous = NORMAL``."""
    conn.isolation_level = None  # we issue BEGIN ourselves
    cursor = conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode and str(mode[0]).lower() != "wal":
        log.debug("sqlite journal mode is %s, not WAL", mode[0])
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


class Unexpected(Exception):
    """A result this module does not interpret (the append is made again through SQLAlchemy)."""


class _Rows:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise Unexpected(f"expected one row, got {len(self._rows)}")
        return self._rows[0]


class DirectConnection:
    """What :meth:`SqlLineageStore._append_locked` asks of a connection in a write transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def exec_driver_sql(self, sql: str, params: Any = ()) -> _Rows:
        """A list of rows is an executemany, as for SQLAlchemy's ``exec_driver_sql`` (which
        reads an empty list as no parameters: left to it)."""
        if isinstance(params, list):
            if not params:
                raise Unexpected("an empty list of rows")
            self._conn.executemany(sql, params)
            return _Rows([])
        return _Rows(self._conn.execute(sql, params).fetchall())


class DirectSqlite:
    """Pooled ``sqlite3`` connections to one database file, set up as the store's engine sets up
    its own (:func:`envguard.lineage.sql._make_engine`)."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False)
        try:
            configure(conn, self.timeout)
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection of the pool; one that failed, or is left in a transaction, or beyond the
        pool's size, is closed."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child does not share its parent's connections
                self._idle, self._pid = [], os.getpid()
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
        ok = False
        try:
            yield conn
            ok = not conn.in_transaction
        finally:
            with self._lock:
                keep = ok and len(self._idle) < _POOL_SIZE
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement in autocommit (one snapshot), as the store's ``read`` on its engine."""
        with self.connection() as conn:
            cursor = conn.cursor()
            try:
                cursor.execute(sql, tuple(params))
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of one statement (one snapshot), fetched in batches as they are consumed; the
        connection goes back to the pool when the iterator ends or is closed."""
        with self.connection() as conn:
            cursor = conn.execute(sql, tuple(params))
            try:
                while batch := cursor.fetchmany(2000):
                    for row in batch:
                        yield tuple(row)
            finally:
                cursor.close()

    def read_snapshot(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Any]]:
        """Several statements in one read transaction (``BEGIN`` ... ``ROLLBACK``), as a
        SQLAlchemy connection on the store's engine runs them."""
        with self.connection() as conn:
            conn.execute("BEGIN")
            try:
                return [conn.execute(sql, tuple(params)).fetchall() for sql, params in statements]
            finally:
                conn.rollback()

    def edges(self, column: str, nodes: Iterable[str], chunk: int) -> list[tuple[str, str, str]]:
        """(src, dst, relation) of every edge whose ``column`` (``src`` or ``dst``) is one of
        ``nodes``, ``chunk`` nodes a statement, in one read transaction."""
        assert column in ("src", "dst")
        items = list(nodes)
        statements = [
            (
                f"SELECT src, dst, relation FROM edges WHERE {column} IN "  # noqa: S608 - fixed column
                f"({', '.join('?' * len(items[start : start + chunk]))})",
                items[start : start + chunk],
            )
            for start in range(0, len(items), chunk)
        ]
        return [tuple(row) for rows in self.read_snapshot(statements) for row in rows]

    def schema_revision(self) -> str | None:
        """The alembic revision recorded in the file, read as :func:`envguard.lineage.migrate.
        schema_revision` reads it, in one read transaction (raises the driver's errors)."""
        with self.connection() as conn:
            conn.execute("BEGIN")
            try:
                table = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
                ).fetchall()
                if not table:
                    return None
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            finally:
                conn.rollback()
        return None if row is None else str(row[0])

    def create_schema(self, revision: str) -> bool:
        """Create the current schema in a database that holds nothing yet, in one write
        transaction, as alembic's migrations leave it (:data:`SCHEMA`; a test compares the two).
        False, with nothing written, when the database already holds anything: what to do then
        (upgrade, refuse a foreign database) is the migrations' to decide."""
        if revision != SCHEMA_OF:
            return False  # this module knows one revision; any other is alembic's
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall():
                    conn.rollback()
                    return False
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (revision,))
                conn.execute("INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, ?)", ("0" * 64,))
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        return True

    @contextmanager
    def writing(self) -> Iterator[DirectConnection]:
        """A write transaction (``BEGIN IMMEDIATE``: the database's write lock), committed at the
        end of the block and rolled back when it raises."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield DirectConnection(conn)
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
