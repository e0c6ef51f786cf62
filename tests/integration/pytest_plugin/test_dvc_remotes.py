"""The pytest plugin and DVC remotes the policy names by name: resolved through the project's DVC
configuration (.dvc/config and .dvc/config.local), they stop a test that reaches them through
boto3, through DVC's own S3 client (`dvc.api.open(..., remote=NAME)`) or through the file system,
on a real DVC repository and moto's S3 server; other tests go on."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import MotoServer

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc") if (BIN / "dvc").exists() else (shutil.which("dvc") or "dvc")
DATA = b"id\n1\n"

POLICY = """\
version = 1
default_env = "test"

[environments.train]
tier = "non-prod"

[environments.test]
tier = "non-prod"
dvc_remotes = ["dev-data"]

[environments.prod]
tier = "prod"
dvc_remotes = ["prod-data", "prod-local"]
"""

SUITE = """
import boto3
import dvc.api


def test_boto3_lists_the_prod_remote():
    boto3.session.Session().client("s3").list_objects_v2(Bucket="eg-vault", Prefix="store/")


def test_boto3_beside_the_prod_remote_is_fine():
    s3 = boto3.session.Session().client("s3")
    assert s3.get_object(Bucket="eg-vault", Key="{dev_key}")["Body"].read() == {data!r}


def test_dvc_api_open_prod_s3_remote():
    with dvc.api.open("data.csv", remote="prod-data") as handle:
        handle.read()


def test_dvc_api_open_prod_local_remote():
    with dvc.api.open("data.csv", remote="prod-local") as handle:
        handle.read()


def test_reads_the_local_remote_folder():
    open("prod-store/{object}", "rb").read()


def test_dvc_api_reads_the_dev_remote():
    assert dvc.api.read("data.csv", remote="dev-data", mode="rb") == {data!r}
"""


def test_a_prod_remote_named_by_name_is_guarded_at_its_url(
    pytester: pytest.Pytester, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = pytester.path
    (root / "envguard.toml").write_text(POLICY)
    env = {
        **os.environ,
        **MotoServer.ENV,
        "DVC_NO_ANALYTICS": "1",
        "ENVGUARD_DISABLE": "1",  # set-up only: the DVC guard (if installed) stays out
    }
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=root, env=env, check=True)
    with (root / ".dvc" / "config").open("a") as config:
        for name, prefix in (("prod-data", "store"), ("dev-data", "dev")):
            config.write(f"['remote \"{name}\"']\n    url = s3://eg-vault/{prefix}\n")
            config.write(f"    endpointurl = {moto.url}\n")
    # A colleague's own remote, in config.local, relative to the .dvc folder as DVC reads it.
    local = "['remote \"prod-local\"']\n    url = ../prod-store\n"
    (root / ".dvc" / "config.local").write_text(local)
    (root / "data.csv").write_bytes(DATA)
    subprocess.run([DVC, "add", "-q", "data.csv"], cwd=root, env=env, check=True)
    md5 = hashlib.md5(DATA, usedforsecurity=False).hexdigest()
    obj = f"files/md5/{md5[:2]}/{md5[2:]}"
    (root / "prod-store" / obj).parent.mkdir(parents=True)
    shutil.copy(root / ".dvc" / "cache" / obj, root / "prod-store" / obj)
    s3 = moto.client()
    s3.create_bucket(Bucket="eg-vault")
    for prefix in ("store", "dev"):
        s3.put_object(Bucket="eg-vault", Key=f"{prefix}/{obj}", Body=DATA)
    # Neither the workspace nor the cache holds the data: DVC must read it from the remote.
    (root / "data.csv").unlink()
    shutil.rmtree(root / ".dvc" / "cache")

    for name, value in {**MotoServer.ENV, "AWS_ENDPOINT_URL": moto.url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.setenv("ENVGUARD_DISABLE", "1")  # the DVC guard's .pth, if installed, stays out
    for name in ("ENVGUARD_CONFIG", "ENVGUARD_ENV", "BOTOCORE_EXPERIMENTAL__PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_suite=SUITE.format(dev_key=f"dev/{obj}", data=DATA, object=obj))

    result = pytester.runpytest_subprocess("-p", "pytester")
    result.assert_outcomes(passed=2, failed=4)
    out = result.stdout.str()
    s3_remote = "DVC remote 'prod-data' (s3://eg-vault/store)"
    local_remote = f"DVC remote 'prod-local' ({(root / 'prod-store').resolve()})"
    rule = "rule environments.prod.dvc_remotes"
    assert f"s3://eg-vault/store/ (ListObjectsV2), in {s3_remote}" in out
    assert "production environment 'prod'" in out
    assert rule in out
    assert f"in {local_remote}" in out
    assert f"s3://eg-vault/store/{obj}" in out  # where dvc.api.open went for prod-data
    summary = out[out.index("envguard =") :]
    assert "4 boundary crossing(s) blocked in environment 'test'" in summary
    for test in (
        "test_boto3_lists_the_prod_remote",
        "test_dvc_api_open_prod_s3_remote",
        "test_dvc_api_open_prod_local_remote",
        "test_reads_the_local_remote_folder",
    ):
        assert f"test_suite.py::{test}: " in summary
