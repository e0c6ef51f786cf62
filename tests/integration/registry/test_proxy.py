"""Trusted-header identity: the user from the proxy's header, only from the proxy's addresses.

In-process, through a real Flask request context (MLflow calls the function in one) and a real
FastAPI app driven over ASGI (envguard's peer check runs as its middleware).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from envguard_mlflow.server import proxy
from flask import Flask, Response
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from envguard.errors import ConfigError


def _flask_call(remote: str | None, headers: dict[str, str]) -> Any:
    app = Flask(__name__)
    environ = {"REMOTE_ADDR": remote} if remote else {}
    with app.test_request_context(
        "/api/2.0/mlflow/experiments/get", headers=headers, environ_base=environ
    ):
        return proxy.authenticate_trusted_header()


def test_the_header_counts_only_from_a_trusted_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVGUARD_TRUSTED_PROXIES", "10.0.0.7, 192.168.1.0/24")
    user = {"X-Forwarded-User": "grace"}
    assert _flask_call("10.0.0.7", user).username == "grace"
    assert _flask_call("192.168.1.44", user).username == "grace"
    refused = _flask_call("10.0.0.8", user)
    assert isinstance(refused, Response)
    assert refused.status_code == 401
    assert isinstance(_flask_call(None, user), Response)  # no address: refused
    assert isinstance(_flask_call("10.0.0.7", {}), Response)  # no user: refused
    forged = {**user, proxy.PEER_HEADER: "guessed"}
    assert isinstance(_flask_call("10.9.9.9", forged), Response)

    monkeypatch.setenv("ENVGUARD_PROXY_HEADER", "X-Auth-Request-User")
    assert _flask_call("10.0.0.7", {"X-Auth-Request-User": "linus"}).username == "linus"


def test_no_trusted_proxies_no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVGUARD_TRUSTED_PROXIES", raising=False)
    with pytest.raises(ConfigError, match="ENVGUARD_TRUSTED_PROXIES"):
        proxy.trusted_networks()
    monkeypatch.setenv("ENVGUARD_TRUSTED_PROXIES", "10.0.0.300")
    with pytest.raises(ConfigError, match="not an address"):
        proxy.trusted_networks()


def _asgi(app: Any, client: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": "/api/2.0/mlflow-artifacts/artifacts/x",
        "raw_path": b"",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": (client, 50000),
        "server": ("127.0.0.1", 5000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


def test_fastapi_routes_check_the_peer_and_mark_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Routes FastAPI serves reach the function in a synthetic Flask request without the peer's
    address: the middleware checks the peer and marks the request; a client's mark is dropped."""
    from fastapi import FastAPI

    monkeypatch.setenv("ENVGUARD_TRUSTED_PROXIES", "10.0.0.7")

    async def upload(request: Request) -> PlainTextResponse:  # what MLflow's bridge would do
        headers = dict(request.headers)
        with Flask(__name__).test_request_context("/x", headers=headers):
            answer = proxy.authenticate_trusted_header()
        return PlainTextResponse(getattr(answer, "username", None) or "401")

    app = FastAPI()
    app.add_api_route("/api/2.0/mlflow-artifacts/artifacts/x", upload, methods=["PUT"])
    proxy.peer_check(app)
    user = [(b"x-forwarded-user", b"grace")]
    assert _asgi(app, "10.0.0.7", user) == (200, b"grace")
    status, _ = _asgi(app, "10.0.0.9", [*user, (proxy.PEER_HEADER.encode(), b"forged")])
    assert status == 401
    forged_mark = [*user, (proxy.PEER_HEADER.encode(), b"forged")]
    assert _asgi(app, "10.0.0.7", forged_mark) == (200, b"grace")  # replaced by the real mark
