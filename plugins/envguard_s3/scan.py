"""The S3 plugin's part of ``envguard audit scan``: every object of every bucket and prefix the
policy assigns to an environment (``s3`` and ``artifact_locations``), with its tags.

Each bucket is listed once (``list_objects_v2``, paginated; only the claimed prefixes when no
environment claims the whole bucket) and each object's tags are read (``get_object_tagging``,
in parallel). Findings:

* ``object-untagged``: no ``envguard.env`` tag;
* ``object-prod-in-non-prod``: the object sits where a non-production environment owns it, but
  its ``envguard.origin`` tag, its ``envguard.env`` tag, or its lineage in the log (entity
  ``s3://BUCKET/KEY``, through no masking step) says production;
* ``bucket-unencrypted``: such a bucket has no default encryption;
* ``scan-unreachable``: a bucket that does not exist or cannot be listed, objects whose tags
  cannot be read. Missing credentials or an unreachable endpoint stop the sweep
  (:class:`~envguard.errors.ConfigError`).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from envguard.errors import ConfigError
from envguard.scan import Finding, ScanProgress, unreachable
from envguard.scan.lineage_checks import prod_lineage
from envguard.uris import Location, parse_location

if TYPE_CHECKING:
    from envguard.policy import Policy

__all__ = ["JOBS", "claims", "listing_plan", "sweep"]

ENV_TAG = "envguard.env"
ORIGIN_TAG = "envguard.origin"
JOBS = 16
_CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_SSE_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}


def claims(policy: Policy) -> list[tuple[str, Location]]:
    """(environment, S3 location) of every bucket or prefix the policy assigns."""
    found = []
    for name, env in policy.spec.environments.items():
        for raw in (*env.s3, *env.artifact_locations):
            loc = parse_location(raw)
            if loc.scheme == "s3":
                found.append((name, loc))
    return found


def listing_plan(policy: Policy) -> dict[str, list[str]]:
    """Bucket -> the prefixes to list (``[""]`` for the whole bucket), none inside another."""
    prefixes: dict[str, set[str]] = {}
    for _env, loc in claims(policy):
        prefixes.setdefault(loc.authority, set()).add(loc.path)
    plan: dict[str, list[str]] = {}
    for bucket, paths in sorted(prefixes.items()):
        if "" in paths:
            plan[bucket] = [""]
            continue
        kept = [p for p in sorted(paths) if not any(p.startswith(q + "/") for q in paths if q != p)]
        plan[bucket] = [f"{p}/" for p in kept]
    return plan


def _owner(owned: list[tuple[str, Location]], bucket: str, key: str) -> str | None:
    best: tuple[int, str] | None = None
    for env, loc in owned:
        inside = not loc.path or key == loc.path or key.startswith(loc.path + "/")
        if loc.authority == bucket and inside and (best is None or len(loc.path) > best[0]):
            best = (len(loc.path), env)
    return best[1] if best else None


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", config=Config(max_pool_connections=JOBS, retries={"max_attempts": 3})
    )


def _fatal(exc: Exception) -> ConfigError | None:
    """The configuration error behind ``exc`` (credentials, endpoint), else None."""
    from botocore.exceptions import (
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ConfigError(
            f"no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        )
    if isinstance(exc, EndpointConnectionError):
        return ConfigError(f"cannot reach S3: {exc}; check AWS_ENDPOINT_URL")
    if _code(exc) in _CREDENTIAL_ERRORS:
        return ConfigError(f"S3 refused the credentials ({_code(exc)}): {exc}")
    return None


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix`` (folder markers left out)."""
    keys: list[str] = []
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        keys.extend(
            item["Key"] for item in page.get("Contents", ()) if not item["Key"].endswith("/")
        )
    return keys


def read_tags(client: Any, bucket: str, keys: Iterable[str]) -> list[dict[str, str] | Exception]:
    """Each key's tags (or the error reading them), in order, :data:`JOBS` requests at a time."""

    def one(key: str) -> dict[str, str] | Exception:
        try:
            answer = client.get_object_tagging(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - reported per object
            return exc
        return {t["Key"]: t["Value"] for t in answer.get("TagSet", ())}

    items = list(keys)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(JOBS, len(items))) as pool:
        return list(pool.map(one, items))


