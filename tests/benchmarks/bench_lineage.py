"""The lineage store: append throughput, graph queries at scale, and verification speed.

Each figure is compared with the plain tool in the same run: a plain SQLAlchemy insert of the
same rows (no hashing, no chain), the same query in a store 100 times smaller, and raw sha256
over the same bytes.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

NAME = "lineage"
APPENDS = 2000
SMALL, LARGE = 10_000, 1_000_000


def _draft(i: int) -> Any:
    from envguard.lineage.events import EventDraft, Link

    return EventDraft(
        "derivation",
        entities=[f"run:{i % 97}"],
        links=[Link(f"sha256:{i}", f"sha256:{i + 1}")],
        payload={"i": i, "step": "prepare"},
        actor="ada",
        environment="train",
        policy_sha256="p" * 64,
        time="2026-11-26T00:00:00.000000Z",
    )


def _append_rate(folder: Path) -> tuple[float, float]:
    import sqlalchemy as sa

    from envguard.lineage import schema as t
    from envguard.lineage.sql import SqlLineageStore

    store = SqlLineageStore(f"sqlite:///{folder / 'chained.db'}")
    store.open()
    start = time.perf_counter()
    for i in range(APPENDS):
        store.append(_draft(i))
    chained = APPENDS / (time.perf_counter() - start)
    store.close()

    # The plain baseline: the same rows into the same tables, one transaction each, no chain.
    engine = sa.create_engine(f"sqlite:///{folder / 'plain.db'}")

    @sa.event.listens_for(engine, "connect")
    def _wal(dbapi: Any, _record: Any) -> None:
        dbapi.execute("PRAGMA journal_mode = WAL")
        dbapi.execute("PRAGMA synchronous = NORMAL")

    t.metadata.create_all(engine)
    start = time.perf_counter()
    for i in range(APPENDS):
        with engine.begin() as conn:
            conn.execute(
                t.events.insert().values(
                    seq=i + 1,
                    time="2026-11-26T00:00:00.000000Z",
                    actor="ada",
                    environment="train",
                    kind="derivation",
                    body=f'{{"actor":"ada","entities":["run:{i % 97}"],"environment":"train",'
                    f'"kind":"derivation","links":[["sha256:{i}","sha256:{i + 1}","derived"]],'
                    f'"payload":{{"i":{i},"step":"prepare"}},"policy_sha256":"{"p" * 64}",'
                    f'"time":"2026-11-26T00:00:00.000000Z"}}',
                    policy_sha256="p" * 64,
                    prev_hash="",
                    hash="",
                )
            )
            conn.execute(
                t.event_entities.insert(),
                [
                    {"entity": f"run:{i % 97}", "seq": i + 1},
                    {"entity": f"sha256:{i}", "seq": i + 1},
                    {"entity": f"sha256:{i + 1}", "seq": i + 1},
                ],
            )
            conn.execute(
                t.edges.insert().values(
                    src=f"sha256:{i}", dst=f"sha256:{i + 1}", relation="derived", seq=i + 1
                )
            )
    plain = APPENDS / (time.perf_counter() - start)
    engine.dispose()
    return chained, plain


def _build(path: Path, events: int) -> Any:
    from envguard.lineage.sql import SqlLineageStore

    store = SqlLineageStore(f"sqlite:///{path}")
    batch = 20_000
    for start in range(0, events, batch):
        store.append_many([_draft(i) for i in range(start, min(events, start + batch))])
    return store


def _ancestors_ms(store: Any, entity: str, repeat: int = 200) -> float:
    store.ancestors(entity, depth=6)
    start = time.perf_counter()
    for _ in range(repeat):
        edges = store.ancestors(entity, depth=6)
    assert len(edges) == 6
    return (time.perf_counter() - start) / repeat * 1000


def _verify_vs_hash(store: Any) -> tuple[float, float, float, int]:
    import resource

    from envguard.lineage.verify import verify_store

    start = time.perf_counter()
    report = verify_store(store, lambda *a: None)
    verify_s = time.perf_counter() - start
    assert report.ok, report.findings[:3]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Raw hashing of the same bytes the chain hashes, prepared in memory beforehand.
    blobs = []
    prev = "0" * 64
    for seq, body, _prev_col, digest in store.chain_rows():
        blobs.append(f"{seq}\n{prev}\n{body}".encode())
        prev = digest
    start = time.perf_counter()
    for blob in blobs:
        hashlib.sha256(blob).hexdigest()
    hash_s = time.perf_counter() - start
    start = time.perf_counter()
    deep = verify_store(store, lambda *a: None, indexes=True)
    indexes_s = time.perf_counter() - start
    assert deep.ok, deep.findings[:3]
    return verify_s, hash_s, indexes_s, int(rss_mb)


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        chained, plain = _append_rate(folder)
        small = _build(folder / "small.db", SMALL)
        large = _build(folder / "large.db", LARGE)
        small_ms = _ancestors_ms(small, f"sha256:{SMALL // 2}")
        large_ms = _ancestors_ms(large, f"sha256:{LARGE // 2}")
        verify_s, hash_s, indexes_s, rss_mb = _verify_vs_hash(large)
        small.close()
        large.close()
    return {
        "name": NAME,
        "command": f"SqlLineageStore.append x{APPENDS} (SQLite WAL, one event per transaction); "
        f"ancestors(depth=6) in stores of {SMALL:,} and {LARGE:,} events; "
        f"verify_store over {LARGE:,} events, and with indexes=True (audit verify --indexes)",
        "baseline": "plain SQLAlchemy insert of the same rows, one transaction each, no hashing; "
        "the same query in the small store; hashlib.sha256 over the same bytes",
        "results": {
            "append_per_s": round(chained),
            "plain_insert_per_s": round(plain),
            "append_ratio": round(chained / plain, 3),
            "ancestors_10k_ms": round(small_ms, 3),
            "ancestors_1m_ms": round(large_ms, 3),
            "ancestors_ratio": round(large_ms / small_ms, 3),
            "verify_1m_s": round(verify_s, 2),
            "sha256_1m_s": round(hash_s, 2),
            "verify_ratio": round(verify_s / hash_s, 2),
            "verify_indexes_1m_s": round(indexes_s, 2),
            "verify_indexes_ratio": round(indexes_s / hash_s, 2),
            "peak_rss_mb": rss_mb,
        },
        "goals": {"append_ratio": ">= 0.5", "ancestors_ratio": "<= 2", "verify_ratio": "<= 3"},
        "met": chained / plain >= 0.5 and large_ms / small_ms <= 2 and verify_s / hash_s <= 3,
    }
