"""The lineage store on SQLite and PostgreSQL: the chain, queries, verification, concurrency."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from envguard.errors import StoreError
from envguard.keys import signing_key
from envguard.lineage import events as events_module
from envguard.lineage.events import EventDraft, Link
from envguard.lineage.sql import SqlLineageStore
from envguard.lineage.verify import verify_store
from envguard.policy import load_policy
from tests.conftest import EXAMPLE_POLICY, ROOT

pytestmark = pytest.mark.integration


def draft(i: int, kind: str = "derivation") -> EventDraft:
    return EventDraft(
        kind,
        entities=[f"run:{i}"],
        links=[Link(f"sha256:{i}", f"sha256:{i + 1}")],
        payload={"i": i, "note": "ünïcode"},
        actor="ada",
        environment="train",
        policy_sha256="p" * 64,
    )


def no_signatures(keyid: str, signature: bytes, message: bytes) -> str | None:
    return None


@pytest.fixture
def store(store_url: str) -> SqlLineageStore:
    s = SqlLineageStore(store_url)
    yield s
    s.close()


def test_append_chain_and_read_back(store: SqlLineageStore) -> None:
    written = store.append_many([draft(i) for i in range(5)])
    assert [e.seq for e in written] == [1, 2, 3, 4, 5]
    assert written[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(written))
    assert store.head() == (5, written[-1].hash)
    read = list(store.events())
    assert [e.to_dict() for e in read] == [e.to_dict() for e in written]
    assert read[0].payload == {"i": 0, "note": "ünïcode"}
    assert [e.seq for e in store.events(kind="derivation", after_seq=3)] == [4, 5]
    assert [e.seq for e in store.events(entity="sha256:3")] == [3, 4]
    assert [e.seq for e in store.events(limit=2)] == [1, 2]
    assert verify_store(store, no_signatures).ok


def test_third_party_verification_snippet_from_the_docs(tmp_path: Path) -> None:
    """The 20 lines documented in envguard.lineage.events verify a real store."""
    db = tmp_path / ".envguard" / "lineage.db"
    db.parent.mkdir()
    s = SqlLineageStore(f"sqlite:///{db}")
    s.append_many([draft(i) for i in range(20)])
    s.close()
    doc = events_module.__doc__ or ""
    snippet = textwrap.dedent(doc[doc.index("    import hashlib") :])
    result = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "chain intact up to 20"
    with sa.create_engine(f"sqlite:///{db}").begin() as conn:
        conn.execute(sa.text("UPDATE events SET actor = 'mallory' WHERE seq = 7"))
    result = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert "event 7's columns were altered" in result.stderr
    with sa.create_engine(f"sqlite:///{db}").begin() as conn:
        conn.execute(sa.text("UPDATE events SET actor = 'ada', body = replace(body, 'ada', 'eve')"))
    result = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert "event 1 was altered" in result.stderr


def test_graph_queries_follow_edges_not_the_store(store: SqlLineageStore) -> None:
    store.append_many([draft(i) for i in range(10)])
    store.append(EventDraft("derivation", links=[Link("sha256:side", "sha256:5", "joined")]))
    up = store.ancestors("sha256:5")
    assert {(e.src, e.depth) for e in up} >= {
        ("sha256:4", 1),
        ("sha256:side", 1),
        ("sha256:3", 2),
        ("sha256:0", 5),
    }
    assert {e.src for e in store.ancestors("sha256:5", depth=2)} == {
        "sha256:4",
        "sha256:side",
        "sha256:3",
    }
    assert [e.dst for e in store.descendants("sha256:8")] == ["sha256:9", "sha256:10"]
    path = store.path("sha256:2", "sha256:6")
    assert path is not None
    assert [(e.src, e.dst) for e in path] == [
        (f"sha256:{i}", f"sha256:{i + 1}") for i in range(2, 6)
    ]
    assert store.path("sha256:6", "sha256:2") is None
    assert [e.seq for e in store.touching("sha256:5")] == [5, 6, 11]


def test_lineage_reaches_production_any_number_of_steps_up(store: SqlLineageStore) -> None:
    """Production data 100 derivations up (past any depth limit) is found, through a cycle and
    around a masked edge; the graph comes from one recursive query."""
    from envguard.lineage.origin import resolve_lineage, upstream_graph

    policy = load_policy(EXAMPLE_POLICY)
    chain = [f"sha256:n{i}" for i in range(101)]  # n100 <- n99 <- ... <- n0 (prod)
    drafts = [
        EventDraft("dataset.registered", entities=[chain[0]], payload={"origin": "prod"}),
        *(
            EventDraft("derivation", links=[Link(chain[i], chain[i + 1], "derived")])
            for i in range(100)
        ),
        EventDraft("derivation", links=[Link(chain[100], chain[50], "derived")]),  # a cycle
        EventDraft("derivation", links=[Link("sha256:raw", chain[100], "masked")]),
        EventDraft("dataset.registered", entities=["sha256:raw"], payload={"origin": "prod"}),
    ]
    store.append_many(drafts)
    graph = upstream_graph(store, chain[100])
    assert sum(len(v) for v in graph.values()) == 102
    found = resolve_lineage(store, policy, "d", chain[100])
    assert found.origin_env == "prod"
    assert found.chain[0].startswith("sha256:n0")
    assert len(found.chain) == 101
    assert resolve_lineage(store, policy, "d", "sha256:elsewhere").origin_env is None


def tamper(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def findings(store: SqlLineageStore, verifier=no_signatures) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(f.seq, f.problem) for f in verify_store(store, verifier).findings]


@pytest.fixture(params=["one-process", "parallel-slices"])
def slicing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Verification gives the same answer in one process and in parallel slices."""
    from envguard.lineage import verify

    if request.param == "parallel-slices":
        monkeypatch.setattr(verify, "PARALLEL_FROM", 7)
        monkeypatch.setattr(verify.os, "cpu_count", lambda: 2)


