"""The bundled alert sinks: log, file and signed webhooks, with a spool when delivery fails."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import envguard_alerts
import pytest

from envguard.decisions import DataLineage, decide_data_use
from envguard.plugins import PluginManager
from envguard.policy import Policy, load_policy
from tests.conftest import EXAMPLE_POLICY
from tests.servers import free_port

SECRET = "webhook-secret-for-tests"


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that records what it receives."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


def policy_with_alerts(folder: Path, url: str) -> Policy:
    text = EXAMPLE_POLICY.read_text()
    text = text.replace('url = "https://hooks.acme.example/envguard"', f'url = "{url}"')
    text = text.replace("enabled = false ", "enabled = true  ")
    path = folder / "envguard.toml"
    path.write_text(text)
    return load_policy(path)


def violation(policy: Policy) -> Any:
    return decide_data_use(policy, "train", DataLineage("raw.csv", "ab" * 32, "prod"))


def test_webhook_file_and_log(
    tmp_path: Path,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ENVGUARD_WEBHOOK_SECRET", SECRET)
    policy = policy_with_alerts(tmp_path, receiver.url)
    manager = PluginManager(environ={})
    manager.register(envguard_alerts, "alerts")
    with caplog.at_level(logging.WARNING, logger="envguard.alerts"):
        manager.on_violation(violation(policy), policy)
    assert "envguard deny: data-use of raw.csv" in caplog.text
    (delivery,) = receiver.received
    body = delivery["body"]
    data = json.loads(body)
    assert data["type"] == "envguard.violation"
    assert data["decision"]["reasons"][0]["rule"] == "prod-data-in-non-prod"
    assert data["policy_sha256"] == policy.sha256
    stamp = delivery["headers"]["X-Envguard-Timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    assert delivery["headers"]["X-Envguard-Signature"] == f"sha256={expected.hexdigest()}"
    lines = (tmp_path / ".envguard" / "violations.jsonl").read_text().splitlines()
    assert json.loads(lines[0]) == data


def test_failed_deliveries_are_spooled_then_retried(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = policy_with_alerts(tmp_path, receiver.url)
    spool = tmp_path / ".envguard" / "alerts-spool.jsonl"
    # No secret: nothing unsigned leaves; the alert waits.
    envguard_alerts.envguard_on_violation(violation(policy), policy)
    assert receiver.received == []
    assert len(spool.read_text().splitlines()) == 1
    # The endpoint answers an error: still kept.
    monkeypatch.setenv("ENVGUARD_WEBHOOK_SECRET", SECRET)
    receiver.status = 503
    envguard_alerts.envguard_on_violation(violation(policy), policy)
    assert len(spool.read_text().splitlines()) == 2
    # The endpoint is back: both waiting alerts and the new one are delivered, oldest first.
    receiver.status = 200
    receiver.received.clear()
    envguard_alerts.envguard_on_violation(violation(policy), policy)
    assert len(receiver.received) == 3
    assert not spool.exists()


def test_disabled_webhook_sends_nothing(tmp_path: Path, receiver: Receiver) -> None:
    policy = load_policy(EXAMPLE_POLICY)  # its webhook is configured but disabled
    assert policy.spec.alerts.webhooks[0].enabled is False
    path = tmp_path / "envguard.toml"
    path.write_text(EXAMPLE_POLICY.read_text())
    policy = load_policy(path)
    envguard_alerts.envguard_on_violation(violation(policy), policy)
    assert receiver.received == []
    assert not (tmp_path / ".envguard" / "alerts-spool.jsonl").exists()
