"""``envguard s3 check``: read real buckets through boto3 and report where each falls short.

For each bucket the policy knows, three things are read: the bucket policy (every statement
:func:`~envguard_s3.bucket_policy.expected_statements` generates must be covered by a statement of
the actual policy), the default encryption, and the bucket's tags (a bucket that belongs to one
environment as a whole must carry ``envguard.env=ENV``). What cannot be read (no such bucket,
access denied) is a finding too, never a silent pass. Missing credentials or an unreachable
endpoint are configuration errors (:class:`~envguard.errors.ConfigError`, exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from envguard.errors import ConfigError
from envguard.policy import Policy
from envguard_s3.bucket_policy import ENV_TAG, expected_statements, owners

__all__ = ["BucketReport", "Finding", "check_buckets", "covers"]

_CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
_SSE_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}
#: The IAM permission each read needs (GetBucketEncryption's is not named after the call).
_PERMISSIONS = {
    "get_bucket_policy": "s3:GetBucketPolicy",
    "get_bucket_encryption": "s3:GetEncryptionConfiguration",
    "get_bucket_tagging": "s3:GetBucketTagging",
}


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    remedy: str


@dataclass
class BucketReport:
    bucket: str
    environments: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def check_buckets(
    policy: Policy, buckets: Sequence[str], endpoint_url: str | None = None
) -> list[BucketReport]:
    """Check ``buckets`` (every bucket the policy knows when empty). An unknown bucket raises
    :class:`~envguard.errors.InputError` before anything is read."""
    if not buckets:
        buckets = sorted({b for env in policy.environment_names for b in _env_buckets(policy, env)})
    unique = list(dict.fromkeys(b.strip().lower() for b in buckets))
    plans = [(b, expected_statements(policy, b)) for b in unique]
    import boto3

    client = boto3.session.Session().client("s3", endpoint_url=endpoint_url or None)
    reports: list[BucketReport] = []
    for bucket, expected in plans:
        report = BucketReport(bucket, sorted(owners(policy, bucket)))
        _check_one(client, policy, report, expected)
        reports.append(report)
    return reports


def _env_buckets(policy: Policy, env: str) -> set[str]:
    from envguard_s3.bucket_policy import scopes

    return {s.bucket for s in scopes(policy, env)}


def _check_one(client: Any, policy: Policy, report: BucketReport, expected: list[Any]) -> None:
    bucket = report.bucket
    policy_text = _read(client, report, "get_bucket_policy", "NoSuchBucketPolicy")
    if policy_text is _MISSING_BUCKET:
        return
    if policy_text is None:
        sids = ", ".join(st["Sid"] for st in expected)
        report.findings.append(
            Finding(
                "no-bucket-policy",
                f"s3://{bucket} has no bucket policy; envguard expects {sids}",
                f"envguard s3 policy --env {report.environments[0]} --bucket {bucket} > "
                f"policy.json && aws s3api put-bucket-policy --bucket {bucket} "
                f"--policy file://policy.json",
            )
        )
    elif isinstance(policy_text, dict):
        actual = _statements(policy_text.get("Policy", ""))
        for statement in expected:
            if not any(covers(have, statement) for have in actual):
                report.findings.append(
                    Finding(
                        "missing-statement",
                        f"s3://{bucket}'s policy has no statement equivalent to "
                        f"{statement['Sid']} ({_purpose(statement)})",
                        f"add it: envguard s3 policy --env {report.environments[0]} "
                        f"--bucket {bucket} prints the complete policy",
                    )
                )
    encryption = _read(
        client, report, "get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError"
    )
    if encryption is None:
        report.findings.append(
            Finding(
                "no-default-encryption",
                f"s3://{bucket} has no default encryption",
                f"aws s3api put-bucket-encryption --bucket {bucket} "
                '--server-side-encryption-configuration \'{"Rules":[{'
                '"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}\'',
            )
        )
    elif isinstance(encryption, dict):
        rules = encryption.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        algorithms = {
            r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules
        }
        if not algorithms & _SSE_ALGORITHMS:
            report.findings.append(
                Finding(
                    "no-default-encryption",
                    f"s3://{bucket}'s default encryption names no known algorithm "
                    f"({', '.join(sorted(str(a) for a in algorithms)) or 'no rules'})",
                    "set SSEAlgorithm to aws:kms or AES256",
                )
            )
    whole = [
        env for env, items in owners(policy, bucket).items() if any(not s.prefix for s in items)
    ]
    tagging = _read(client, report, "get_bucket_tagging", "NoSuchTagSet")
    if whole and (tagging is None or isinstance(tagging, dict)):
        tags = {t["Key"]: t["Value"] for t in (tagging or {}).get("TagSet", [])}
        if tags.get(ENV_TAG) != whole[0]:
            found = f"it is {tags[ENV_TAG]!r}" if ENV_TAG in tags else "it is missing"
            report.findings.append(
                Finding(
                    "bucket-tag",
                    f"s3://{bucket} belongs to environment {whole[0]!r} but its tag "
                    f"{ENV_TAG} does not say so ({found})",
                    f"aws s3api put-bucket-tagging --bucket {bucket} "
                    f"--tagging 'TagSet=[{{Key={ENV_TAG},Value={whole[0]}}}]' "
                    "(keep the bucket's other tags in the set)",
                )
            )


_MISSING_BUCKET = object()
_UNREADABLE = object()


def _read(client: Any, report: BucketReport, method: str, absent_code: str) -> Any:
    """The answer of ``client.METHOD(Bucket=...)``; None when the configuration does not exist;
    a sentinel (and a finding) when it cannot be read."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if any(f.rule == "missing-bucket" for f in report.findings):
        return _MISSING_BUCKET
    try:
        return getattr(client, method)(Bucket=report.bucket)
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise ConfigError(
            f"no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        ) from None
    except EndpointConnectionError as exc:
        raise ConfigError(
            f"cannot reach S3: {exc}; check --endpoint-url / AWS_ENDPOINT_URL"
        ) from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == absent_code:
            return None
        if code in _CREDENTIAL_ERRORS:
            raise ConfigError(f"S3 refused the credentials ({code}): {exc}") from None
        if code in {"NoSuchBucket", "404"}:
            report.findings.append(
                Finding(
                    "missing-bucket",
                    f"s3://{report.bucket} does not exist (at {client.meta.endpoint_url})",
                    "create it, fix the bucket name in the policy, or point --endpoint-url at "
                    "the right server",
                )
            )
            return _MISSING_BUCKET
        action = _PERMISSIONS.get(method, method)
        report.findings.append(
            Finding(
                "unreadable",
                f"cannot read s3://{report.bucket} with {method} ({code or exc})",
                f"grant the checking identity {action}, then check again",
            )
        )
        return _UNREADABLE
    except BotoCoreError as exc:
        raise ConfigError(f"S3 request failed: {exc}") from None


def _statements(text: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(text)
    except ValueError:
        return []
    raw = document.get("Statement", []) if isinstance(document, dict) else []
    return [s for s in ([raw] if isinstance(raw, dict) else raw) if isinstance(s, dict)]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _principal_is_everyone(value: Any) -> bool:
    if value == "*":
        return True
    return isinstance(value, dict) and _as_list(value.get("AWS")) == ["*"]


def _condition_values(value: Any) -> set[str]:
    values = value if isinstance(value, list) else [value]
    return {str(v).lower() if isinstance(v, bool) else str(v) for v in values}


def covers(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Does ``actual`` enforce at least what ``expected`` does? Same effect, principal everyone,
    actions and resources at least as wide, and the same conditions; an extra condition narrows a
    deny, so only an exemption by principal ARN (``--exempt-principal``) is accepted as extra."""
    if actual.get("Effect") != expected.get("Effect") or "NotAction" in actual:
        return False
    if "NotResource" in actual or "NotPrincipal" in actual:
        return False
    if "Principal" in expected and not _principal_is_everyone(actual.get("Principal")):
        return False
    have_actions = [a.lower() for a in _as_list(actual.get("Action"))]
    for action in _as_list(expected.get("Action")):
        if not any(fnmatchcase(action.lower(), pattern) for pattern in have_actions):
            return False
    have_resources = _as_list(actual.get("Resource"))
    for resource in _as_list(expected.get("Resource")):
        if not any(fnmatchcase(resource, pattern) for pattern in have_resources):
            return False
    want = _flatten(expected.get("Condition", {}))
    have = _flatten(actual.get("Condition", {}))
    extra = {k for k in have if k not in want and k[1] != "aws:principalarn"}
    return all(have.get(k) == v for k, v in want.items()) and not extra


def _flatten(condition: Any) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    if not isinstance(condition, dict):
        return out
    for operator, pairs in condition.items():
        if isinstance(pairs, dict):
            for key, value in pairs.items():
                out[(str(operator).lower(), str(key).lower())] = _condition_values(value)
    return out


def _purpose(statement: dict[str, Any]) -> str:
    sid = str(statement.get("Sid", ""))
    for suffix, text in (
        ("DenyOtherEnvironmentsList", "listing by principals of other environments is denied"),
        ("DenyOtherEnvironments", "principals of other environments are denied"),
        ("RequireEnvTag", f"PutObject without the object tag {ENV_TAG} is denied"),
        ("RequireEncryption", "PutObject without server-side encryption is denied"),
        ("DenyInsecureTransport", "requests over plain HTTP are denied"),
    ):
        if sid.endswith(suffix):
            return text
    return sid
