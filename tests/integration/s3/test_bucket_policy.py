"""The policy generator and the statement comparison: unit tests, no server needed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from envguard_s3.bucket_check import covers
from envguard_s3.bucket_policy import (
    S3Scope,
    bucket_policies,
    bucket_policy,
    expected_statements,
    iam_policy,
    scopes,
)

from envguard.errors import EnvironmentUnknown, InputError
from envguard.policy import Policy, load_policy


@pytest.fixture
def policy(write_policy: Callable[..., Path]) -> Policy:
    return load_policy(write_policy())


def _by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {st["Sid"]: st for st in document["Statement"]}


def test_scopes_merge_buckets_prefixes_and_artifact_locations(policy: Policy) -> None:
    # s3://eg-dev/mlflow (an artifact location) lies inside eg-dev: not listed twice
    assert scopes(policy, "train") == [S3Scope("eg-dev"), S3Scope("eg-shared", "dev")]
    assert scopes(policy, "test") == []


def test_prod_bucket_policy_denies_other_environments_untagged_unencrypted_and_http(
    policy: Policy,
) -> None:
    document = bucket_policies(policy, "prod")["eg-prod"]
    assert document["Version"] == "2012-10-17"
    statements = _by_sid(document)
    assert set(statements) == {
        "EnvguardProdDenyOtherEnvironments",
        "EnvguardProdRequireEnvTag",
        "EnvguardProdRequireEncryption",
        "EnvguardProdDenyInsecureTransport",
    }
    others = statements["EnvguardProdDenyOtherEnvironments"]
    assert others["Effect"] == "Deny"
    assert others["Principal"] == "*"
    assert others["Action"] == "s3:*"
    assert others["Resource"] == ["arn:aws:s3:::eg-prod", "arn:aws:s3:::eg-prod/*"]
    assert others["Condition"] == {"StringNotEquals": {"aws:PrincipalTag/envguard.env": "prod"}}
    tag = statements["EnvguardProdRequireEnvTag"]
    assert tag["Action"] == "s3:PutObject"
    assert tag["Resource"] == "arn:aws:s3:::eg-prod/*"
    assert tag["Condition"] == {"StringNotEquals": {"s3:RequestObjectTag/envguard.env": "prod"}}
    sse = statements["EnvguardProdRequireEncryption"]
    assert sse["Condition"] == {"Null": {"s3:x-amz-server-side-encryption": "true"}}
    http = statements["EnvguardProdDenyInsecureTransport"]
    assert http["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert json.loads(json.dumps(document)) == document


def test_shared_bucket_policy_holds_every_environment_prefix_by_prefix(policy: Policy) -> None:
    shared = bucket_policies(policy, "train")["eg-shared"]
    assert (
        shared == bucket_policy(policy, "eg-shared") == bucket_policies(policy, "prod")["eg-shared"]
    )
    statements = _by_sid(shared)
    train = statements["EnvguardTrainDenyOtherEnvironments"]
    assert train["Resource"] == "arn:aws:s3:::eg-shared/dev/*"  # not the bucket: prod shares it
    listing = statements["EnvguardProdDenyOtherEnvironmentsList"]
    assert listing["Resource"] == "arn:aws:s3:::eg-shared"
    assert listing["Condition"]["StringLike"] == {"s3:prefix": ["prod", "prod/*"]}
    assert listing["Condition"]["StringNotEquals"] == {"aws:PrincipalTag/envguard.env": "prod"}
    assert statements["EnvguardProdRequireEnvTag"]["Resource"] == "arn:aws:s3:::eg-shared/prod/*"
    assert len(statements) == len(shared["Statement"]), "Sids must be unique"


def test_exempt_principals_are_left_out_of_the_deny_by_arn(policy: Policy) -> None:
    arn = "arn:aws:iam::123456789012:role/break-glass"
    statements = _by_sid(bucket_policies(policy, "prod", exempt=[arn])["eg-prod"])
    condition = statements["EnvguardProdDenyOtherEnvironments"]["Condition"]
    assert condition["ArnNotLike"] == {"aws:PrincipalArn": [arn]}
    assert "ArnNotLike" not in statements["EnvguardProdRequireEnvTag"]["Condition"]


def test_iam_policy_allows_own_locations_and_denies_the_others(policy: Policy) -> None:
    statements = _by_sid(iam_policy(policy, "train"))
    assert statements["EnvguardTrainListEgDev"]["Resource"] == "arn:aws:s3:::eg-dev"
    assert "Condition" not in statements["EnvguardTrainListEgDev"]
    assert statements["EnvguardTrainListEgShared"]["Condition"] == {
        "StringLike": {"s3:prefix": ["dev", "dev/*"]}
    }
    assert statements["EnvguardTrainReadWrite"]["Resource"] == [
        "arn:aws:s3:::eg-dev/*",
        "arn:aws:s3:::eg-shared/dev/*",
    ]
    deny = statements["EnvguardTrainDenyOtherEnvironments"]
    assert deny["Effect"] == "Deny"
    assert deny["Resource"] == [
        "arn:aws:s3:::eg-prod",
        "arn:aws:s3:::eg-prod/*",
        "arn:aws:s3:::eg-shared/prod/*",
    ]
    assert all("Principal" not in st for st in statements.values())  # identity policy


def test_bad_inputs_name_the_problem(policy: Policy) -> None:
    with pytest.raises(EnvironmentUnknown, match="unknown environment 'staging'"):
        bucket_policies(policy, "staging")
    with pytest.raises(InputError, match="assigns it no S3 bucket or prefix"):
        bucket_policies(policy, "test")
    with pytest.raises(InputError, match="assigns it no S3 bucket or prefix"):
        iam_policy(policy, "test")
    with pytest.raises(InputError, match="known buckets: eg-dev, eg-prod, eg-shared"):
        expected_statements(policy, "eg-elsewhere")


def test_covers_accepts_equivalent_or_wider_statements_only(policy: Policy) -> None:
    expected = expected_statements(policy, "eg-prod")
    for statement in expected:
        assert covers(statement, statement)
    others = dict(expected[0])
    wider = {**others, "Sid": "Mine", "Principal": {"AWS": "*"}, "Resource": "arn:aws:s3:::eg-*"}
    assert covers(wider, others)
    exempted = bucket_policies(policy, "prod", exempt=["arn:aws:iam::1:role/x"])["eg-prod"]
    assert covers(exempted["Statement"][0], others)
    narrowed = {**others, "Condition": {**others["Condition"], "IpAddress": {"aws:SourceIp": "1"}}}
    assert not covers(narrowed, others)
    assert not covers({**others, "Effect": "Allow"}, others)
    assert not covers({**others, "Action": "s3:GetObject"}, others)
    assert not covers({**others, "Resource": "arn:aws:s3:::eg-prod/*"}, others)
    assert not covers({**others, "Principal": {"AWS": "arn:aws:iam::1:root"}}, others)
    other_value = {"StringNotEquals": {"aws:PrincipalTag/envguard.env": "train"}}
    assert not covers({**others, "Condition": other_value}, others)
    http = expected[-1]
    assert covers({**http, "Condition": {"Bool": {"aws:SecureTransport": False}}}, http)


def test_policy_command_prints_json_to_paste(
    policy: Policy, envguard_cli: Callable[..., Any]
) -> None:
    result = envguard_cli("s3", "policy", "--env", "prod", "--bucket", "eg-prod")
    assert result.exit_code == 0, result.stderr
    assert result.json() == bucket_policy(policy, "eg-prod")
    result = envguard_cli("s3", "policy", "--env", "train", "--iam")
    assert result.json() == iam_policy(policy, "train")
    result = envguard_cli("s3", "policy", "--env", "prod", "--json")
    data = result.json()
    assert data["principal_tag"] == "aws:PrincipalTag/envguard.env"
    assert data["object_tag"] == "envguard.env"
    assert sorted(data["bucket_policies"]) == ["eg-prod", "eg-shared"]
    assert data["iam_policy"] == iam_policy(policy, "prod")
    text = envguard_cli("s3", "policy", "--env", "prod").stdout
    blocks = [b for b in text.split("\n\n") if b.strip()]
    documents = [
        json.loads("\n".join(x for x in b.splitlines() if not x.startswith("#"))) for b in blocks
    ]
    assert documents == [*data["bucket_policies"].values(), data["iam_policy"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "staging"], "unknown environment 'staging'"),
        (["--env", "test"], "assigns it no S3 bucket or prefix"),
        (["--env", "prod", "--bucket", "eg-dev"], "its buckets: eg-prod, eg-shared"),
        ([], "Missing option '--env'"),
    ],
)
def test_policy_command_bad_input_exits_2(
    policy: Policy, envguard_cli: Callable[..., Any], args: list[str], message: str
) -> None:
    result = envguard_cli("s3", "policy", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_importing_the_plugin_stays_light() -> None:
    probe = (
        "import envguard_s3, envguard_s3.bucket_policy, envguard_s3.commands, sys\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