@pytest.mark.usefixtures("slicing")
def test_verify_names_each_kind_of_tampering(store: SqlLineageStore, store_url: str) -> None:
    store.append_many([draft(i) for i in range(30)])
    tamper(store_url, """UPDATE events SET body = replace(body, '"i":4', '"i":99') WHERE seq = 5""")
    assert findings(store) == [(5, "edited")]
    tamper(store_url, "DELETE FROM events WHERE seq IN (10, 11)")
    assert findings(store) == [(5, "edited"), (10, "deleted")]
    # Reorder: swap the sequence numbers of events 20 and 21.
    tamper(
        store_url,
        "UPDATE events SET seq = -1 WHERE seq = 20",
        "UPDATE events SET seq = 20 WHERE seq = 21",
        "UPDATE events SET seq = 21 WHERE seq = -1",
    )
    problems = findings(store)
    assert (20, "inserted-or-reordered") in problems
    assert (21, "inserted-or-reordered") in problems


@pytest.mark.usefixtures("slicing")
def test_verify_finds_an_inserted_event(store: SqlLineageStore, store_url: str) -> None:
    store.append_many([draft(i) for i in range(10)])
    # Shift events 6..10 up by one and put a forged event (correctly hashed on its own) at 6.
    tamper(
        store_url, *[f"UPDATE events SET seq = {s + 1} WHERE seq = {s}" for s in range(10, 5, -1)]
    )
    forged_prev = list(store.events())[4].hash
    body = events_module.body_text(
        actor="mallory",
        entities_json="[]",
        environment="prod",
        kind="approval.granted",
        links_json="[]",
        payload_json="{}",
        policy_sha256="p" * 64,
        time="2026-01-01T00:00:00.000000Z",
    )
    digest = events_module.chain_hash(6, forged_prev, body)
    tamper(
        store_url,
        "INSERT INTO events (seq, time, actor, environment, kind, policy_sha256, body, "
        "prev_hash, hash) VALUES (6, '2026-01-01T00:00:00.000000Z', 'mallory', 'prod', "
        f"'approval.granted', '{'p' * 64}', '{body}', '{forged_prev}', '{digest}')",
        "UPDATE chain_head SET seq = 11",
    )
    problems = findings(store)
    assert (7, "inserted-or-reordered") in problems
    assert problems[0][0] == 7


