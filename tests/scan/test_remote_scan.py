"""The DVC plugin's sweep of a local remote: its objects and its manifest, as ``envguard dvc tag``
writes it, read from the real folder."""

from __future__ import annotations

import json
from pathlib import Path

import envguard_dvc
import pytest

from envguard.plugins import PluginManager
from envguard.runtime import Runtime
from envguard.scan.sweep import scan
from tests.servers import MotoServer

POLICY = """\
version = 1
default_env = "train"
[environments.train]
tier = "non-prod"
dvc_remotes = ["{dev}"]
[environments.prod]
tier = "prod"
dvc_remotes = ["{prod}"]
"""


def _object(root: Path, md5: str, body: bytes) -> str:
    key = f"files/md5/{md5[:2]}/{md5[2:]}"
    (root / key).parent.mkdir(parents=True, exist_ok=True)
    (root / key).write_bytes(body)
    return key


def test_local_remotes_untagged_and_production_objects(tmp_path: Path) -> None:
    dev, prod = tmp_path / "dev-remote", tmp_path / "prod-remote"
    prod.mkdir()
    tagged = _object(dev, "a" * 32, b"a")
    copied = _object(dev, "b" * 32, b"b")
    untagged = _object(dev, "c" * 32, b"c")
    manifest = {
        tagged: {"envguard.env": "train", "envguard.origin": "train"},
        copied: {"envguard.env": "train", "envguard.origin": "prod"},
    }
    (dev / "envguard-manifest.json").write_text(json.dumps({"version": 1, "objects": manifest}))
    (tmp_path / "envguard.toml").write_text(POLICY.format(dev=dev, prod=prod))
    environ = {"ENVGUARD_ENV": "train"}
    manager = PluginManager(environ)
    manager.loaded = True
    manager.register(envguard_dvc, "dvc")
    report = scan(Runtime(tmp_path / "envguard.toml", environ, plugins=manager), record=False)
    assert {(f.rule, f.evidence.get("key")) for f in report.findings} == {
        ("object-untagged", untagged),
        ("object-prod-in-non-prod", copied),
    }
    assert report.swept[f"objects in DVC remote {dev}"] == 3
    assert report.exit_code == 1


def test_a_remote_named_but_not_configured_here_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "envguard.toml").write_text(POLICY.format(dev="dev-data", prod="prod-data"))
    environ = {"ENVGUARD_ENV": "train"}
    manager = PluginManager(environ)
    manager.loaded = True
    manager.register(envguard_dvc, "dvc")
    monkeypatch.chdir(tmp_path)
    report = scan(Runtime(tmp_path / "envguard.toml", environ, plugins=manager), record=False)
    assert {(f.rule, f.entity) for f in report.findings} == {
        ("scan-unreachable", "dvc-remote:dev-data"),
        ("scan-unreachable", "dvc-remote:prod-data"),
    }
    assert report.exit_code == 2


S3_POLICY = """\
version = 1
default_env = "train"
[environments.train]
tier = "non-prod"
s3 = ["{bucket}"]
dvc_remotes = ["s3://{bucket}/store"]
[environments.prod]
tier = "prod"
"""


def test_an_s3_remote_covered_by_the_s3_sweep_is_checked_by_md5_lineage(
    tmp_path: Path, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DVC remote in a bucket that an ``s3`` entry covers: the S3 plugin reads the tags, the
    DVC plugin maps each object's md5 to the sha256 ``envguard dvc sync`` linked it to. An
    object tagged ``train`` whose content is registered production data is found through that
    mapping (it was never inventoried); one that both sweeps find is one finding."""
    import boto3
    import envguard_s3

    from envguard.lineage import Link

    for name, value in {**MotoServer.ENV, "AWS_ENDPOINT_URL": moto.url}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    bucket = f"dvc-md5-{tmp_path.name.lower().replace('_', '-')}"[:63]
    client = boto3.session.Session().client("s3")
    client.create_bucket(Bucket=bucket)
    key = {c: f"store/files/md5/{c * 2}/{c * 30}" for c in "bcd"}
    for c, env in (("b", "train"), ("c", "prod"), ("d", "prod")):
        client.put_object(Bucket=bucket, Key=key[c], Body=c.encode(), Tagging=f"envguard.env={env}")
    (tmp_path / "envguard.toml").write_text(S3_POLICY.format(bucket=bucket))
    environ = {"ENVGUARD_ENV": "train", **MotoServer.ENV, "AWS_ENDPOINT_URL": moto.url}
    manager = PluginManager(environ)
    manager.loaded = True
    manager.register(envguard_dvc, "dvc")
    manager.register(envguard_s3, "s3")
    runtime = Runtime(tmp_path / "envguard.toml", environ, plugins=manager)
    drafts = []
    for c in "bd":  # DVC's md5 of b and d <-> a sha256 registered as production data
        md5, sha = f"dvc-md5:{c * 32}", f"sha256:{c * 64}"
        drafts.append(
            runtime.draft("dataset.registered", entities=[sha], payload={"origin": "prod"})
        )
        drafts.append(
            runtime.draft(
                "dvc.digest",
                entities=[md5, sha],
                links=[Link(md5, sha, "same-content"), Link(sha, md5, "same-content")],
                payload={"md5": md5[8:], "sha256": sha[7:]},
            )
        )
    runtime.store.append_many(drafts)

    report = scan(runtime, record=False)
    found = [f for f in report.findings if f.rule == "object-prod-in-non-prod"]
    assert sorted(f.entity for f in found) == [f"s3://{bucket}/{key[c]}" for c in "bcd"]
    by_md5 = next(f for f in found if f.entity.endswith(key["b"]))
    assert by_md5.evidence["by"] == "its content's lineage in the log"
    assert by_md5.evidence["content"] == f"dvc-md5:{'b' * 32}"
    assert by_md5.source == "dvc"
    assert not [f for f in report.findings if f.rule == "object-untagged"]
    assert report.swept[f"objects in DVC remote s3://{bucket}/store"] == 3
