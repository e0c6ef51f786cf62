"""``envguard s3 check`` against a real S3 server: compliant, short, unreadable and bad input."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from envguard_s3.bucket_policy import bucket_policy

from envguard.policy import load_policy
from tests.integration.s3.conftest import moto_api

pytestmark = pytest.mark.integration

Cli = Callable[..., Any]
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def _comply(s3: Any, policy_path: Path, bucket: str, env: str | None) -> None:
    policy = load_policy(policy_path)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(policy, bucket)))
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION)
    if env:
        s3.put_bucket_tagging(
            Bucket=bucket, Tagging={"TagSet": [{"Key": "envguard.env", "Value": env}]}
        )


@pytest.fixture
def compliant(s3: Any, write_policy: Callable[..., Path]) -> Any:
    path = write_policy()
    _comply(s3, path, "eg-dev", "train")
    _comply(s3, path, "eg-prod", "prod")
    _comply(s3, path, "eg-shared", None)  # shared by prefixes: no single environment tag
    return s3


def test_compliant_buckets_pass(compliant: Any, envguard_cli: Cli) -> None:
    result = envguard_cli("s3", "check")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "s3://eg-dev (train): ok",
        "s3://eg-prod (prod): ok",
        "s3://eg-shared (prod, train): ok",
    ]
    data = envguard_cli("s3", "check", "eg-prod", "EG-PROD", "--json").json()
    assert data == {
        "ok": True,
        "buckets": [{"bucket": "eg-prod", "environments": ["prod"], "findings": [], "ok": True}],
    }


def test_a_bare_bucket_falls_short_on_every_count(s3: Any, envguard_cli: Cli) -> None:
    result = envguard_cli("s3", "check", "eg-prod")
    assert result.exit_code == 1
    assert result.stdout.startswith("s3://eg-prod (prod): 3 problem(s)\n")
    data = envguard_cli("s3", "check", "eg-prod", "--json").json()
    assert data["ok"] is False
    rules = [f["rule"] for f in data["buckets"][0]["findings"]]
    assert rules == ["no-bucket-policy", "no-default-encryption", "bucket-tag"]
    messages = " ".join(f["message"] for f in data["buckets"][0]["findings"])
    assert "EnvguardProdRequireEnvTag" in messages
    assert "envguard.env does not say so (it is missing)" in messages


def test_a_missing_statement_and_a_wrong_tag_are_named(
    compliant: Any, envguard_cli: Cli, write_policy: Callable[..., Path]
) -> None:
    document = bucket_policy(load_policy(write_policy()), "eg-prod")
    document["Statement"] = [
        st for st in document["Statement"] if st["Sid"] != "EnvguardProdRequireEncryption"
    ]
    compliant.put_bucket_policy(Bucket="eg-prod", Policy=json.dumps(document))
    compliant.put_bucket_tagging(
        Bucket="eg-prod", Tagging={"TagSet": [{"Key": "envguard.env", "Value": "train"}]}
    )
    result = envguard_cli("s3", "check", "eg-prod", "eg-dev")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "s3://eg-prod (prod): 2 problem(s)"
    assert "missing-statement" in lines[1]
    assert "EnvguardProdRequireEncryption" in lines[1]
    assert "without server-side encryption" in lines[1]
    assert "bucket-tag" in lines[3]
    assert "(it is 'train')" in lines[3]
    assert lines[-1] == "s3://eg-dev (train): ok"


def test_a_bucket_missing_on_the_server_is_reported(s3: Any, envguard_cli: Cli) -> None:
    s3.delete_bucket(Bucket="eg-dev")
    result = envguard_cli("s3", "check", "eg-dev", "--json")
    assert result.exit_code == 1
    (finding,) = result.json()["buckets"][0]["findings"]
    assert finding["rule"] == "missing-bucket"
    assert "s3://eg-dev does not exist" in finding["message"]


def test_unknown_bucket_is_bad_input(s3: Any, envguard_cli: Cli) -> None:
    result = envguard_cli("s3", "check", "eg-dev", "eg-elsewhere")
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing was read
    assert result.stderr.startswith("error: bucket 'eg-elsewhere': the policy")
    assert "Traceback" not in result.stderr


def test_no_credentials_is_one_clear_message(
    s3: Any, envguard_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = envguard_cli("s3", "check", "eg-dev")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no usable AWS credentials (Unable to locate")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_endpoint_option_and_unreachable_endpoint(
    s3: Any, envguard_cli: Cli, monkeypatch: pytest.MonkeyPatch, aws_env: str
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    result = envguard_cli("s3", "check", "eg-dev", "--endpoint-url", aws_env, "--json")
    assert result.exit_code == 1
    assert result.json()["buckets"][0]["findings"][0]["rule"] == "no-bucket-policy"
    result = envguard_cli("s3", "check", "eg-dev", "--endpoint-url", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "cannot reach S3" in result.stderr


@pytest.fixture
def reader_without_tagging(s3: Any, aws_env: str) -> Iterator[dict[str, str]]:
    """Credentials of an IAM user that may read bucket policies and encryption but not tags, with
    the server checking IAM permissions until the test ends."""
    import boto3

    iam = boto3.session.Session().client("iam")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(
        UserName="auditor",
        PolicyName="read-config",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        # AWS names the permission of GetBucketEncryption
                        # s3:GetEncryptionConfiguration; moto 5 checks s3:ListBucket for it.
                        "Action": [
                            "s3:GetBucketPolicy",
                            "s3:GetEncryptionConfiguration",
                            "s3:ListBucket",
                        ],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    moto_api(aws_env, "reset-auth", b"0")
    try:
        yield {
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        }
    finally:
        moto_api(aws_env, "reset-auth", b"inf")


def test_a_bucket_without_tagging_permission_is_reported_not_passed(
    envguard_cli: Cli, reader_without_tagging: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in reader_without_tagging.items():
        monkeypatch.setenv(name, value)
    result = envguard_cli("s3", "check", "eg-dev", "--json")
    assert result.exit_code == 1, result.stderr
    findings = result.json()["buckets"][0]["findings"]
    assert [f["rule"] for f in findings] == [
        "no-bucket-policy",
        "no-default-encryption",
        "unreadable",
    ]
    assert "get_bucket_tagging (AccessDenied)" in findings[2]["message"]
    assert "s3:GetBucketTagging" in findings[2]["remedy"]
