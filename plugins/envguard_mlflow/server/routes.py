"""Every route the MLflow server serves, classified at start-up; unknown registry writes deny.

Routes come from MLflow's own tables: ``mlflow.server.handlers.get_endpoints()`` (path ->
request message), the Flask app's URL map (routes added by auth and by envguard), and the
FastAPI app's routes (served outside Flask's ``before_request``). Each (path, method) gets a
class:

``guarded``    envguard checks it (:data:`GUARDED` names the check)
``read``       reads only (GET, HEAD, OPTIONS, and the POST searches in :data:`READS`)
``unrelated``  writes something that cannot put a model version into an environment or change
               its evidence (metrics, traces, gateway, users, ...)
``unknown``    a write on a path that touches the registry or its evidence (see
               :data:`REGISTRY_PATH`) that envguard does not know: denied (fail closed), so a
               route a newer MLflow adds is refused until envguard classifies it
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "GUARDED",
    "READS",
    "REGISTRY_PATH",
    "Route",
    "RouteClass",
    "RouteTable",
    "classify",
]


class RouteClass(enum.StrEnum):
    GUARDED = "guarded"
    READ = "read"
    UNRELATED = "unrelated"
    UNKNOWN = "unknown"


#: Request message (or view name) -> the check envguard runs for it.
GUARDED: dict[str, str] = {
    "mlflow.SetRegisteredModelAlias": "set-alias",
    "mlflow.DeleteRegisteredModelAlias": "delete-alias",
    "mlflow.TransitionModelVersionStage": "transition-stage",
    "mlflow.CreateModelVersion": "create-version",
    "mlflow.RenameRegisteredModel": "rename-model",
    "mlflow.DeleteModelVersion": "delete-version",
    "mlflow.DeleteRegisteredModel": "delete-model",
    "mlflow.SetRegisteredModelTag": "model-tag",
    "mlflow.DeleteRegisteredModelTag": "delete-envguard-tag",
    "mlflow.SetModelVersionTag": "version-tag",
    "mlflow.DeleteModelVersionTag": "delete-envguard-tag",
    "mlflow.CreateRun": "run-tags",
    "mlflow.SetTag": "run-tags",
    "mlflow.LogBatch": "run-tags",
    "mlflow.DeleteTag": "delete-envguard-tag",
    "mlflow.DeleteRun": "delete-run",
    "mlflow.CreateLoggedModel": "logged-model-tags",
    "mlflow.SetLoggedModelTags": "logged-model-tags",
    "mlflow.DeleteLoggedModelTag": "delete-envguard-tag",
    "mlflow.CreatePresignedUploadUrl": "presigned-upload",
    "mlflow.artifacts.UploadArtifact": "artifact-write",
    "mlflow.artifacts.DeleteArtifact": "artifact-write",
    "mlflow.artifacts.CreateMultipartUpload": "artifact-write",
    "mlflow.artifacts.CompleteMultipartUpload": "artifact-write",
    "mlflow.artifacts.AbortMultipartUpload": "artifact-write",
    "_graphql": "graphql",
    "upload_artifact": "artifact-write",  # FastAPI's native upload route
}

#: Writes on registry paths that change neither what an environment serves nor its evidence.
UNRELATED: frozenset[str] = frozenset(
    {
        "mlflow.CreateRegisteredModel",
        "mlflow.UpdateRegisteredModel",
        "mlflow.UpdateModelVersion",
        "mlflow.UpdateRun",
        "mlflow.RestoreRun",
        "mlflow.LogMetric",
        "mlflow.LogParam",
        "mlflow.LogModel",
        "mlflow.LogInputs",
        "mlflow.LogOutputs",
        "mlflow.FinalizeLoggedModel",
        "mlflow.DeleteLoggedModel",
        "mlflow.LogLoggedModelParamsRequest",
        "mlflow.LinkPromptsToTrace",
        "mlflow.CreatePromptOptimizationJob",
        "mlflow.CancelPromptOptimizationJob",
        "mlflow.DeletePromptOptimizationJob",
        # MLflow auth's permission routes: who may act, not what an environment serves.
        "create_registered_model_permission",
        "update_registered_model_permission",
        "delete_registered_model_permission",
        "create_prompt_permission",
        "update_prompt_permission",
        "delete_prompt_permission",
        # MCP server aliases and versions: a registry of tool servers, not of model versions.
        "set_mcp_server_alias",
        "delete_mcp_server_alias",
        # envguard's own routes decide for themselves (approvals, promotion checks).
        "envguard_grant",
        "envguard_revoke",
        "envguard_check",
        "envguard_override",  # decides itself: the rules, the override role, MLflow's permission
    }
)

#: POST routes that only read.
READS: frozenset[str] = frozenset(
    {
        "mlflow.SearchRuns",
        "mlflow.SearchLoggedModels",
        "mlflow.GetLatestVersions",
        "mlflow.CreatePresignedDownloadUrl",
        "mlflow.SearchPromptOptimizationJobs",
    }
)

#: A write on a path like this can touch the registry or a model version's evidence.
REGISTRY_PATH = re.compile(
    r"registered-model|model-version|/runs/|logged-model|mlflow-artifacts|/artifacts|"
    r"graphql|prompt|alias|/envguard/",
    re.IGNORECASE,
)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def classify(path: str, method: str, message: str) -> RouteClass:
    """The class of one route; ``message`` is its request message's full name, or its view
    function's name when it has none."""
    if message in GUARDED:
        return RouteClass.GUARDED
    if method.upper() in _READ_METHODS or message in READS:
        return RouteClass.READ
    if message in UNRELATED or not REGISTRY_PATH.search(path):
        return RouteClass.UNRELATED
    return RouteClass.UNKNOWN


