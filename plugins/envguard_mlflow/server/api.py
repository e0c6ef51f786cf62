"""envguard's own routes on the MLflow server, behind MLflow's basic auth.

==========================================  ================================================
``POST /api/2.0/envguard/approvals``        grant: ``{name, version, to, comment}``; the
                                            approver is the authenticated user
``GET  /api/2.0/envguard/approvals``        list (``?name=&version=`` to narrow), checked
``POST /api/2.0/envguard/approvals/revoke`` revoke: ``{id, comment}``; by the approver or an
                                            administrator
``POST /api/2.0/envguard/promotions/check`` evaluate without moving: ``{name, version, to}``
``POST /api/2.0/envguard/promotions/override`` an emergency override: ``{name, version, to,
                                            reason}``; evaluated with the override, recorded
                                            (``promotion.overridden``), and the move made by
                                            the server when the actor holds an override role
==========================================  ================================================

Every route also answers under ``/ajax-api/2.0/``. Errors use MLflow's error JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from envguard.decisions import Reason, conclude
from envguard.errors import EnvGuardError, EnvironmentUnknown, StoreError
from envguard_mlflow.server.approvals import (
    approval_entity,
    new_statement,
    read_approvals,
    sign_statement,
)
from envguard_mlflow.server.promotion import GateContext, PromotionGate, run_entity
from envguard_mlflow.server.versions import bind_version, version_uri

if TYPE_CHECKING:
    from flask import Flask, Response

    from envguard_mlflow.server.context import ServerContext

__all__ = ["PREFIXES", "install", "resolve_move"]

PREFIXES = ("/api/2.0/envguard", "/ajax-api/2.0/envguard")


def _error(code: str, message: str, status: int) -> Response:
    from flask import Response

    body = json.dumps({"error_code": code, "message": message})
    return Response(body, status=status, mimetype="application/json")


def _ok(data: Any) -> Response:
    from flask import Response

    return Response(json.dumps(data, default=str), status=200, mimetype="application/json")


def resolve_move(ctx: GateContext, to: str) -> tuple[str, str, str]:
    """``--to`` (an environment, alias or stage) -> (environment, "alias"|"stage", name)."""
    policy = ctx.policy
    if policy.env_for_alias(to):
        return str(policy.env_for_alias(to)), "alias", to
    if policy.env_for_stage(to):
        return str(policy.env_for_stage(to)), "stage", to
    env = policy.resolve_target(to)  # EnvironmentUnknown when it names nothing
    for alias, mapped in policy.spec.registry.aliases.items():
        if mapped == env:
            return env, "alias", alias
    for stage, mapped in policy.spec.registry.stages.items():
        if mapped == env:
            return env, "stage", stage
    return env, "", ""


def _actor() -> str:
    from flask import g

    actor = getattr(g, "mlflow_authenticated_user", None)
    if not actor:
        raise PermissionError("no authenticated user")
    return str(actor)


def _body() -> dict[str, Any]:
    from flask import request

    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else {}


def _field(body: dict[str, Any], name: str) -> str:
    value = str(body.get(name) or "").strip()
    if not value:
        raise ValueError(f"missing field {name!r}")
    return value


def _guarded(view: Callable[[], Response]) -> Callable[[], Response]:
    """Answer envguard's and MLflow's errors as MLflow's error JSON."""
    from mlflow.exceptions import MlflowException

    def wrapper() -> Response:
        try:
            return view()
        except PermissionError as exc:
            return _error("PERMISSION_DENIED", str(exc), 403)
        except (ValueError, EnvironmentUnknown) as exc:
            return _error("INVALID_PARAMETER_VALUE", str(exc), 400)
        except StoreError as exc:
            return _error("TEMPORARILY_UNAVAILABLE", str(exc), 503)
        except EnvGuardError as exc:
            return _error("INVALID_PARAMETER_VALUE", str(exc), 400)
        except MlflowException as exc:
            from flask import Response

            return Response(
                exc.serialize_as_json(),
                status=exc.get_http_status_code(),
                mimetype="application/json",
            )

    wrapper.__name__ = f"envguard_{view.__name__}"
    return wrapper