@pytest.mark.usefixtures("slicing")
def test_checkpoints_catch_truncation_and_forgery(tmp_path: Path, store_url: str) -> None:
    policy = load_policy(EXAMPLE_POLICY)
    key = signing_key(policy, environ={"ENVGUARD_SIGNING_KEY": _fresh_key()})
    store = SqlLineageStore(store_url, checkpoint_every=10, signer=key)
    store.append_many([draft(i) for i in range(25)])
    assert [cp.seq for cp in store.checkpoints()] == [10, 20]
    manual = store.checkpoint()
    assert manual.seq == 25
    assert store.checkpoint().signature == manual.signature  # idempotent at the same head

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    def verifier(keyid: str, signature: bytes, message: bytes) -> str | None:
        try:
            Ed25519PublicKey.from_public_bytes(key.public_raw).verify(signature, message)
        except InvalidSignature:
            return "bad signature"
        return None if keyid == key.key_id else "unknown key"

    assert findings(store, verifier) == []
    tamper(
        store_url,
        "DELETE FROM events WHERE seq > 22",
        "UPDATE chain_head SET seq = 22, hash = (SELECT hash FROM events WHERE seq = 22)",
    )
    assert findings(store, verifier) == [(25, "truncated")]
    tamper(store_url, f"UPDATE checkpoints SET head_hash = '{'x' * 64}' WHERE seq = 10")
    assert (10, "checkpoint") in findings(store, verifier)
    tamper(store_url, "UPDATE checkpoints SET time = '2000-01-01T00:00:00.000000Z' WHERE seq = 20")
    messages = [f.message for f in verify_store(store, verifier).findings]
    assert "checkpoint 20: bad signature" in messages
    store.close()


def _fresh_key() -> str:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


WRITER = """
import sys
from envguard.lineage.sql import SqlLineageStore
from envguard.lineage.events import EventDraft, Link
store = SqlLineageStore(sys.argv[1])
worker = sys.argv[2]
for i in range(int(sys.argv[3])):
    store.append(EventDraft("dataset.used", entities=[f"run:{worker}"],
                            links=[Link(f"sha256:{worker}-{i}", f"run:{worker}", "used-by")],
                            payload={"worker": worker, "i": i}, actor=worker))
store.close()
"""


def test_four_processes_append_one_chain(store_url: str) -> None:
    SqlLineageStore(store_url).open().close()  # create the schema once, as a first user would
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, f"w{n}", "1000"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    store = SqlLineageStore(store_url)
    report = verify_store(store, no_signatures)
    assert report.ok, report.findings[:5]
    assert report.events == 4000
    assert store.head()[0] == 4000
    for n in range(4):
        assert sorted(e.payload["i"] for e in store.events(entity=f"run:w{n}")) == list(range(1000))
    store.close()


