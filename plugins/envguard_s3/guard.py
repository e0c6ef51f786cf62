"""The in-process guard: botocore event handlers on S3 clients, no monkey-patching.

Every S3 call of a guarded client emits ``before-parameter-build.s3.OPERATION`` before botocore
serialises, signs and sends the request. The handler registered here, for a process whose
environment (:func:`envguard.runtime.current`) is not production-tier:

* refuses a call whose bucket, key, prefix or copy source the policy assigns to a
  production-tier environment (raises :class:`~envguard.errors.Denied`; nothing is sent);
* refuses a whole-bucket call (a listing without a prefix, say) on a bucket that holds a
  production-tier prefix;
* lets through, everywhere, the calls that read a bucket's configuration and no object data
  or keys (``HeadBucket``, ``GetBucketLocation``, ``GetBucketPolicy``, ``GetBucketEncryption``,
  ``GetBucketTagging``), so that ``envguard s3 check`` and existence checks work;
* with ``strict_uris = true``, refuses buckets the policy does not know (in every environment).

In every environment, objects the process writes are tagged ``envguard.env=ENV``: the ``Tagging``
of ``PutObject`` and ``CreateMultipartUpload``, a ``CopyObject`` (the source's tags are copied and
``envguard.env`` replaced), and the tag set of ``PutObjectTagging``. A caller who sets
``envguard.env`` to another value is refused. Decisions follow the policy's mode
(:func:`envguard.decisions.conclude`); ``ENVGUARD_DISABLE=1`` turns the guard off.

A client is guarded by :func:`install` (a client, a boto3 or botocore session, or the default
boto3 session) or, for every botocore client of a process, by botocore's experimental plugin
variable ``BOTOCORE_EXPERIMENTAL__PLUGINS=envguard=envguard_s3``.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

from envguard.decisions import Decision, Outcome, Reason, conclude
from envguard.environments import ResolvedEnvironment
from envguard.plugins import client_side_disabled
from envguard.policy import Policy
from envguard.uris import Location, parse_location, s3_location
from envguard_s3.bucket_policy import ENV_TAG

__all__ = ["guard_call", "initialize_client_plugin", "install"]

log = logging.getLogger("envguard_s3")

# unique ids make installing twice harmless; one per event, because a client's emitter is a copy
# of its session's and keeps the session's ids.
HANDLER_ID = "envguard-s3-guard"
SESSION_HANDLER_ID = "envguard-s3-guard-session"
EVENT = "before-parameter-build.s3"
ORIGIN_TAG = "envguard.origin"
#: Calls that read a bucket's configuration, never object data or keys: allowed everywhere.
METADATA_OPERATIONS = frozenset(
    {
        "HeadBucket",
        "GetBucketLocation",
        "GetBucketPolicy",
        "GetBucketEncryption",
        "GetBucketTagging",
    }
)
LIST_OPERATIONS = frozenset(
    {"ListObjects", "ListObjectsV2", "ListObjectVersions", "ListMultipartUploads"}
)


# -- installing ------------------------------------------------------------------------------------
def install(target: Any = None) -> Any:
    """Guard an S3 client, every S3 client a session creates from now on, or (``None``) every S3
    client of boto3's default session (``boto3.client("s3")``). Installing twice is harmless.
    Returns ``target`` (the default session when ``None``)."""
    if target is None:
        import boto3

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        target = boto3.DEFAULT_SESSION
    meta = getattr(target, "meta", None)
    if meta is not None and hasattr(meta, "events") and hasattr(meta, "service_model"):
        _register(target)
        return target
    events = getattr(target, "events", None)  # boto3.Session
    if events is None and hasattr(target, "get_component"):  # botocore.session.Session
        events = target.get_component("event_emitter")
    if events is None:
        raise TypeError(
            f"envguard_s3.install() takes a botocore client or a boto3/botocore session, "
            f"not {type(target).__name__}"
        )
    events.register("creating-client-class.s3", _add_guarded_base, unique_id=SESSION_HANDLER_ID)
    return target


def initialize_client_plugin(client: Any) -> None:
    """botocore's plugin entry (``BOTOCORE_EXPERIMENTAL__PLUGINS=envguard=envguard_s3``): called
    for every client botocore creates; guards those of S3."""
    if client.meta.service_model.service_name == "s3":
        _register(client)


class _GuardedClient:
    """Base class added to S3 client classes of an installed session: guards each instance."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _register(self)


