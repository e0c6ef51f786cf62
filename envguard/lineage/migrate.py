"""Create or upgrade a lineage store's schema with alembic (a dependency of MLflow too).

Opening a store whose schema is older than this envguard upgrades it in place, inside one
transaction; a store made by a newer envguard is refused with the fix. The fast path (the schema
is current) reads one row and imports nothing from alembic.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from envguard.errors import StoreError
from envguard.lineage.schema import SCHEMA_REVISION

__all__ = ["ensure_schema", "schema_revision"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
KNOWN = {"0001", "0002"}
_PG_LOCK = 0x656E7667  # "envg": serialises concurrent migrations on PostgreSQL


def schema_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def ensure_schema(engine: Engine, safe_url: str) -> None:
    try:
        current = schema_revision(engine)
    except sa.exc.OperationalError:
        raise
    except sa.exc.DBAPIError as exc:
        raise StoreError(f"lineage store {safe_url}: cannot read its schema: {exc}") from None
    if current == SCHEMA_REVISION:
        return
    if current is not None and current not in KNOWN:
        raise StoreError(
            f"lineage store {safe_url} has schema revision {current}, made by a newer envguard; "
            f"upgrade envguard (pip install -U envguard) to open it"
        )
    _upgrade(engine, safe_url)


def _upgrade(engine: Engine, safe_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect().execution_options(envguard_write=True) as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        revision = schema_revision_in(conn)  # again, now that we hold the lock
        if revision == SCHEMA_REVISION:
            return
        if revision is None and sa.inspect(conn).has_table("events"):
            raise StoreError(
                f"lineage store {safe_url} has an events table but no schema revision: "
                f"it was not made by envguard; point lineage.url at another database"
            )
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_revision_in(conn: sa.Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])
