"""A real S3-compatible server for the S3 plugin's tests: moto's server mode, started once per
test session as a subprocess on a free port of 127.0.0.1, and stopped at the end.

Each test gets a clean server (``/moto-api/reset``), dummy credentials, ``AWS_ENDPOINT_URL``
pointing at the server, and a policy (``ENVGUARD_CONFIG``) with three buckets: ``eg-dev``
(environment ``train``), ``eg-prod`` (``prod``) and ``eg-shared``, whose ``dev/`` prefix belongs
to ``train`` and ``prod/`` prefix to ``prod``.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.servers import MotoServer

POLICY = """\
version = 1
default_env = "train"
mode = "{mode}"
strict_uris = {strict}

[environments.train]
tier = "non-prod"
s3 = ["eg-dev", "s3://eg-shared/dev/"]
artifact_locations = ["s3://eg-dev/mlflow"]

[environments.test]
tier = "non-prod"

[environments.prod]
tier = "prod"
s3 = ["eg-prod", "s3://eg-shared/prod/"]
"""

BUCKETS = ("eg-dev", "eg-prod", "eg-shared")


@pytest.fixture(scope="session")
def moto_endpoint(moto: MotoServer) -> str:
    """The URL of the session's moto S3 server."""
    return moto.url


def moto_api(endpoint: str, path: str, body: bytes = b"") -> None:
    url = f"{endpoint}/moto-api/{path}"
    request = urllib.request.Request(  # noqa: S310 - our server
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        assert answer.status == 200


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Dummy credentials and AWS_ENDPOINT_URL for a freshly reset server; no user AWS config."""
    moto_api(moto_endpoint, "reset")
    unset = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_PROFILE")
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("BOTOCORE_EXPERIMENTAL__PLUGINS", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return moto_endpoint


@pytest.fixture
def write_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write the test policy (``mode``, ``strict_uris`` given) and point ENVGUARD_CONFIG at it."""
    from envguard import runtime

    def write(mode: str = "enforce", strict: bool = False) -> Path:
        path = tmp_path / "envguard.toml"
        path.write_text(POLICY.format(mode=mode, strict=str(strict).lower()))
        monkeypatch.setenv("ENVGUARD_CONFIG", str(path))
        runtime.reset()
        return path

    return write


@pytest.fixture
def s3(aws_env: str, write_policy: Callable[..., Path]) -> Any:
    """An unguarded boto3 S3 client (the test's own hands), with the three buckets created and the
    default policy written."""
    import boto3

    write_policy()
    client = boto3.session.Session().client("s3")
    for bucket in BUCKETS:
        client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture
def guarded(s3: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Any]:
    """A guarded S3 client of a process in the given environment."""
    import boto3
    import envguard_s3

    from envguard import runtime

    def make(env: str) -> Any:
        monkeypatch.setenv("ENVGUARD_ENV", env)
        runtime.reset()
        return envguard_s3.install(boto3.session.Session().client("s3"))

    return make


def tags_of(client: Any, bucket: str, key: str) -> dict[str, str]:
    answer = client.get_object_tagging(Bucket=bucket, Key=key)
    return {t["Key"]: t["Value"] for t in answer["TagSet"]}


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVGUARD_")}
    env.update(extra)
    return env