def sweep(policy: Policy, store: Any, progress: ScanProgress) -> list[Finding]:
    plan = listing_plan(policy)
    if not plan:
        return []
    client = _client()
    owned = claims(policy)
    findings: list[Finding] = []
    for bucket, prefixes in plan.items():
        try:
            findings.extend(_bucket(policy, store, client, owned, bucket, prefixes, progress))
        except Exception as exc:
            fatal = _fatal(exc)
            if fatal is not None:
                raise fatal from None
            if not _code(exc):
                raise
            findings.append(
                unreachable(
                    f"s3://{bucket}",
                    f"s3://{bucket} could not be listed ({_code(exc)}: {exc})",
                    "create the bucket, fix its name in the policy, or grant the scanning "
                    "identity s3:ListBucket and s3:GetObjectTagging; then scan again",
                    endpoint=client.meta.endpoint_url,
                )
            )
    return findings


def _bucket(
    policy: Policy,
    store: Any,
    client: Any,
    owned: list[tuple[str, Location]],
    bucket: str,
    prefixes: list[str],
    progress: ScanProgress,
) -> list[Finding]:
    label = f"objects in s3://{bucket}"
    keys = [k for p in prefixes for k in list_keys(client, bucket, p)]
    progress(label, 0, len(keys))
    tags: list[dict[str, str] | Exception] = []
    step = 1000
    for start in range(0, len(keys), step):
        tags.extend(read_tags(client, bucket, keys[start : start + step]))
        progress(label, len(tags), len(keys))
    entities = [f"s3://{bucket}/{k}" for k in keys]
    lineage = prod_lineage(policy, store, entities)
    findings: list[Finding] = []
    unreadable: dict[str, str] = {}
    prod_here: list[str] = []
    for key, entity, found in zip(keys, entities, tags, strict=True):
        if isinstance(found, Exception):
            fatal = _fatal(found)
            if fatal is not None:
                raise fatal
            unreadable[key] = f"{_code(found) or type(found).__name__}: {found}"
            continue
        owner = _owner(owned, bucket, key)
        if ENV_TAG not in found:
            findings.append(
                Finding(
                    "object-untagged",
                    entity,
                    f"{entity} has no {ENV_TAG} tag: its environment and origin are unknown",
                    f"find where it came from, then tag it: aws s3api put-object-tagging --bucket "
                    f"{bucket} --key {key} --tagging 'TagSet=[{{Key={ENV_TAG},Value=ENV}}]' "
                    f"(writes through envguard's S3 guard are tagged automatically)",
                    {"bucket": bucket, "key": key, "tags": found, "owner": owner},
                    environment=owner,
                )
            )
        if owner is None or policy.is_prod(owner):
            continue
        origin, why = _prod_origin(policy, found, lineage.get(entity))
        if origin is not None:
            prod_here.append(key)
            findings.append(
                Finding(
                    "object-prod-in-non-prod",
                    entity,
                    f"{entity} is in {owner!r} (non-production) but comes from production "
                    f"environment {origin!r} ({why})",
                    f"delete it from s3://{bucket} (or move it back to {origin!r}'s storage); "
                    f"use a masked copy instead (envguard mask) and find who copied it",
                    {"bucket": bucket, "key": key, "tags": found, "origin": origin, "by": why},
                    environment=owner,
                )
            )
    if unreadable:
        first = next(iter(unreadable.items()))
        findings.append(
            unreachable(
                f"s3://{bucket}",
                f"the tags of {len(unreadable)} object(s) in s3://{bucket} could not be read "
                f"(first: {first[0]}: {first[1]})",
                "grant the scanning identity s3:GetObjectTagging on the bucket, then scan again",
                objects=dict(list(unreadable.items())[:20]),
            )
        )
    if prod_here:
        findings.extend(_encryption(client, bucket, prod_here))
    return findings


def _prod_origin(
    policy: Policy, tags: dict[str, str], lineage: str | None
) -> tuple[str | None, str]:
    for key in (ORIGIN_TAG, ENV_TAG):
        value = tags.get(key)
        if value and value in policy.spec.environments and policy.is_prod(value):
            return value, f"tag {key}={value}"
    if lineage is not None:
        return lineage, "its lineage in the log"
    return None, ""


def _encryption(client: Any, bucket: str, keys: list[str]) -> list[Finding]:
    try:
        answer = client.get_bucket_encryption(Bucket=bucket)
    except Exception as exc:
        if _code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        answer = {}
    rules = answer.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    algorithms = {
        r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules
    }
    if algorithms & _SSE_ALGORITHMS:
        return []
    return [
        Finding(
            "bucket-unencrypted",
            f"s3://{bucket}",
            f"s3://{bucket} (non-production) holds {len(keys)} object(s) of production lineage "
            f"and has no default encryption",
            f"aws s3api put-bucket-encryption --bucket {bucket} "
            '--server-side-encryption-configuration \'{"Rules":[{'
            '"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}\' '
            "and remove the production data",
            {"objects": keys[:20], "algorithms": sorted(str(a) for a in algorithms if a)},
        )
    ]
