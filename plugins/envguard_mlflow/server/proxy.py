"""Identity from an authenticating proxy: the user in a header, from the proxy's address only.

Name it as MLflow auth's ``authorization_function`` (in the file ``MLFLOW_AUTH_CONFIG_PATH``
points to)::

    authorization_function = envguard_mlflow.server.proxy:authenticate_trusted_header

========================== =====================================================================
``ENVGUARD_TRUSTED_PROXIES`` required: the addresses or networks (``10.0.0.0/8``) the proxy
                             connects from, comma-separated; the server does not start without
``ENVGUARD_PROXY_HEADER``    the header holding the user (default ``X-Forwarded-User``)
========================== =====================================================================

A request from any other address is answered 401, whatever headers it carries. MLflow calls the
function for Flask's routes with the real peer address, but for the routes FastAPI serves
(artifact uploads) inside a synthetic Flask request that has none; so envguard's ASGI middleware,
which sees every request first, checks the peer itself (:func:`peer_check`) and marks checked
requests with a header holding a secret of this process, which the function accepts instead.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from typing import Any

from envguard.errors import ConfigError

__all__ = [
    "FUNCTION",
    "PEER_HEADER",
    "authenticate_trusted_header",
    "enabled",
    "peer_check",
    "trusted_networks",
]

FUNCTION = "envguard_mlflow.server.proxy:authenticate_trusted_header"
PROXIES_ENV_VAR = "ENVGUARD_TRUSTED_PROXIES"
HEADER_ENV_VAR = "ENVGUARD_PROXY_HEADER"
PEER_HEADER = "x-envguard-trusted-peer"
_SECRET = secrets.token_hex(16)  # per process: the mark of a peer this process checked

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def enabled() -> bool:
    """True when MLflow's auth is configured to use this module's function."""
    from mlflow.server import auth

    return str(auth.auth_config.authorization_function) == FUNCTION


def trusted_networks(environ: Mapping[str, str] | None = None) -> list[Network]:
    environ = os.environ if environ is None else environ
    raw = environ.get(PROXIES_ENV_VAR, "").strip()
    if not raw:
        raise ConfigError(
            f"${PROXIES_ENV_VAR} is not set: with the trusted-header authorization function, "
            f"name the addresses the proxy connects from (e.g. {PROXIES_ENV_VAR}=10.0.0.7 or "
            f"10.0.0.0/24); without it anyone could send the header"
        )
    found: list[Network] = []
    for item in raw.split(","):
        try:
            found.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"${PROXIES_ENV_VAR}: {item.strip()!r} is not an address or network; "
                f"use e.g. 10.0.0.7, 10.0.0.0/24 or ::1"
            ) from None
    return found


def _trusted(address: str | None, networks: list[Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def authenticate_trusted_header() -> Any:
    """MLflow auth's ``authorization_function``: the user the proxy names, or a 401."""
    from flask import Response, request
    from werkzeug.datastructures import Authorization

    networks = trusted_networks()
    checked = secrets.compare_digest(request.headers.get(PEER_HEADER, ""), _SECRET)
    if not (checked or _trusted(request.remote_addr, networks)):
        return Response(
            f"not from a trusted proxy ({request.remote_addr or 'unknown address'})", status=401
        )
    header = os.environ.get(HEADER_ENV_VAR, "").strip() or "X-Forwarded-User"
    user = request.headers.get(header, "").strip()
    if not user:
        return Response(f"the proxy sent no {header} header", status=401)
    return Authorization("basic", {"username": user, "password": ""})


def peer_check(fastapi_app: Any) -> None:
    """ASGI middleware: refuse every request whose peer is not a trusted proxy; mark the others
    (and drop any mark a client sent) so that the function accepts them in MLflow's bridge."""
    from starlette.responses import PlainTextResponse

    networks = trusted_networks()  # raises now: the server does not start without it
    mark = PEER_HEADER.encode()

    async def envguard_trusted_peer(request: Any, call_next: Any) -> Any:
        host = request.client.host if request.client else None
        headers = [(k, v) for k, v in request.scope["headers"] if k.lower() != mark]
        if not _trusted(host, networks):
            return PlainTextResponse(f"not from a trusted proxy ({host})", status_code=401)
        request.scope["headers"] = [*headers, (mark, _SECRET.encode())]
        return await call_next(request)

    fastapi_app.middleware("http")(envguard_trusted_peer)
