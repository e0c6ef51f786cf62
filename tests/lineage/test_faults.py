"""A store that is locked, read-only or unreachable loses no observational event (it is spooled
and replayed in order), and refuses events that guard production (fail closed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from envguard.errors import StoreError
from envguard.lineage.events import EventDraft
from envguard.lineage.sql import SqlLineageStore
from envguard.lineage.verify import verify_store
from tests.servers import free_port

pytestmark = pytest.mark.integration


def event(n: int) -> EventDraft:
    return EventDraft("artifact.logged", entities=[f"run:{n}"], payload={"n": n})


def test_locked_sqlite_spools_then_replays_in_order(tmp_path: Path) -> None:
    db = tmp_path / "lineage.db"
    spool = tmp_path / "spool"
    store = SqlLineageStore(f"sqlite:///{db}", spool_dir=spool, timeout=0.2)
    store.append(event(1))
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    assert store.append(event(2), required=False) is None
    assert store.append_many([event(3), event(4)], required=False) == []
    assert store.spool is not None
    assert store.spool.count() == 3
    with pytest.raises(
        StoreError,
        match=rf"lineage store sqlite:///{db}: cannot record 1 "
        r"event\(s\) \(database is locked\); the action is "
        r"refused because its record is required",
    ):
        store.append(event(99))
    blocker.execute("ROLLBACK")
    blocker.close()
    written = store.append(event(5))
    assert written is not None
    assert written.seq == 5
    assert [e.payload["n"] for e in store.events()] == [1, 2, 3, 4, 5]
    assert store.spool.count() == 0
    assert verify_store(store, lambda *a: None).ok


def test_read_only_store_spools(tmp_path: Path) -> None:
    db = tmp_path / "lineage.db"
    SqlLineageStore(f"sqlite:///{db}").append(event(1))
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    store = SqlLineageStore(url, spool_dir=tmp_path / "spool", timeout=0.2)
    assert store.append(event(2), required=False) is None
    assert store.spool is not None
    assert store.spool.count() == 1
    with pytest.raises(StoreError, match="readonly database"):
        store.append(event(3))
    assert [e.payload["n"] for e in store.events()] == [1]  # reading still works


def test_unreachable_postgres_spools_and_refuses_required(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/envguard"
    store = SqlLineageStore(url, spool_dir=tmp_path / "spool", timeout=1)
    assert store.append(event(1), required=False) is None
    assert store.spool is not None
    assert store.spool.count() == 1
    with pytest.raises(StoreError, match="cannot record 1 event"):
        store.append(event(2))


def test_a_dead_process_journal_is_replayed_and_a_live_ones_is_not(tmp_path: Path) -> None:
    """Deferred events (envguard.gate's ``defer``) sit in a journal until written; a process
    that dies first leaves it, and the next write adopts it as a spool batch: nothing lost."""
    import subprocess
    import sys

    spool = tmp_path / "spool"
    code = (
        "import os, sys; from pathlib import Path; from envguard.lineage.spool import Spool\n"
        "from envguard.lineage.events import EventDraft, utc_now\n"
        "j = Spool(Path(sys.argv[1])).journal()\n"
        "j.add(EventDraft('dataset.used', entities=['run:dead'], time=utc_now()).to_json())\n"
        "os._exit(0)  # dies without writing its journal to the store\n"
    )
    subprocess.run([sys.executable, "-c", code, str(spool)], check=True)
    store = SqlLineageStore(f"sqlite:///{tmp_path / 'lineage.db'}", spool_dir=spool)
    assert store.spool is not None
    mine = store.spool.journal()
    mine.add(event(7).to_json())  # this process is alive: its journal stays its own
    store.append(event(1))
    assert [e.entities for e in store.events()] == [["run:dead"], ["run:1"]]
    assert mine.path.exists()
    mine.clear()
    mine.close()
    assert not mine.path.exists()