class EnvguardApi:
    """The views; each acts as the user MLflow's auth authenticated."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    def grant(self) -> Response:
        actor = _actor()
        body = _body()
        name, version, to = _field(body, "name"), _field(body, "version"), _field(body, "to")
        target, _, _ = resolve_move(self.ctx, to)
        evaluation = PromotionGate(self.ctx).evaluate(name, version, target, actor)
        rule = self.ctx.policy.promotion_rule(target)
        reasons: list[Reason] = []
        if rule is not None and rule.separation_of_duties and actor in evaluation.request.creators:
            reasons.append(
                Reason(
                    "separation-of-duties",
                    f"{actor} created {version_uri(name, version)} (its run or the version) "
                    f"and cannot approve it for {target!r}",
                    "ask someone who did not train or register it",
                    guideline=10,
                )
            )
        wanted = set(rule.approver_roles) if rule else set()
        if wanted and not wanted & self.ctx.policy.roles_of(actor):
            reasons.append(
                Reason(
                    "approver-role",
                    f"{actor} holds none of the roles {', '.join(sorted(wanted))}",
                    f"ask a holder of {' or '.join(sorted(wanted))}",
                    guideline=10,
                )
            )
        if evaluation.binding is None:
            reasons.append(
                Reason(
                    "binding-unavailable",
                    "the version's files could not be read, so the approval cannot be bound",
                    "make the version's artifacts readable by the server, then retry",
                )
            )
        if reasons:
            decision = conclude(
                "approval", version_uri(name, version), reasons, self.ctx.policy, target
            )
            return _error("PERMISSION_DENIED", decision.explain(), 403)
        binding = evaluation.binding or bind_version(self.ctx.registry_store(), name, version)
        statement = new_statement(actor, binding, target, str(body.get("comment") or ""))
        signature = sign_statement(self.ctx.policy, statement)
        self.ctx.record(
            "approval.granted",
            actor=actor,
            environment=target,
            entities=[
                approval_entity(statement["id"]),
                binding.model_version,
                *([run_entity(binding.run_id)] if binding.run_id else []),
            ],
            payload={"statement": statement, **signature, "binding": binding.to_dict()},
        )
        return _ok({"approval": statement, **signature})

    def listing(self) -> Response:
        from flask import request

        _actor()
        name, version = request.args.get("name"), request.args.get("version")
        uri = version_uri(name, version) if name and version else None
        found = read_approvals(self.ctx.store, self.ctx.policy, uri)
        if name and not version:
            found = [
                a
                for a in found
                if str(a.statement.get("model_version", "")).startswith(f"models:/{name}/")
            ]
        return _ok({"approvals": [a.to_dict() for a in found]})

    def revoke(self) -> Response:
        from mlflow.server.auth import sender_is_admin

        actor = _actor()
        body = _body()
        approval_id = _field(body, "id")
        found = {a.id: a for a in read_approvals(self.ctx.store, self.ctx.policy)}
        approval = found.get(approval_id)
        if approval is None:
            raise ValueError(f"no approval {approval_id!r}; see envguard approvals list")
        approver = str(approval.statement.get("approver", ""))
        if actor != approver and not sender_is_admin():
            raise PermissionError(
                f"approval {approval_id} was granted by {approver}; only they or an "
                f"administrator may revoke it"
            )
        if approval.revoked is not None:
            raise ValueError(f"approval {approval_id} is already revoked")
        self.ctx.record(
            "approval.revoked",
            actor=actor,
            environment=str(approval.statement.get("target_env", "")),
            entities=[approval_entity(approval_id), str(approval.statement["model_version"])],
            payload={"id": approval_id, "comment": str(body.get("comment") or "")},
        )
        return _ok({"revoked": approval_id})

    def check(self) -> Response:
        actor = _actor()
        body = _body()
        name, version, to = _field(body, "name"), _field(body, "version"), _field(body, "to")
        target, kind, move = resolve_move(self.ctx, to)
        override = str(body.get("override") or "").strip() or None
        evaluation = PromotionGate(self.ctx).evaluate(name, version, target, actor, override)
        return _ok(
            {
                "target_env": target,
                "move": {"kind": kind, "name": move},
                "explain": evaluation.decision.explain(),
                **evaluation.to_dict(),
            }
        )

    def override(self) -> Response:
        """The move, made by the server, when the policy's rules or an emergency override of
        an actor holding one of the target's ``override_roles`` allow it. MLflow's own
        permission on the model still applies: the actor must be able to update it."""
        from mlflow.server.auth import sender_is_admin, validate_can_update_registered_model

        actor = _actor()
        body = _body()
        name, version, to = _field(body, "name"), _field(body, "version"), _field(body, "to")
        reason = _field(body, "reason")
        target, kind, move = resolve_move(self.ctx, to)
        if not kind:
            raise ValueError(f"the policy maps no alias or stage to {to!r}")
        if not (sender_is_admin() or validate_can_update_registered_model()):
            raise PermissionError(f"{actor} may not update registered model {name!r}")
        label = f"alias @{move}" if kind == "alias" else f"stage {move}"
        decision = PromotionGate(self.ctx).decide_and_record(
            name, version, target, actor, label, override=reason
        )
        if not decision.allowed:
            return _error("PERMISSION_DENIED", decision.explain(), 403)
        registry = self.ctx.registry_store()
        if kind == "alias":
            registry.set_registered_model_alias(name, move, version)
        else:
            registry.transition_model_version_stage(name, version, move, False)
        return _ok(
            {
                "target_env": target,
                "move": {"kind": kind, "name": move},
                "explain": decision.explain(),
                "decision": decision.to_dict(),
                "moved": True,
            }
        )


def install(app: Flask, ctx: ServerContext) -> None:
    """Add envguard's routes to MLflow's Flask app (MLflow's auth authenticates them)."""
    from mlflow.server import auth

    views = EnvguardApi(ctx)
    for prefix in PREFIXES:
        for path, method, view in (
            ("approvals", "POST", views.grant),
            ("approvals", "GET", views.listing),
            ("approvals/revoke", "POST", views.revoke),
            ("promotions/check", "POST", views.check),
            ("promotions/override", "POST", views.override),
        ):
            app.add_url_rule(
                f"{prefix}/{path}",
                endpoint=f"envguard:{prefix}/{path}:{method}",
                view_func=_guarded(view),
                methods=[method],
            )
            # MLflow's auth fails closed on routes it has no validator for; envguard's routes
            # are open to every authenticated user, and envguard's own checks decide.
            auth.BEFORE_REQUEST_VALIDATORS[(f"{prefix}/{path}", method)] = auth._allow_authenticated
