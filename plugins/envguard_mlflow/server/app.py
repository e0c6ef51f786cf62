"""The factory behind ``mlflow server --app-name envguard``.

It loads the policy and opens the lineage store first, and raises if either fails: the
server then does not start (MLflow itself only warns when a plugin fails to import). Then it
builds MLflow's basic-auth app (``mlflow.server.auth.create_app``, which creates the first
admin from ``MLFLOW_AUTH_ADMIN_PASSWORD``), and registers envguard's gate after auth's, so
that the authenticated user is the actor.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["build_app"]

log = logging.getLogger(__name__)


def build_app() -> Any:
    from envguard.runtime import Runtime
    from envguard_mlflow.server.context import ServerContext

    ctx = ServerContext.load(Runtime())  # raises PolicyError / StoreError: no server

    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app

    from envguard_mlflow.server import api, asgi_gate, flask_gate
    from envguard_mlflow.server.routes import RouteTable

    served = create_app(flask_app)
    api.install(flask_app, ctx)
    table = RouteTable.from_apps(flask_app, served if served is not flask_app else None)
    flask_gate.install(flask_app, ctx, table)
    if served is not flask_app:  # under uvicorn: routes FastAPI serves itself
        asgi_gate.install(served, ctx, table)
    from envguard_mlflow.server import proxy

    if proxy.enabled():  # behind an authenticating proxy: only its addresses (raises if unset)
        networks = proxy.trusted_networks()
        if served is not flask_app:
            proxy.peer_check(served)  # added last: runs before every other middleware
        log.warning("envguard: trusting the proxy header only from %s", networks)
    log.warning(
        "envguard: guarding the registry with policy %s (sha256 %s), lineage store %s; "
        "%d routes, %d guarded, %d unknown registry writes refused",
        ctx.policy.path,
        ctx.policy.sha256[:12],
        ctx.store.safe_url,
        len(table.routes),
        sum(1 for r in table.routes if r.check),
        len(table.unknown()),
    )
    return served