@dataclass(frozen=True)
class Route:
    path: str  # as the router spells it: /api/2.0/mlflow/x/<id> or /x/{id}
    method: str
    message: str
    served_by: str  # "flask" or "fastapi"
    kind: RouteClass

    @property
    def check(self) -> str | None:
        return GUARDED.get(self.message)


_PARAM = re.compile(r"<(?:[a-z]+:)?(\w+)>|\{(\w+)(?::path)?\}")


def _pattern(path: str) -> re.Pattern[str]:
    out, last = [], 0
    for match in _PARAM.finditer(path):
        out.append(re.escape(path[last : match.start()]))
        is_path = ":path" in match.group(0) or "path:" in match.group(0)
        out.append(".+" if is_path else "[^/]+")
        last = match.end()
    out.append(re.escape(path[last:]))
    return re.compile("".join(out))


class RouteTable:
    """The classified routes of one server, looked up by concrete path and method."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._exact = {(r.path, r.method): r for r in self.routes if "<" not in r.path}
        self._exact.update({(r.path, r.method): r for r in self.routes if "{" not in r.path})
        self._patterns = [
            (_pattern(r.path), r) for r in self.routes if "<" in r.path or "{" in r.path
        ]

    def lookup(self, path: str, method: str, served_by: str | None = None) -> Route | None:
        found = self._exact.get((path, method))
        if found is not None and served_by in (None, found.served_by):
            return found
        for pattern, route in self._patterns:
            if (
                route.method == method
                and served_by in (None, route.served_by)
                and pattern.fullmatch(path)
            ):
                return route
        return None

    def unknown(self) -> list[Route]:
        return [r for r in self.routes if r.kind is RouteClass.UNKNOWN]

    @classmethod
    def from_apps(cls, flask_app: object, fastapi_app: object | None = None) -> RouteTable:
        """Enumerate MLflow's endpoints, the Flask URL map and the FastAPI routes."""
        from mlflow.server.handlers import get_endpoints

        messages: dict[tuple[str, str], str] = {}
        for path, target, methods in get_endpoints(lambda cls: cls):
            descriptor = getattr(target, "DESCRIPTOR", None)
            name = descriptor.full_name if descriptor is not None else target.__name__
            for method in methods:
                messages[(path, method)] = str(name)
        routes: list[Route] = []
        url_map = getattr(flask_app, "url_map", None)
        views = getattr(flask_app, "view_functions", {})
        for rule in url_map.iter_rules() if url_map is not None else ():
            view = views.get(rule.endpoint)
            view_name = getattr(view, "__name__", str(rule.endpoint))
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                message = messages.get((rule.rule, method), view_name)
                routes.append(
                    Route(rule.rule, method, message, "flask", classify(rule.rule, method, message))
                )
        for path, method, message in _fastapi_routes(getattr(fastapi_app, "routes", None) or []):
            routes.append(Route(path, method, message, "fastapi", classify(path, method, message)))
        return cls(routes)


def _fastapi_routes(routes: Iterable[object], prefix: str = "") -> list[tuple[str, str, str]]:
    """(path, method, endpoint name) of every route FastAPI serves itself, through included
    routers; the Flask mount is left out (Flask's own table covers it)."""
    found: list[tuple[str, str, str]] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:  # an included router (FastAPI >= 0.120)
            context = getattr(route, "include_context", None)
            more = prefix + str(getattr(context, "prefix", "") or "")
            found.extend(_fastapi_routes(getattr(inner, "routes", []), more))
            continue
        path, endpoint = getattr(route, "path", None), getattr(route, "endpoint", None)
        if path is None or endpoint is None:  # the Flask mount, static files
            continue
        for method in sorted((getattr(route, "methods", None) or set()) - {"HEAD"}):
            found.append((prefix + str(path), method, str(getattr(endpoint, "__name__", ""))))
    return found
