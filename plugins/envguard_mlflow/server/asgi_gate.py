"""The gate for routes FastAPI serves itself (MLflow 3 under uvicorn), which never reach
Flask's ``before_request``: artifact uploads (``PUT /api/2.0/mlflow-artifacts/artifacts/...``)
and any other native route. It runs before MLflow's own permission middleware, so it
authenticates the request with MLflow's basic auth itself; an unauthenticated request passes
on to MLflow, which answers 401.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from envguard_mlflow.server.flask_gate import GateRequest, check_for
from envguard_mlflow.server.routes import RouteTable

if TYPE_CHECKING:
    from envguard_mlflow.server.context import ServerContext

__all__ = ["install"]

log = logging.getLogger(__name__)


def _authenticate(request: Any) -> Any:
    """The user MLflow's auth would authenticate: basic auth, or the configured
    ``authorization_function`` (e.g. a trusted header set by an authenticating proxy)."""
    from mlflow.server import auth

    default = "mlflow.server.auth:authenticate_request_basic_auth"
    if auth.auth_config.authorization_function != default:
        return auth._authenticate_custom_for_fastapi(request)
    return auth._authenticate_fastapi_request(request)


def install(fastapi_app: Any, ctx: ServerContext, table: RouteTable) -> None:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse

    async def envguard_gate(request: Any, call_next: Any) -> Any:
        route = table.lookup(request.url.path, request.method, "fastapi")
        check = check_for(route)
        if check is None or route is None:
            return await call_next(request)
        user = await run_in_threadpool(_authenticate, request)
        if user is None or not hasattr(user, "username"):
            return await call_next(request)  # MLflow's auth answers 401 (or its own response)
        req = GateRequest(ctx, str(user.username), route.message, request.url.path, {})
        try:
            decision = await run_in_threadpool(check, req)
        except Exception as exc:
            log.exception("envguard: a check failed on %s %s", request.method, request.url.path)
            message = (
                f"envguard denied {request.method} {request.url.path}: the check failed "
                f"({type(exc).__name__}: {exc}); a security check that cannot run fails closed"
            )
            return JSONResponse({"error_code": "PERMISSION_DENIED", "message": message}, 403)
        if decision is None or decision.allowed:
            return await call_next(request)
        body = {"error_code": "PERMISSION_DENIED", "message": decision.explain()}
        return JSONResponse(body, status_code=403)

    # Added last, so it runs first: before MLflow's permission middleware, for every request.
    fastapi_app.middleware("http")(envguard_gate)
