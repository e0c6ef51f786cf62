"""A store in a plain SQLite file takes its hot paths through the standard library's driver: the
same chain, rows and errors as through SQLAlchemy, which it falls back to for everything else."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from envguard.errors import StoreError
from envguard.lineage import SCHEMA_REVISION
from envguard.lineage.sql import SqlLineageStore, redact_url
from envguard.lineage.sqlite_direct import SCHEMA_OF, direct_path
from envguard.lineage.verify import verify_store
from tests.conftest import ROOT
from tests.lineage.test_store import draft, no_signatures

pytestmark = pytest.mark.integration


def test_plain_sqlite_urls_only() -> None:
    assert direct_path("sqlite:////tmp/x/lineage.db") == "/tmp/x/lineage.db"
    for url in (
        "sqlite://",  # in memory
        "sqlite:///relative.db",
        "sqlite+pysqlite:////tmp/x/lineage.db",
        "sqlite:///file:/tmp/x/lineage.db?mode=ro&uri=true",
        "sqlite:////tmp/a%20b/lineage.db",
        "sqlite:////tmp/a b/lineage.db",
        "postgresql://u:secret@127.0.0.1/db",
    ):
        assert direct_path(url) is None, url
    for url in ("sqlite:////tmp/x/lineage.db", "sqlite:////tmp/a+b~c/x-y_z.1.db"):
        assert redact_url(url) == sa.engine.make_url(url).render_as_string(hide_password=True)


def test_both_paths_write_one_chain_with_the_same_rows(tmp_path: Path) -> None:
    db = tmp_path / "lineage.db"
    direct = SqlLineageStore(f"sqlite:///{db}")
    through_sa = SqlLineageStore(f"sqlite+pysqlite:///{db}")  # not a plain URL: SQLAlchemy
    try:
        assert direct._direct is not None
        assert through_sa._direct is None
        written = []
        for i in range(6):
            store = direct if i % 2 == 0 else through_sa
            written += store.append_many([draft(i), draft(i + 100)])
        assert [e.seq for e in written] == list(range(1, 13))
        for store in (direct, through_sa):
            assert store.head() == (12, written[-1].hash)
            assert [e.to_dict() for e in store.events()] == [e.to_dict() for e in written]
            assert verify_store(store, no_signatures).ok
        tables = ("events", "event_entities", "edges", "chain_head")
        rows = {name: direct.read(f"SELECT * FROM {name} ORDER BY 1, 2") for name in tables}
        with through_sa.engine.connect() as conn:
            for name in tables:
                theirs = conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY 1, 2").all()
                assert [tuple(r) for r in theirs] == rows[name], name
        assert direct.edges_out_of(["sha256:4"]) == through_sa.edges_out_of(["sha256:4"])
        assert direct.edges_out_of(["sha256:4"]) == [("sha256:4", "sha256:5", "derived")]
        many = [f"sha256:{i}" for i in range(1200)]  # three chunks of the IN list
        assert sorted(direct.edges_into(many)) == sorted(through_sa.edges_into(many))
        assert len(direct.edges_into(many)) == 12
        kinded = direct.append(draft(7, kind="dataset.registered"))
        assert kinded is not None
        for query in (
            {},
            {"kind": "dataset.registered"},
            {"entity": "run:2"},
            {"entity": "sha256:3", "after_seq": 2},
            {"since": written[5].time, "limit": 3},
            {"kind": "derivation", "entity": "run:104", "limit": 1},
            {"kind": "nothing"},
        ):
            mine = [e.to_dict() for e in direct.events(**query)]  # type: ignore[arg-type]
            theirs = [e.to_dict() for e in through_sa.events(**query)]  # type: ignore[arg-type]
            assert mine == theirs, query
        assert [e.seq for e in direct.events(entity="run:2")] == [5]  # draft(2): the fifth
        assert [e.seq for e in direct.events(kind="dataset.registered")] == [kinded.seq]
    finally:
        direct.close()
        through_sa.close()


def test_an_error_the_log_does_not_handle_is_raised_as_before(tmp_path: Path) -> None:
    """A payload that is not JSON fails inside the append's transaction: the direct path rolls
    it back and leaves it to SQLAlchemy's path, which raises the same error; nothing is written.
    An empty append writes nothing and returns no events."""
    from dataclasses import replace

    store = SqlLineageStore(f"sqlite:///{tmp_path / 'lineage.db'}")
    try:
        store.append(draft(1))
        with pytest.raises(TypeError, match="not JSON serializable"):
            store.append_many([draft(2), replace(draft(3), payload={"bad": object()})])
        assert store.head()[0] == 1
        assert store.append_many([]) == []
        assert store.head()[0] == 1
    finally:
        store.close()


def test_threads_share_one_store(tmp_path: Path) -> None:
    store = SqlLineageStore(f"sqlite:///{tmp_path / 'lineage.db'}")
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(15):
                store.append(draft(n * 100 + i))
                store.read("SELECT seq FROM chain_head WHERE id = 1")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert store.head()[0] == 90
        assert verify_store(store, no_signatures).ok
    finally:
        store.close()


def _schema(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        master = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
        rows = [tuple(row) for row in master]
        rows += [("alembic_version", *r) for r in conn.execute("SELECT * FROM alembic_version")]
        rows += [("chain_head", *r) for r in conn.execute("SELECT * FROM chain_head")]
        return rows
    finally:
        conn.close()


def test_a_new_file_gets_the_schema_the_migrations_make(tmp_path: Path) -> None:
    """Created directly (a plain URL) or by alembic (through SQLAlchemy): the same tables,
    indexes, statements, revision and chain head. A new migration fails here until
    ``sqlite_direct.SCHEMA`` is what the migrations then make."""
    assert SCHEMA_OF == SCHEMA_REVISION, "bring sqlite_direct.SCHEMA up to the new revision"
    direct = SqlLineageStore(f"sqlite:///{tmp_path / 'direct.db'}").open()
    migrated = SqlLineageStore(f"sqlite+pysqlite:///{tmp_path / 'migrated.db'}").open()
    direct.close()
    migrated.close()
    assert _schema(tmp_path / "direct.db") == _schema(tmp_path / "migrated.db")
    assert ("alembic_version", SCHEMA_REVISION) in _schema(tmp_path / "direct.db")


def test_a_file_that_holds_anything_is_left_to_the_migrations(tmp_path: Path) -> None:
    """A database with tables of its own: nothing is created directly; the migrations decide,
    as before (here: an events table that envguard did not make is refused)."""
    path = tmp_path / "foreign.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (id INTEGER)")
    conn.commit()
    conn.close()
    store = SqlLineageStore(f"sqlite:///{path}")
    assert store._direct is not None
    assert store._direct.create_schema(SCHEMA_REVISION) is False
    with pytest.raises(StoreError, match="not made by envguard"):
        store.open()
    store.close()
    assert [r[1] for r in _schema_tables(path)] == ["events"]


def _schema_tables(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute("SELECT type, name FROM sqlite_master")]
    finally:
        conn.close()


def test_the_usual_path_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    """Create a store, open it again, look up, read and append: SQLAlchemy is never imported."""
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    script = textwrap.dedent(
        f"""
        import sys
        from envguard.lineage.events import EventDraft
        from envguard.lineage.sql import SqlLineageStore
        SqlLineageStore({url!r}).open().close()  # a new file: its schema is created
        store = SqlLineageStore({url!r})
        store.open()
        store.edges_out_of(["sha256:1"])
        store.read("SELECT seq FROM chain_head WHERE id = 1")
        store.append_many([EventDraft("derivation", entities=["run:1"]) for _ in range(2)])
        store.close()
        assert "sqlalchemy" not in sys.modules, "sqlalchemy was imported"
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    store = SqlLineageStore(url)
    try:
        assert store.head()[0] == 2
    finally:
        store.close()
