"""The storage-side boundary: S3 bucket policies and an IAM policy, generated from the policy.

Pure functions of the policy; no boto3. For an environment ``ENV`` and each bucket holding its
locations (its ``s3`` entries and its ``s3://`` artifact locations), the bucket policy denies:

* ``DenyOtherEnvironments``: every S3 action on ``ENV``'s objects (and, for a whole bucket, on
  the bucket) by any principal whose IAM tag ``envguard.env`` is not ``ENV``. A principal without
  the tag is denied too (``StringNotEquals`` is true when the key is absent), so the boundary
  fails closed. Principals passed as ``exempt`` (a break-glass role, say) are left out by ARN.
* ``DenyOtherEnvironmentsList`` (prefixes only): listing ``ENV``'s prefix, likewise.
* ``RequireEnvTag``: ``s3:PutObject`` whose request does not tag the object ``envguard.env=ENV``.
* ``RequireEncryption``: ``s3:PutObject`` without the ``x-amz-server-side-encryption`` header.
* ``DenyInsecureTransport``: any request over plain HTTP.

The IAM policy, for the principals of ``ENV``, allows reading and writing ``ENV``'s locations and
denies every S3 action on the locations of every other environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from envguard.errors import InputError
from envguard.policy import Policy
from envguard.uris import Location, parse_location

__all__ = [
    "ENV_TAG",
    "PRINCIPAL_TAG_KEY",
    "S3Scope",
    "bucket_policies",
    "bucket_policy",
    "expected_statements",
    "iam_policy",
    "owners",
    "scopes",
]

#: The tag key envguard uses on S3 objects, on buckets and on IAM principals (roles, users).
ENV_TAG = "envguard.env"
PRINCIPAL_TAG_KEY = f"aws:PrincipalTag/{ENV_TAG}"
POLICY_VERSION = "2012-10-17"


@dataclass(frozen=True, order=True)
class S3Scope:
    """A bucket, or a prefix inside one (``prefix`` without leading or trailing ``/``)."""

    bucket: str
    prefix: str = ""

    @property
    def whole_bucket(self) -> bool:
        return not self.prefix

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"

    @property
    def objects_arn(self) -> str:
        tail = f"{self.prefix}/*" if self.prefix else "*"
        return f"arn:aws:s3:::{self.bucket}/{tail}"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def scopes(policy: Policy, env: str) -> list[S3Scope]:
    """The S3 buckets and prefixes the policy assigns to ``env``, outermost first, no repeats."""
    spec = policy.environment(env, "--env")
    found: list[Location] = []
    for raw in (*spec.s3, *spec.artifact_locations):
        loc = parse_location(raw)
        if loc.scheme == "s3" and loc.authority:
            found.append(loc)
    kept: list[Location] = []
    for loc in sorted(set(found), key=lambda x: (x.authority, len(x.path), x.path)):
        if not any(outer.contains(loc) for outer in kept):
            kept.append(loc)
    return [S3Scope(loc.authority, loc.path) for loc in kept]


def _camel(text: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", text) if w)


def _sid(env: str, purpose: str) -> str:
    """A statement id: IAM allows only letters and digits in it."""
    return f"Envguard{_camel(env)}{purpose}"


def _env_condition(env: str, exempt: Sequence[str]) -> dict[str, Any]:
    condition: dict[str, Any] = {"StringNotEquals": {PRINCIPAL_TAG_KEY: env}}
    if exempt:
        condition["ArnNotLike"] = {"aws:PrincipalArn": sorted(exempt)}
    return condition


def _one_or_list(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def _env_statements(env: str, bucket_scopes: Sequence[S3Scope], exempt: Sequence[str]) -> list[Any]:
    """The statements that guard ``env``'s part of one bucket."""
    whole = any(s.whole_bucket for s in bucket_scopes)
    bucket_arn = bucket_scopes[0].bucket_arn
    objects = [s.objects_arn for s in bucket_scopes]
    everything = [bucket_arn, *objects] if whole else objects
    statements: list[dict[str, Any]] = [
        {
            "Sid": _sid(env, "DenyOtherEnvironments"),
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": _one_or_list(everything),
            "Condition": _env_condition(env, exempt),
        }
    ]
    if not whole:
        prefixes = sorted({p for s in bucket_scopes for p in (s.prefix, f"{s.prefix}/*")})
        condition = _env_condition(env, exempt)
        condition["StringLike"] = {"s3:prefix": prefixes}
        statements.append(
            {
                "Sid": _sid(env, "DenyOtherEnvironmentsList"),
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": bucket_arn,
                "Condition": condition,
            }
        )
    statements += [
        {
            "Sid": _sid(env, "RequireEnvTag"),
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": _one_or_list(objects),
            "Condition": {"StringNotEquals": {f"s3:RequestObjectTag/{ENV_TAG}": env}},
        },
        {
            "Sid": _sid(env, "RequireEncryption"),
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": _one_or_list(objects),
            "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}},
        },
        {
            "Sid": _sid(env, "DenyInsecureTransport"),
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, *objects],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    return statements


def _by_bucket(items: Iterable[S3Scope]) -> dict[str, list[S3Scope]]:
    out: dict[str, list[S3Scope]] = {}
    for scope in sorted(items):
        out.setdefault(scope.bucket, []).append(scope)
    return out


def bucket_policies(
    policy: Policy, env: str, exempt: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """Bucket name -> the complete policy of each bucket holding ``env``'s locations (with the
    statements of other environments whose prefixes share the bucket, so that it can be pasted
    as it is).

    Raises :class:`~envguard.errors.EnvironmentUnknown` for an undeclared environment and
    :class:`~envguard.errors.InputError` when the policy gives ``env`` no S3 location.
    """
    found = scopes(policy, env)
    if not found:
        raise InputError(
            f"environment {env!r}",
            f"the policy ({policy.path}) assigns it no S3 bucket or prefix; add "
            f"s3 = [...] under [environments.{env}]",
        )
    return {bucket: bucket_policy(policy, bucket, exempt) for bucket in _by_bucket(found)}


def bucket_policy(policy: Policy, bucket: str, exempt: Sequence[str] = ()) -> dict[str, Any]:
    """The complete policy for one bucket: the statements of every environment with locations in
    it (a bucket shared by prefixes of several environments gets all of theirs)."""
    return {"Version": POLICY_VERSION, "Statement": expected_statements(policy, bucket, exempt)}


def owners(policy: Policy, bucket: str) -> dict[str, list[S3Scope]]:
    """Environment -> its scopes inside ``bucket``; empty when the policy does not know it."""
    wanted = bucket.strip().lower()
    out: dict[str, list[S3Scope]] = {}
    for env in policy.environment_names:
        inside = [s for s in scopes(policy, env) if s.bucket == wanted]
        if inside:
            out[env] = inside
    return out


def expected_statements(
    policy: Policy, bucket: str, exempt: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Every statement envguard expects in ``bucket``'s policy; InputError for an unknown bucket."""
    found = owners(policy, bucket)
    if not found:
        known = sorted({s.bucket for env in policy.environment_names for s in scopes(policy, env)})
        raise InputError(
            f"bucket {bucket!r}",
            f"the policy ({policy.path}) assigns it to no environment; known buckets: "
            f"{', '.join(known) or 'none'}. Add it to an environment's s3 list",
        )
    return [st for env, items in found.items() for st in _env_statements(env, items, exempt)]


def iam_policy(policy: Policy, env: str) -> dict[str, Any]:
    """The identity policy for ``env``'s principals: use of its locations, none of the others'."""
    own = scopes(policy, env)
    if not own:
        bucket_policies(policy, env)  # raises the explanatory InputError
    statements: list[dict[str, Any]] = []
    for items in _by_bucket(own).values():
        list_statement: dict[str, Any] = {
            "Sid": _sid(env, "List" + _camel(items[0].bucket)),
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": items[0].bucket_arn,
        }
        if not any(s.whole_bucket for s in items):
            prefixes = sorted({p for s in items for p in (s.prefix, f"{s.prefix}/*")})
            list_statement["Condition"] = {"StringLike": {"s3:prefix": prefixes}}
        statements.append(list_statement)
    statements.append(
        {
            "Sid": _sid(env, "ReadWrite"),
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:GetObjectTagging",
                "s3:PutObject",
                "s3:PutObjectTagging",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": _one_or_list([s.objects_arn for s in own]),
        }
    )
    others = sorted(
        {
            arn
            for other in policy.environment_names
            if other != env
            for s in scopes(policy, other)
            for arn in ((s.bucket_arn, s.objects_arn) if s.whole_bucket else (s.objects_arn,))
        }
    )
    if others:
        statements.append(
            {
                "Sid": _sid(env, "DenyOtherEnvironments"),
                "Effect": "Deny",
                "Action": "s3:*",
                "Resource": _one_or_list(others),
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}