def _add_guarded_base(base_classes: list[type], **kwargs: Any) -> None:
    if _GuardedClient not in base_classes:
        base_classes.insert(0, _GuardedClient)


def _register(client: Any) -> None:
    ref = weakref.ref(client)

    def handler(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        guard_call(model.name, params, ref())

    client.meta.events.register(EVENT, handler, unique_id=HANDLER_ID)


# -- deciding --------------------------------------------------------------------------------------
def guard_call(operation: str, params: dict[str, Any], client: Any = None) -> Decision | None:
    """Decide one S3 call of this process and, when allowed, add the environment tag to
    ``params`` in place. Raises :class:`~envguard.errors.Denied` in ``enforce`` mode."""
    if client_side_disabled():
        return None
    bucket = params.get("Bucket")
    if not isinstance(bucket, str) or not bucket:
        return None
    from envguard.runtime import current

    runtime = current()
    policy, env = runtime.policy, runtime.environment
    reasons: list[Reason] = []
    for target_bucket, key, listing in _targets(operation, params):
        reasons.extend(_access_reasons(policy, env, operation, target_bucket, key, listing))
    writes = _tag_writer(operation, params, env.name, client)
    if writes is not None:
        reasons.extend(writes.conflicts)
    subject = f"s3://{bucket}/{params['Key']}" if "Key" in params else f"s3://{bucket}"
    decision = conclude(f"S3 {operation}", subject, reasons, policy, env.name)
    if decision.violated:
        from envguard.gate import record_decision

        decision = record_decision(
            runtime,
            decision,
            kind="violation.found",
            entities=[subject],
            payload={"operation": operation},
        )
        runtime.plugins.on_violation(decision, policy)
        if decision.outcome is Outcome.WARN:
            log.warning("%s", decision.explain())
        elif decision.outcome is Outcome.RECORD:
            log.info("%s", decision.explain())
    decision.enforce()
    if writes is not None:
        writes.apply()
    return decision


def _targets(operation: str, params: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(bucket, key or prefix, is a listing prefix) for everything the call touches."""
    bucket = params["Bucket"]
    if "Key" in params:
        yield bucket, str(params["Key"]), False
    elif operation == "DeleteObjects":
        for item in params.get("Delete", {}).get("Objects", []):
            yield bucket, str(item.get("Key", "")), False
    elif operation in LIST_OPERATIONS:
        yield bucket, str(params.get("Prefix") or ""), True
    else:
        yield bucket, "", False
    source = _copy_source(params.get("CopySource"))
    if source is not None:
        yield source[0], source[1], False


def _copy_source(value: Any) -> tuple[str, str, str | None] | None:
    """(bucket, key, version) of a ``CopySource``: a dict, or ``bucket/key?versionId=``."""
    if isinstance(value, dict):
        version = value.get("VersionId")
        return str(value.get("Bucket", "")), str(value.get("Key", "")), version
    if not isinstance(value, str) or not value:
        return None
    text, _, query = value.partition("?versionId=")
    bucket, _, key = unquote(text).lstrip("/").partition("/")
    return bucket, key, query or None


def _claims(policy: Policy) -> Iterator[tuple[str, Location]]:
    for name in policy.environment_names:
        for raw in policy.locations(name, "s3", "artifact_locations"):
            claim = parse_location(raw)
            if claim.scheme == "s3":
                yield name, claim


def _access_reasons(
    policy: Policy,
    env: ResolvedEnvironment,
    operation: str,
    bucket: str,
    key: str,
    listing: bool,
) -> Iterator[Reason]:
    loc = s3_location(bucket, key)
    owner: tuple[int, str] | None = None
    inside: list[tuple[str, Location]] = []
    for name, claim in _claims(policy):
        if claim.contains(loc):
            if owner is None or len(claim.path) > owner[0]:
                owner = (len(claim.path), name)
        elif claim.authority == loc.authority and (
            claim.path.startswith(loc.path) if listing else loc.contains(claim)
        ):
            inside.append((name, claim))
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if operation in METADATA_OPERATIONS and (owner is not None or inside):
        return
    if owner is not None:
        if not env.is_prod and policy.is_prod(owner[1]):
            yield _prod_reason(policy, env, operation, where, owner[1])
        return
    prod_inside = [(n, c) for n, c in inside if policy.is_prod(n)]
    if prod_inside and not env.is_prod:
        name, claim = prod_inside[0]
        yield _prod_reason(policy, env, operation, where, name, str(claim))
        return
    if not inside and policy.strict_uris:
        yield Reason(
            "s3-unknown-location",
            f"{where} belongs to no environment of the policy, and strict_uris is on",
            f"add the bucket or prefix to an environment's s3 list in {policy.path}",
            guideline=4,
        )


def _prod_reason(
    policy: Policy,
    env: ResolvedEnvironment,
    operation: str,
    where: str,
    owner: str,
    inner: str | None = None,
) -> Reason:
    own = [str(c) for n, c in _claims(policy) if n == env.name]
    place = f" (a bucket holding {inner}, which belongs to {owner!r})" if inner else ""
    use = f"use {', '.join(own)} instead, or " if own else ""
    narrow = "pass a Prefix outside it, or " if inner else ""
    message = (
        f"{operation} on {where}{place}: that location belongs to environment {owner!r} "
        f"(production tier), and this process runs in {env.name!r} ({env.tier}, from "
        f"{env.source})"
    )
    remedy = (
        f"{narrow}{use}run this where it belongs (ENVGUARD_ENV={owner}); to develop with "
        f"production data, use a masked copy in a non-production bucket (envguard mask)"
    )
    return Reason("s3-prod-from-non-prod", message, remedy, guideline=5)


# -- tagging ---------------------------------------------------------------------------------------
class _TagWriter:
    """The ``envguard.env`` tag a write must carry: conflicts found, and how to apply it."""

    def __init__(self, operation: str, params: dict[str, Any], env: str, client: Any) -> None:
        self.operation, self.params, self.env, self.client = operation, params, env, client
        self.conflicts: list[Reason] = []
        caller = self._caller_tags()
        if caller is not None:
            value = dict(caller).get(ENV_TAG)
            if value is not None and value != env:
                where = f"s3://{params['Bucket']}/{params.get('Key', '')}"
                self.conflicts.append(
                    Reason(
                        "s3-env-tag",
                        f"{operation} on {where} sets the tag {ENV_TAG}={value!r}, but this "
                        f"process runs in environment {env!r}",
                        f"drop {ENV_TAG} from the call's tags: envguard sets it to {env!r}",
                        guideline=3,
                    )
                )

    def _caller_tags(self) -> list[tuple[str, str]] | None:
        if self.operation == "PutObjectTagging":
            tag_set = self.params.get("Tagging", {}).get("TagSet", [])
            return [(str(t.get("Key")), str(t.get("Value", ""))) for t in tag_set]
        if self.operation == "CopyObject" and self.params.get("TaggingDirective") != "REPLACE":
            return None
        return parse_qsl(str(self.params.get("Tagging", "")), keep_blank_values=True)

    def apply(self) -> None:
        if self.conflicts:
            return  # allowed by warn/audit mode: the caller's tags stand
        if self.operation == "PutObjectTagging":
            tag_set = self.params.setdefault("Tagging", {}).setdefault("TagSet", [])
            if not any(t.get("Key") == ENV_TAG for t in tag_set):
                tag_set.append({"Key": ENV_TAG, "Value": self.env})
            return
        if self.operation == "CopyObject" and self.params.get("TaggingDirective") != "REPLACE":
            tags = self._source_tags()
            self.params["TaggingDirective"] = "REPLACE"
        else:
            tags = parse_qsl(str(self.params.get("Tagging", "")), keep_blank_values=True)
        merged = [(k, v) for k, v in tags if k != ENV_TAG]
        previous = dict(tags).get(ENV_TAG)
        if previous and previous != self.env and ORIGIN_TAG not in dict(tags):
            merged.append((ORIGIN_TAG, previous))  # a copy does not launder its origin
        merged.append((ENV_TAG, self.env))
        self.params["Tagging"] = urlencode(merged, quote_via=quote)

    def _source_tags(self) -> list[tuple[str, str]]:
        source = _copy_source(self.params.get("CopySource"))
        if source is None or self.client is None:
            return []
        bucket, key, version = source
        args: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version:
            args["VersionId"] = version
        answer = self.client.get_object_tagging(**args)
        return [(t["Key"], t["Value"]) for t in answer.get("TagSet", [])]


def _tag_writer(operation: str, params: dict[str, Any], env: str, client: Any) -> _TagWriter | None:
    if operation not in {"PutObject", "CreateMultipartUpload", "CopyObject", "PutObjectTagging"}:
        return None
    return _TagWriter(operation, params, env, client)
