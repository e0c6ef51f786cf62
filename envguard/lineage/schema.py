"""The lineage store's tables (SQLAlchemy Core). Migrations in ``migrations/`` create them.

``events`` is the log itself, append-only and hash-chained. Each row's ``body`` is the event as
it was hashed (canonical JSON): the record. Its ``time``, ``actor``, ``environment``, ``kind``
and ``policy_sha256`` columns are copies kept for indexed queries, like the index tables below;
readers take the event from the body, and ``envguard audit verify --indexes`` checks the copies.
``chain_head`` holds one row, the last sequence number and hash: appenders lock it
(``SELECT ... FOR UPDATE`` on PostgreSQL, a ``BEGIN IMMEDIATE`` transaction on SQLite) so that
concurrent writers never fork the chain.
``event_entities`` and ``edges`` are indexes derived from the events, for queries whose cost
grows with the answer, not the store. ``checkpoints`` are signed heads of the chain.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from envguard.lineage import SCHEMA_REVISION  # the expected revision lives in the package

__all__ = [
    "SCHEMA_REVISION",
    "chain_head",
    "checkpoints",
    "edges",
    "event_entities",
    "events",
    "metadata",
]

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", String(40), nullable=False),
    Column("actor", Text, nullable=False),
    Column("environment", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("policy_sha256", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_events_kind_seq", "kind", "seq"),
    Index("ix_events_time", "time"),
)

chain_head = Table(
    "chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

event_entities = Table(
    "event_entities",
    metadata,
    Column("entity", Text, primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
)

edges = Table(
    "edges",
    metadata,
    Column("src", Text, primary_key=True),
    Column("dst", Text, primary_key=True),
    Column("relation", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Index("ix_edges_dst", "dst", "src"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("head_hash", String(64), nullable=False),
    Column("time", String(40), nullable=False),
    Column("keyid", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)
