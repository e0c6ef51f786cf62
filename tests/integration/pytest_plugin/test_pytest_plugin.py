"""envguard's pytest plugin, run as a user runs it: pytest (in a subprocess, through pytester)
on a project with a policy, against a real S3-compatible server, a real mlflow server and a real
PostgreSQL server that the policy calls production."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from tests.conftest import EXAMPLE_POLICY
from tests.servers import MlflowServer, MotoServer, PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prod_mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("prod-mlflow")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def project(
    pytester: pytest.Pytester,
    moto: MotoServer,
    prod_mlflow: MlflowServer,
    postgres: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> pytest.Pytester:
    """A project whose policy names the real servers as production resources."""
    moto.api("reset")
    policy = EXAMPLE_POLICY.read_text()
    policy = policy.replace(
        'mlflow_tracking_uris = ["https://mlflow.acme.example"]',
        f'mlflow_tracking_uris = ["{prod_mlflow.url}"]',
    )
    policy = policy.replace(
        'hosts = ["postgresql://db.acme.example/customers"]',
        f'hosts = ["postgresql://127.0.0.1:{postgres.port}/customers"]',
    )
    policy = policy.replace('s3 = ["acme-ml-prod"]', 's3 = ["eg-prod"]')
    policy = policy.replace('s3 = ["acme-ml-dev"]', 's3 = ["eg-dev"]')
    (pytester.path / "envguard.toml").write_text(policy)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "ENVGUARD_CONFIG",
        "ENVGUARD_ENV",
        "BOTOCORE_EXPERIMENTAL__PLUGINS",
        "AWS_PROFILE",
        "MLFLOW_TRACKING_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    import boto3

    client = boto3.session.Session().client("s3", endpoint_url=moto.url)
    for bucket in ("eg-dev", "eg-prod"):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket="eg-prod", Key="customers.csv", Body=b"id\n1\n")
    client.put_object(Bucket="eg-dev", Key="sample.csv", Body=b"id\n1\n")
    return pytester


SUITE = """
import os
import socket

import boto3
import pytest


def test_runs_in_test(envguard_env, envguard_policy):
    assert envguard_env.name == "test"
    assert os.environ["ENVGUARD_ENV"] == "test"
    assert envguard_policy.is_prod("prod")


def test_dev_bucket_is_fine():
    s3 = boto3.session.Session().client("s3")
    assert s3.get_object(Bucket="eg-dev", Key="sample.csv")["Body"].read() == b"id\\n1\\n"


def test_reads_prod_bucket():
    s3 = boto3.session.Session().client("s3")
    s3.get_object(Bucket="eg-prod", Key="customers.csv")


def test_prod_mlflow():
    import mlflow

    mlflow.set_tracking_uri("{mlflow}")
    mlflow.search_experiments()


def test_prod_mlflow_over_plain_http():
    import urllib.request

    urllib.request.urlopen("{mlflow}/health", timeout=5).read()


def test_prod_database_swallowed():
    try:
        socket.create_connection(("127.0.0.1", {pg_port}), timeout=2).close()
    except Exception:
        pass  # the test hides the error; it must fail anyway


def test_prod_database_through_sqlalchemy():
    import sqlalchemy

    engine = sqlalchemy.create_engine("postgresql+psycopg://postgres@127.0.0.1:{pg_port}/customers")
    engine.connect()


@pytest.mark.envguard_env("train")
def test_marker(envguard_env):
    assert envguard_env.name == "train"
    assert os.environ["ENVGUARD_ENV"] == "train"


def test_lineage_store(envguard_lineage_store, tmp_path):
    from envguard.runtime import current

    assert current().store.url == envguard_lineage_store.url
"""


def test_the_boundary_holds(
    project: pytest.Pytester, prod_mlflow: MlflowServer, postgres: PostgresServer
) -> None:
    project.makepyfile(test_suite=SUITE.format(mlflow=prod_mlflow.url, pg_port=postgres.port))
    result = project.runpytest_subprocess("-p", "pytester")
    result.assert_outcomes(passed=4, failed=5)
    out = result.stdout.str()
    assert "envguard: session runs in 'test' (non-production)" in out
    assert "GetObject on s3://eg-prod/customers.csv" in out
    # MLflow's client is stopped by the MLflow plugin's own check first; any other HTTP client
    # by the audit hook underneath.
    assert f"the MLflow tracking URI {prod_mlflow.url} belongs to 'prod'" in out
    assert (
        f"tried to reach 127.0.0.1:{prod_mlflow.port}, which the policy assigns to "
        f"production environment 'prod' (rule environments.prod.mlflow_tracking_uris)"
    ) in out
    assert (
        f"tried to reach 127.0.0.1:{postgres.port}, which the policy assigns to production "
        f"environment 'prod' (rule environments.prod.hosts)"
    ) in out
    assert "test_suite.py::test_prod_mlflow: envguard deny" in out
    assert f"test_prod_mlflow_over_plain_http: 127.0.0.1:{prod_mlflow.port} (environments" in out
    assert "tried to reach" in out
    assert "and caught the error" in out  # the swallowed one fails anyway
    assert "boundary crossing(s) blocked in environment 'test'" in out
    summary = out[out.index("envguard =") :]
    assert "test_reads_prod_bucket" in summary
    assert "test_prod_database_through_sqlalchemy" in summary


def test_production_environment_is_refused(project: pytest.Pytester) -> None:
    project.makepyfile(test_x="def test_x():\n    pass\n")
    result = project.runpytest_subprocess("--envguard-env", "prod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'prod', a production-tier environment*"])
    result = project.runpytest_subprocess("--envguard-env", "staging")
    result.stderr.fnmatch_lines(["*does not declare*"])


def test_opt_out(project: pytest.Pytester, prod_mlflow: MlflowServer) -> None:
    project.makepyfile(
        test_x=textwrap.dedent(f"""
        import urllib.request

        def test_x():
            urllib.request.urlopen("{prod_mlflow.url}/health").read()
    """)
    )
    assert project.runpytest_subprocess("-p", "no:envguard").ret == 0
    project.makeini("[pytest]\nenvguard = false\n")
    assert project.runpytest_subprocess().ret == 0


def test_no_policy_no_effect(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENVGUARD_CONFIG", raising=False)
    pytester.makepyfile(
        test_x="import sys\n\ndef test_x():\n"
        "    assert 'envguard.policy' not in sys.modules\n"
        "    assert 'pydantic' not in sys.modules\n"
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert "envguard:" not in result.stdout.str()
    assert "boundary crossing" not in result.stdout.str()


def test_the_fixtures_example_in_the_docs_passes(project: pytest.Pytester) -> None:
    import re

    from tests.conftest import ROOT

    page = (ROOT / "docs" / "pytest.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", page, re.S)
    project.makepyfile(test_docs_example=code)
    project.runpytest_subprocess().assert_outcomes(passed=3)
