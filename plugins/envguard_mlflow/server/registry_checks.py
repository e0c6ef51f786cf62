"""The checks of registry writes other than promotions (route classes in :mod:`.routes`).

envguard's own tags (``envguard.*``) may be written only consistently, and never deleted:

* ``envguard.env``: a declared environment; the server's own environment when it serves one
  (``ENVGUARD_SERVER_ENV``, or the policy maps its ``MLFLOW_TRACKING_URI``); once set on an
  entity, never changed;
* ``envguard.tier``: the tier the policy gives that environment;
* ``envguard.actor``: the authenticated user, nobody else;
* ``envguard.policy_sha256``: the server's policy;
* ``envguard.evaluates``: on runs only, naming ``models:/NAME/VERSION``;
* ``envguard.created_in``: a declared environment, never changed once set;
* what the client plugin declares of itself and the server cannot know (``envguard.host``,
  ``envguard.git_commit``, ``envguard.model_id``): checked for form only (:data:`DECLARED`);
* any other ``envguard.*`` key: refused.

A version is *protected* when it is approved (an ``approval.granted`` not revoked) or promoted
(an alias or stage the policy maps to an environment). A protected version, its source run and
its files cannot be deleted or overwritten; a registered model holding one cannot be deleted
or renamed; a model the policy binds to an environment (``registry.models``) receives versions
only as a promotion of an existing version (``copy_model_version``) that the target's rules
allow.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from envguard.decisions import Decision, Reason
from envguard_mlflow.server.approvals import read_approvals
from envguard_mlflow.server.context import (
    ACTOR_TAG,
    ENV_TAG,
    EVALUATES_TAG,
    POLICY_TAG,
    TIER_TAG,
)
from envguard_mlflow.server.versions import storage_path, version_uri

if TYPE_CHECKING:
    from envguard_mlflow.server.flask_gate import GateRequest

__all__ = ["REGISTRY_CHECKS", "protected_storage", "tag_reasons"]

log = logging.getLogger(__name__)

Check = Callable[["GateRequest"], Decision | None]

# Tags envguard's MLflow client plugin writes that the server cannot verify, and their form.
DECLARED = {
    "envguard.host": re.compile(r"[^\s]{1,255}"),
    "envguard.git_commit": re.compile(r"[0-9a-f]{7,64}"),
    "envguard.model_id": re.compile(r"[A-Za-z0-9._-]{1,255}"),
}
CREATED_IN_TAG = "envguard.created_in"


def _tag_problem(
    req: GateRequest, key: str, value: str, existing: Mapping[str, str], env: str | None, run: bool
) -> str | None:
    """Why writing ``key=value`` is refused, or None."""
    policy = req.ctx.policy
    problem: str | None = None
    if key in (ENV_TAG, CREATED_IN_TAG):
        if value not in policy.spec.environments:
            problem = f"the policy declares no environment {value!r}"
        elif key == ENV_TAG and req.ctx.bound_env and value != req.ctx.bound_env:
            problem = f"this server serves environment {req.ctx.bound_env!r}"
        elif existing.get(key) and existing[key] != value:
            problem = f"it is already {existing[key]!r}; an origin never changes"
    elif key == TIER_TAG:
        expected = policy.tier(env) if env in policy.spec.environments else None
        problem = None if value == expected else f"environment {env!r} has tier {expected!r}"
    elif key == ACTOR_TAG:
        problem = None if value == req.actor else f"the authenticated user is {req.actor!r}"
    elif key == POLICY_TAG:
        problem = None if value == policy.sha256 else f"the server's policy is {policy.sha256}"
    elif key == EVALUATES_TAG and run:
        ok = value.startswith("models:/")
        problem = None if ok else "name the evaluated version as models:/NAME/VERSION"
    elif key in DECLARED:
        ok = DECLARED[key].fullmatch(value) is not None
        problem = None if ok else f"not of the form {DECLARED[key].pattern!r}"
    else:
        problem = "envguard writes no such tag here"
    return problem


def tag_reasons(
    req: GateRequest,
    subject: str,
    tags: Mapping[str, str],
    existing: Mapping[str, str],
    *,
    run: bool = False,
) -> list[Reason]:
    """A reason for each ``envguard.*`` tag in ``tags`` that may not be written."""
    env = tags.get(ENV_TAG) or existing.get(ENV_TAG) or req.ctx.bound_env
    reasons: list[Reason] = []
    for key, value in tags.items():
        if not key.startswith("envguard."):
            continue
        problem = _tag_problem(req, key, value, existing, env, run)
        if problem:
            reasons.append(
                Reason(
                    "protected-tag",
                    f"{subject}: tag {key}={value!r} refused: {problem}",
                    "let envguard's MLflow plugin write envguard.* tags; do not set them by hand",
                    guideline=5,
                )
            )
    return reasons


def _tags(items: Any) -> dict[str, str]:
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    return {str(t.get("key")): str(t.get("value", "")) for t in items or [] if isinstance(t, dict)}


def _deny(req: GateRequest, subject: str, reasons: list[Reason]) -> Decision | None:
    return req.deny(subject, reasons) if reasons else None


# -- tags ------------------------------------------------------------------------------------
def check_run_tags(req: GateRequest) -> Decision | None:
    run_id = req.get("run_id") or req.get("run_uuid")
    tags = _tags(req.params.get("tags"))
    if req.message == "mlflow.SetTag":
        tags = {req.get("key"): req.get("value")}
    if not any(k.startswith("envguard.") for k in tags):
        return None
    existing: dict[str, str] = {}
    if run_id:
        existing = dict(req.ctx.tracking_store().get_run(run_id).data.tags or {})
    subject = f"run:{run_id}" if run_id else "a new run"
    return _deny(req, subject, tag_reasons(req, subject, tags, existing, run=True))


def check_logged_model_tags(req: GateRequest) -> Decision | None:
    tags = _tags(req.params.get("tags"))
    if not any(k.startswith("envguard.") for k in tags):
        return None
    model_id = req.get("model_id") or req.path.rstrip("/").split("/")[-2]
    existing: dict[str, str] = {}
    if req.message == "mlflow.SetLoggedModelTags":
        existing = dict(req.ctx.tracking_store().get_logged_model(model_id).tags or {})
    subject = f"model:{model_id}"
    return _deny(req, subject, tag_reasons(req, subject, tags, existing))


def check_model_tag(req: GateRequest) -> Decision | None:
    key, value = req.get("key"), req.get("value")
    if not key.startswith("envguard."):
        return None
    name = req.get("name")
    existing = dict(req.ctx.registry_store().get_registered_model(name).tags or {})
    return _deny(
        req, f"models:/{name}", tag_reasons(req, f"models:/{name}", {key: value}, existing)
    )


def check_version_tag(req: GateRequest) -> Decision | None:
    key, value = req.get("key"), req.get("value")
    if not key.startswith("envguard."):
        return None
    name, version = req.get("name"), req.get("version")
    existing = dict(req.ctx.registry_store().get_model_version(name, version).tags or {})
    uri = version_uri(name, version)
    return _deny(req, uri, tag_reasons(req, uri, {key: value}, existing))


def check_delete_envguard_tag(req: GateRequest) -> Decision | None:
    key = req.get("key") or req.get("tag_key") or req.path.rstrip("/").split("/")[-1]
    if not key.startswith("envguard."):
        return None
    subject = req.get("run_id") or req.get("name") or req.path
    return req.deny(
        str(subject),
        [
            Reason(
                "protected-tag",
                f"{subject}: tag {key} is envguard's record of origin; it cannot be deleted",
                "leave envguard.* tags as envguard wrote them",
                guideline=5,
            )
        ],
    )


# -- protected versions ----------------------------------------------------------------------
def _promoted(req: GateRequest, mv: Any) -> str | None:
    policy = req.ctx.policy
    for alias in mv.aliases or []:
        if policy.env_for_alias(alias):
            return f"alias @{alias} puts it into {policy.env_for_alias(alias)!r}"
    if policy.env_for_stage(mv.current_stage or ""):
        return f"stage {mv.current_stage} puts it into {policy.env_for_stage(mv.current_stage)!r}"
    return None


def _approved(req: GateRequest, uri: str) -> bool:
    return any(a.revoked is None for a in read_approvals(req.ctx.store, req.ctx.policy, uri))


def protection(req: GateRequest, mv: Any) -> str | None:
    """Why this version is protected, or None."""
    uri = version_uri(mv.name, mv.version)
    why = _promoted(req, mv)
    if why:
        return why
    return f"{uri} is approved" if _approved(req, uri) else None


def _protected_reason(subject: str, why: str, action: str) -> Reason:
    return Reason(
        "protected-version",
        f"{subject}: {action} refused: {why}",
        "revoke its approvals and promote another version first; evidence of a version that "
        "is approved or serving stays as it was",
        guideline=10,
    )


def check_delete_version(req: GateRequest) -> Decision | None:
    name, version = req.get("name"), req.get("version")
    mv = req.ctx.registry_store().get_model_version(name, version)
    why = protection(req, mv)
    if why is None:
        return None
    uri = version_uri(name, version)
    return req.deny(uri, [_protected_reason(uri, why, "deleting the version")])


def _model_versions(req: GateRequest, name: str) -> Iterable[Any]:
    return list(req.ctx.registry_store().search_model_versions(f"name='{name}'", max_results=10000))


def check_delete_model(req: GateRequest) -> Decision | None:
    name = req.get("name")
    if req.ctx.policy.env_for_model(name):
        reason = _protected_reason(
            f"models:/{name}",
            f"the policy binds it to {req.ctx.policy.env_for_model(name)!r}",
            "deleting the model",
        )
        return req.deny(f"models:/{name}", [reason])
    reasons = [
        _protected_reason(version_uri(name, mv.version), why, "deleting the model")
        for mv in _model_versions(req, name)
        if (why := protection(req, mv))
    ]
    return _deny(req, f"models:/{name}", reasons)


def check_rename_model(req: GateRequest) -> Decision | None:
    name, new = req.get("name"), req.get("new_name")
    reasons: list[Reason] = []
    for bound in (name, new):
        env = req.ctx.policy.env_for_model(bound)
        if env:
            reasons.append(
                _protected_reason(
                    f"models:/{bound}", f"the policy binds {bound!r} to {env!r}", "renaming"
                )
            )
    reasons.extend(
        _protected_reason(version_uri(name, mv.version), why, "renaming its model")
        for mv in _model_versions(req, name)
        if (why := _promoted(req, mv))
    )
    return _deny(req, f"models:/{name}", reasons)


def check_create_version(req: GateRequest) -> Decision | None:
    name, source = req.get("name"), req.get("source")
    env = req.ctx.policy.env_for_model(name)
    if env is None:
        return None
    if (
        source.startswith("models:/")
        and source.count("/") == 2
        and not source.startswith("models:/m-")
    ):
        src_name, _, src_version = source[len("models:/") :].partition("/")
        return req.gate.decide_and_record(
            src_name, src_version, env, req.actor, f"copy into bound model {name}"
        )
    return req.deny(
        f"models:/{name}",
        [
            Reason(
                "bound-model",
                f"the policy binds {name!r} to {env!r}; a version enters it only as a promotion "
                f"of a registered version (source {source!r} is not one)",
                f"register it in another model, get it approved, then copy it: "
                f"MlflowClient().copy_model_version('models:/OTHER/VERSION', {name!r})",
                guideline=10,
            )
        ],
        env,
    )


def _versions_of_run(req: GateRequest, run_id: str) -> list[Any]:
    return list(
        req.ctx.registry_store().search_model_versions(f"run_id='{run_id}'", max_results=1000)
    )


def check_delete_run(req: GateRequest) -> Decision | None:
    run_id = req.get("run_id")
    reasons = [
        _protected_reason(f"run:{run_id}", why, "deleting the source run")
        for mv in _versions_of_run(req, run_id)
        if (why := protection(req, mv))
    ]
    return _deny(req, f"run:{run_id}", reasons)


def check_presigned_upload(req: GateRequest) -> Decision | None:
    run_id = req.get("run_id")
    reasons = [
        _protected_reason(f"run:{run_id}", why, "uploading into the source run's artifacts")
        for mv in _versions_of_run(req, run_id)
        if (why := protection(req, mv))
    ]
    return _deny(req, f"run:{run_id}", reasons)


# -- artifacts -------------------------------------------------------------------------------
def protected_storage(req: GateRequest) -> dict[str, str]:
    """Storage path (inside the artifact destination) -> why it is protected."""
    registry = req.ctx.registry_store()
    uris = {a.statement.get("model_version") for a in read_approvals(req.ctx.store, req.ctx.policy)}
    found: dict[str, str] = {}
    for uri in sorted(u for u in uris if isinstance(u, str)):
        name, _, version = uri[len("models:/") :].rpartition("/")
        try:
            path = storage_path(registry, name, version)
        except Exception:  # noqa: BLE001 - a version deleted since its approval protects nothing
            log.info("envguard: %s is approved but gone; nothing to protect", uri)
            continue
        if path:
            found[path] = f"{uri} is approved"
    for mv in registry.search_model_versions(max_results=10000):
        why = _promoted(req, mv)
        if why:
            path = storage_path(registry, mv.name, mv.version)
            if path:
                found[path] = f"{version_uri(mv.name, mv.version)}: {why}"
    return found


def check_artifact_write(req: GateRequest) -> Decision | None:
    marker = "/mlflow-artifacts/"
    tail = req.path.split(marker, 1)[1] if marker in req.path else ""
    target = tail.split("/", 1)[1] if "/" in tail else ""  # artifacts/X, mpu/create/X, ...
    if tail.startswith("mpu/"):
        target = tail.split("/", 2)[2] if tail.count("/") >= 2 else ""
    target = target.strip("/")
    for path, why in protected_storage(req).items():
        if target == path or target.startswith(path + "/"):
            return req.deny(target, [_protected_reason(target, why, "writing its files")])
    return None


# -- GraphQL ---------------------------------------------------------------------------------
def check_graphql(req: GateRequest) -> Decision | None:
    from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

    query = req.get("query")
    if not query:
        return None
    try:
        document = parse(query)
    except GraphQLError as exc:
        reasons = [Reason("graphql", f"unparsable query ({exc.message})", "send valid GraphQL")]
        return req.deny("/graphql", reasons)
    for definition in document.definitions:
        if (
            isinstance(definition, OperationDefinitionNode)
            and definition.operation is OperationType.MUTATION
        ):
            return req.deny(
                "/graphql",
                [
                    Reason(
                        "graphql-mutation",
                        "GraphQL mutations are refused: envguard cannot check them",
                        "use MLflow's REST API, which envguard checks",
                    )
                ],
            )
    return None


REGISTRY_CHECKS: dict[str, Check] = {
    "create-version": check_create_version,
    "rename-model": check_rename_model,
    "delete-version": check_delete_version,
    "delete-model": check_delete_model,
    "model-tag": check_model_tag,
    "version-tag": check_version_tag,
    "delete-envguard-tag": check_delete_envguard_tag,
    "run-tags": check_run_tags,
    "delete-run": check_delete_run,
    "logged-model-tags": check_logged_model_tags,
    "presigned-upload": check_presigned_upload,
    "artifact-write": check_artifact_write,
    "graphql": check_graphql,
}
