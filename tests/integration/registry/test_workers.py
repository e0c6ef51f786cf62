"""The app under MLflow's multi-worker server (uvicorn, ``--workers 4``), with MLflow's backend
store, its auth store and envguard's lineage store on PostgreSQL.

Two clients promote the same model version at the same instant, several rounds: both get the
same answer, the registry ends in the state that answer implies, each request leaves its own
``promotion.requested`` and ``promotion.allowed``/``denied`` records in one hash chain, and
``envguard audit verify`` passes afterwards. Approvals granted by different workers are signed
by the one key the workers share.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.conftest import CliResult
from tests.integration.registry.conftest import RegistryServer, evaluate, train

pytestmark = pytest.mark.integration

ROUNDS = 2


def _at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run the calls in threads released by one barrier, so they reach the server together."""
    barrier = threading.Barrier(len(calls))
    answers: list[Any] = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            answers[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for answer in answers:
        assert isinstance(answer, requests.Response), answer
    return answers


def _set_alias(server: RegistryServer, user: str, name: str, version: str, alias: str) -> Any:
    session = server.http(user)
    return lambda: session.post(
        f"{server.url}/api/2.0/mlflow/registered-models/alias",
        json={"name": name, "alias": alias, "version": version},
        timeout=120,
    )


def _records(server: RegistryServer, uri: str) -> list[Any]:
    return [e for e in server.events() if uri in e.entities and e.kind.startswith("promotion.")]


def test_concurrent_promotions_of_one_version_agree_and_chain(
    workers_server: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    envguard_cli: Callable[..., CliResult],
) -> None:
    server = workers_server
    keyids: set[str] = set()
    for round_ in range(ROUNDS):
        trained = train(server, monkeypatch, weights=f"round-{round_}")
        uri = trained.uri

        # Without approvals: both are refused, for the same reasons, and nothing moves.
        refused = _at_once(
            [
                _set_alias(server, "ada", trained.name, trained.version, "production"),
                _set_alias(server, "admin", trained.name, trained.version, "production"),
            ]
        )
        assert [r.status_code for r in refused] == [403, 403], [r.text for r in refused]
        reasons = [r.json()["message"].split("\n", 1)[1] for r in refused]
        assert reasons[0] == reasons[1]
        assert "needs 2 approval(s)" in reasons[0]

        # Staged, evaluated and approved (each approval maybe by another worker): both allowed.
        staged = _set_alias(server, "ada", trained.name, trained.version, "staging")()
        assert staged.status_code == 200, staged.text
        evaluate(server, monkeypatch, trained)
        for approver in ("grace", "linus"):
            granted = server.http(approver).post(
                f"{server.url}/api/2.0/envguard/approvals",
                json={"name": trained.name, "version": trained.version, "to": "prod"},
                timeout=120,
            )
            assert granted.status_code == 200, granted.text
            keyids.add(granted.json()["keyid"])
        allowed = _at_once(
            [
                _set_alias(server, "ada", trained.name, trained.version, "production"),
                _set_alias(server, "admin", trained.name, trained.version, "production"),
            ]
        )
        assert [r.status_code for r in allowed] == [200, 200], [r.text for r in allowed]
        client = server.client("ada", monkeypatch)
        assert client.get_model_version_by_alias(trained.name, "production").version == (
            trained.version
        )

        # One record pair per request: requested, then its outcome, by the same actor.
        records = _records(server, uri)
        prod = [e for e in records if e.environment == "prod"]
        kinds = sorted((e.actor, e.kind) for e in prod)
        assert kinds == sorted(
            (actor, kind)
            for actor in ("ada", "admin")
            for kind in ("promotion.requested", "promotion.denied", "promotion.allowed")
            for _ in range(2 if kind == "promotion.requested" else 1)
        ), kinds
        seqs = [e.seq for e in records]
        assert len(set(seqs)) == len(seqs)

    assert len(keyids) == 1, f"workers signed with different keys: {keyids}"
    monkeypatch.setenv("ENVGUARD_CONFIG", str(server.policy))
    verified = envguard_cli("audit", "verify", "--json")
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert verified.json()["ok"] is True