def test_first_use_creates_the_schema_concurrently(store_url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, store_url, f"c{n}", "5"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = SqlLineageStore(store_url)
    assert verify_store(store, no_signatures).events == 15
    store.close()


def test_newer_or_foreign_schemas_are_refused(store_url: str) -> None:
    SqlLineageStore(store_url).open().close()
    tamper(store_url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(
        StoreError,
        match=r"schema revision 9999, made by a newer envguard; "
        r"upgrade envguard",
    ):
        SqlLineageStore(store_url).open()
    tamper(store_url, "DROP TABLE alembic_version")
    with pytest.raises(StoreError, match="not made by envguard"):
        SqlLineageStore(store_url).open()


def test_unreachable_store_says_which(tmp_path: Path) -> None:
    from tests.servers import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(StoreError, match=re.escape(f"lineage store {url}: cannot open")):
        SqlLineageStore(url, timeout=2).open()


@pytest.mark.usefixtures("slicing")
def test_verify_indexes_finds_what_the_gates_would_miss(
    store: SqlLineageStore, store_url: str
) -> None:
    """The chain covers the bodies; ``indexes=True`` also checks what is derived from them."""
    store.append_many([draft(i) for i in range(12)])

    def index_problems() -> list[tuple[int, str]]:
        report = verify_store(store, no_signatures, indexes=True)
        assert report.indexes_checked
        return [(f.seq, f.message) for f in report.findings]

    assert index_problems() == []
    assert findings(store) == []
    # Hide a link from the lineage graph, an entity from the index, an event from --kind.
    tamper(
        store_url,
        "DELETE FROM edges WHERE seq = 4",
        "DELETE FROM event_entities WHERE seq = 6 AND entity = 'run:5'",
        "UPDATE events SET kind = 'note' WHERE seq = 8",
    )
    assert findings(store) == []  # the chain itself is intact: these rows are not hashed
    problems = index_problems()
    assert (
        4,
        "the lineage graph lacks sha256:3 -> sha256:4 (derived) of event 4: lineage "
        "queries would miss it",
    ) in problems
    assert (6, "the entity index lacks run:5 of event 6: lineage queries would miss it") in problems
    assert any(seq == 8 and "columns" in message for seq, message in problems)
    tamper(
        store_url,
        "INSERT INTO edges (src, dst, relation, seq) VALUES ('sha256:3', 'sha256:4', 'derived', 4)",
        "INSERT INTO event_entities (entity, seq) VALUES ('run:5', 6)",
        "UPDATE events SET kind = 'derivation' WHERE seq = 8",
    )
    assert index_problems() == []
    # A forged row beside a real event (a 'masked' link it never recorded), and one pointing at
    # no event at all.
    tamper(
        store_url,
        "INSERT INTO edges (src, dst, relation, seq) VALUES ('sha256:0', 'sha256:9', 'masked', 3)",
    )
    assert index_problems() == [
        (
            3,
            "the lineage graph holds sha256:0 -> sha256:9 (masked) for event 3, which the event "
            "does not hold",
        )
    ]
    tamper(
        store_url,
        "DELETE FROM edges WHERE relation = 'masked'",
        "INSERT INTO event_entities (entity, seq) VALUES ('sha256:ghost', 99)",
    )
    assert index_problems() == [
        (99, "the entity index holds sha256:ghost for event 99, which does not exist")
    ]
    tamper(
        store_url,
        "DELETE FROM event_entities WHERE seq = 99",
        "UPDATE events SET prev_hash = '" + "f" * 64 + "' WHERE seq = 10",
    )
    assert findings(store) == []  # the hashes chain event 10 to event 9: only the copy changed
    assert [seq for seq, _ in index_problems()] == [10]


def test_a_store_of_the_first_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    """Schema 0001 kept entities, links and payload in columns; opening it moves them into the
    hashed body (hashes unchanged) and the chain still verifies."""
    from alembic import command
    from alembic.config import Config

    from envguard.lineage.migrate import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        prev = events_module.GENESIS
        for seq in (1, 2):
            d = draft(seq)
            entities = events_module.canonical_json(list(d.entities))
            links = events_module.canonical_json([link.as_list() for link in d.links])
            payload = events_module.canonical_json(dict(d.payload))
            body = events_module.body_text(
                actor=d.actor,
                entities_json=entities,
                environment=d.environment,
                kind=d.kind,
                links_json=links,
                payload_json=payload,
                policy_sha256=d.policy_sha256,
                time="2026-11-26T00:00:00.000000Z",
            )
            digest = events_module.chain_hash(seq, prev, body)
            conn.execute(
                sa.text(
                    "INSERT INTO events VALUES (:seq, :time, 'ada', 'train', 'derivation', "
                    ":entities, :links, :payload, :policy, :prev, :hash)"
                ),
                {
                    "seq": seq,
                    "time": "2026-11-26T00:00:00.000000Z",
                    "entities": entities,
                    "links": links,
                    "payload": payload,
                    "policy": "p" * 64,
                    "prev": prev,
                    "hash": digest,
                },
            )
            conn.execute(
                sa.text("INSERT INTO edges VALUES (:src, :dst, 'derived', :seq)"),
                {"src": f"sha256:{seq}", "dst": f"sha256:{seq + 1}", "seq": seq},
            )
            for entity in (f"run:{seq}", f"sha256:{seq}", f"sha256:{seq + 1}"):
                conn.execute(
                    sa.text("INSERT INTO event_entities VALUES (:e, :seq)"),
                    {"e": entity, "seq": seq},
                )
            prev = digest
        conn.execute(sa.text("UPDATE chain_head SET seq = 2, hash = :h"), {"h": prev})
    engine.dispose()
    store = SqlLineageStore(url)
    report = verify_store(store, no_signatures, indexes=True)
    assert report.ok, report.findings
    assert report.events == 2
    assert [e.payload for e in store.events()] == [
        {"i": 1, "note": "ünïcode"},
        {"i": 2, "note": "ünïcode"},
    ]
    store.append(draft(3))
    assert verify_store(store, no_signatures, indexes=True).ok
    store.close()
