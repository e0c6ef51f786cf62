"""The gate on Flask's side: ``before_request`` (after MLflow's auth), ``after_request``.

Every request that reaches a route MLflow's Flask app serves passes :func:`before_request`
once MLflow's basic auth has authenticated it (the authenticated user is the actor; admins
included). The route's request message (from ``mlflow.server.handlers.get_endpoints()``) picks
the check in :data:`CHECKS`. A denial is HTTP 403 with MLflow's error JSON, every reason and
its remedy in the message. A check that fails unexpectedly denies (fail closed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from envguard.decisions import Decision, Reason, conclude
from envguard.lineage.events import Link
from envguard_mlflow.server.promotion import RUN_CREATED, VERSION_CREATED, PromotionGate, run_entity
from envguard_mlflow.server.registry_checks import REGISTRY_CHECKS
from envguard_mlflow.server.routes import Route, RouteClass, RouteTable
from envguard_mlflow.server.versions import version_uri

if TYPE_CHECKING:
    from flask import Flask, Response

    from envguard_mlflow.server.context import ServerContext

__all__ = ["CHECKS", "GateRequest", "denial", "install"]

log = logging.getLogger(__name__)


class GateRequest:
    """One request as a check sees it: who, which route, which parameters."""

    def __init__(
        self, ctx: ServerContext, actor: str, message: str, path: str, params: Mapping[str, Any]
    ) -> None:
        self.ctx = ctx
        self.actor = actor
        self.message = message
        self.path = path
        self.params = params
        self.gate = PromotionGate(ctx)

    def get(self, name: str) -> str:
        value = self.params.get(name)
        return "" if value is None else str(value)

    def deny(self, subject: str, reasons: list[Reason], env: str | None = None) -> Decision:
        decision = conclude("registry-write", subject, reasons, self.ctx.policy, env)
        if decision.violated:
            try:
                self.ctx.record(
                    "violation.found",
                    actor=self.actor,
                    environment=env,
                    entities=[subject],
                    payload={"route": self.path, "decision": decision.to_dict()},
                    required=False,
                )
            except Exception:  # the denial stands whether or not it is recorded
                log.exception("envguard: could not record a refused registry write")
        return decision


Check = Callable[[GateRequest], Decision | None]


def denial(message: str, status: int = 403) -> Response:
    from flask import Response

    body = {"error_code": "PERMISSION_DENIED", "message": message}
    return Response(json.dumps(body), status=status, mimetype="application/json")


# -- checks ----------------------------------------------------------------------------------
def check_set_alias(req: GateRequest) -> Decision | None:
    name, alias, version = req.get("name"), req.get("alias"), req.get("version")
    env = req.ctx.policy.env_for_alias(alias)
    if env is None or req.ctx.is_prompt(name, version):
        return None
    return req.gate.decide_and_record(name, version, env, req.actor, f"alias @{alias}")


def check_transition_stage(req: GateRequest) -> Decision | None:
    name, version, stage = req.get("name"), req.get("version"), req.get("stage")
    env = req.ctx.policy.env_for_stage(stage)
    if env is None:
        return None
    return req.gate.decide_and_record(name, version, env, req.actor, f"stage {stage}")


def check_delete_alias(req: GateRequest) -> Decision | None:
    name, alias = req.get("name"), req.get("alias")
    env = req.ctx.policy.env_for_alias(alias)
    if env is None or req.ctx.is_prompt(name):
        return None
    return req.deny(
        f"models:/{name}@{alias}",
        [
            Reason(
                "protected-alias",
                f"alias @{alias} puts a version of {name!r} into environment {env!r}; "
                f"deleting it would change what {env!r} serves without a promotion",
                f"promote the version {env!r} should serve instead: "
                f"envguard promote models:/{name}/VERSION --to {alias}",
                guideline=10,
            )
        ],
        env,
    )


def check_unknown(req: GateRequest) -> Decision:
    return req.deny(
        req.path,
        [
            Reason(
                "unknown-route",
                f"{req.path} ({req.message}) writes to the registry or its evidence and envguard "
                f"does not know it; refused, because an unchecked route fails closed",
                "use the MLflow routes envguard checks, or ask for this one to be classified "
                "(envguard_mlflow.server.routes)",
            )
        ],
    )


CHECKS: dict[str, Check] = {
    "set-alias": check_set_alias,
    "delete-alias": check_delete_alias,
    "transition-stage": check_transition_stage,
    **REGISTRY_CHECKS,
}


# -- wiring ----------------------------------------------------------------------------------
_RECORDED = {"mlflow.CreateRun", "mlflow.CreateModelVersion", "mlflow.SetTag", "mlflow.LogBatch"}
EVALUATED_RELATION = "evaluated-by"
Record = tuple[str, list[str], list[Link], dict[str, Any]]


def _lineage_records(
    message: str, body: Mapping[str, Any], params: Mapping[str, Any]
) -> list[Record]:
    """What a successful tracking or registry call adds to the lineage log: the run's or the
    version's creator; the run a version was registered from (``registered``); the model version
    a run evaluates (``evaluated-by``, from the ``envguard.evaluates`` tag)."""
    from envguard_mlflow.server.context import EVALUATES_TAG

    found: list[Record] = []
    tags: list[Any] = []
    run_id: str | None = None
    if message == "mlflow.CreateRun":
        run = body["run"]
        run_id = str(run["info"]["run_id"])
        found.append((RUN_CREATED, [run_entity(run_id)], [], {}))
        tags = list((run.get("data") or {}).get("tags") or [])
    elif message == "mlflow.CreateModelVersion":
        mv = body["model_version"]
        uri = version_uri(mv["name"], mv["version"])
        source_run = mv.get("run_id")
        if source_run:
            run = run_entity(str(source_run))
            links = [Link(run, uri, "registered")]
            payload = {"run_id": str(source_run), "source": mv.get("source")}
            found.append((VERSION_CREATED, [uri, run], links, payload))
        else:
            found.append((VERSION_CREATED, [uri], [], {"source": mv.get("source")}))
    elif message in ("mlflow.SetTag", "mlflow.LogBatch"):
        run_id = str(params.get("run_id") or params.get("run_uuid") or "") or None
        tags = [params] if message == "mlflow.SetTag" else list(params.get("tags") or [])
    for tag in tags:
        value = str(tag.get("value") or "") if isinstance(tag, Mapping) else ""
        if run_id and tag.get("key") == EVALUATES_TAG and value.startswith("models:/"):
            run = run_entity(run_id)
            link = Link(value, run, EVALUATED_RELATION)
            found.append(("mlflow.run.evaluates", [run, value], [link], {"model_version": value}))
    return found


def _params() -> dict[str, Any]:
    from flask import request

    params: dict[str, Any] = dict(request.args.items())
    params.update(request.view_args or {})
    if request.method != "GET":
        body = request.get_json(force=True, silent=True)
        if isinstance(body, str):  # old clients double-encode, as MLflow's handlers accept
            try:
                body = json.loads(body)
            except ValueError:
                body = None
        if isinstance(body, dict):
            params.update(body)
    return params


def run_check(check: Check, req: GateRequest) -> Response | None:
    """Run one check: None lets the request through; a response refuses it. MLflow's own
    errors (a model that does not exist) are answered as MLflow would; any other failure
    denies (fail closed)."""
    from flask import Response, request
    from mlflow.exceptions import MlflowException

    try:
        decision = check(req)
    except MlflowException as exc:
        return Response(
            exc.serialize_as_json(),
            status=exc.get_http_status_code(),
            mimetype="application/json",
        )
    except Exception as exc:
        log.exception("envguard: a check failed on %s %s", request.method, request.path)
        return denial(
            f"envguard denied {request.method} {request.path}: the check failed "
            f"({type(exc).__name__}: {exc}); a security check that cannot run fails closed"
        )
    if decision is None or decision.allowed:
        return None
    return denial(decision.explain())


def check_for(route: Route | None) -> Check | None:
    """The check a route gets: its named check, the refusal of an unknown registry write, or
    None (reads and unrelated writes)."""
    if route is None:
        return None
    if route.kind is RouteClass.UNKNOWN:
        return check_unknown
    if route.kind is RouteClass.GUARDED:
        return CHECKS[route.check or ""]
    return None


def install(app: Flask, ctx: ServerContext, table: RouteTable) -> None:
    """Register the gate on ``app``, after MLflow's auth (Flask runs them in order)."""
    from flask import g, request

    def before_request() -> Response | None:
        rule = request.url_rule
        if rule is None:
            return None
        route = table.lookup(rule.rule, request.method, "flask")
        check = check_for(route)
        if check is None or route is None:
            return None
        message = route.message
        actor = getattr(g, "mlflow_authenticated_user", None)
        if not actor:
            return denial("envguard: no authenticated user; the registry is guarded")
        return run_check(check, GateRequest(ctx, str(actor), message, request.path, _params()))

    def after_request(response: Response) -> Response:
        rule = request.url_rule
        if rule is None or response.status_code != 200:
            return response
        route = table.lookup(rule.rule, request.method, "flask")
        message = route.message if route else ""
        actor = getattr(g, "mlflow_authenticated_user", None)
        if message not in _RECORDED or not actor:
            return response
        try:
            for kind, entities, links, payload in _lineage_records(
                message, response.get_json(silent=True) or {}, _params()
            ):
                ctx.record(
                    kind,
                    actor=str(actor),
                    environment=None,
                    entities=entities,
                    links=links,
                    payload=payload,
                    required=False,
                )
        except Exception:  # the creator is also known from MLflow's own fields
            log.exception("envguard: could not record the lineage of %s", request.path)
        return response

    app.before_request(before_request)
    app.after_request(after_request)
