"""The in-process guard against a real S3 server: refusals before the request leaves, tags on
every write, modes, the disable switch, and the ways a client gets guarded."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envguard.errors import Denied
from tests.conftest import ROOT
from tests.integration.s3.conftest import subprocess_env, tags_of

pytestmark = pytest.mark.integration

Guarded = Callable[[str], Any]


def _exists(client: Any, bucket: str, key: str) -> bool:
    answer = client.list_objects_v2(Bucket=bucket, Prefix=key)
    return any(o["Key"] == key for o in answer.get("Contents", []))


def test_non_prod_write_to_prod_bucket_is_refused_before_it_leaves(
    s3: Any, guarded: Guarded
) -> None:
    client = guarded("train")
    with pytest.raises(Denied) as caught:
        client.put_object(Bucket="eg-prod", Key="leak.csv", Body=b"x")
    message = str(caught.value)
    assert "s3://eg-prod/leak.csv" in message
    assert "'prod' (production tier)" in message
    assert "runs in 'train'" in message
    assert "ENVGUARD_ENV=prod" in message  # the remedy
    assert "s3://eg-dev" in message  # where this environment may write instead
    decision = caught.value.decision
    assert decision.environment == "train"
    assert [r.rule for r in decision.reasons] == ["s3-prod-from-non-prod"]
    assert not _exists(s3, "eg-prod", "leak.csv"), "the request reached the server"
    from envguard.runtime import current

    (event,) = current().store.events(kind="violation.found")
    assert event.entities == ["s3://eg-prod/leak.csv"]
    assert event.environment == "train"
    assert event.payload["decision"]["outcome"] == "deny"


def test_non_prod_read_of_prod_data_is_refused(s3: Any, guarded: Guarded) -> None:
    s3.put_object(Bucket="eg-prod", Key="customers.csv", Body=b"secret")
    client = guarded("train")
    with pytest.raises(Denied, match=r"GetObject on s3://eg-prod/customers\.csv"):
        client.get_object(Bucket="eg-prod", Key="customers.csv")
    with pytest.raises(Denied):
        client.download_fileobj("eg-prod", "customers.csv", io.BytesIO())
    with pytest.raises(Denied):
        client.generate_presigned_url(
            "get_object", Params={"Bucket": "eg-prod", "Key": "customers.csv"}
        )
    with pytest.raises(Denied):  # a copy reads its source
        client.copy_object(
            Bucket="eg-dev",
            Key="copy.csv",
            CopySource={"Bucket": "eg-prod", "Key": "customers.csv"},
        )
    with pytest.raises(Denied):
        client.copy_object(Bucket="eg-dev", Key="copy.csv", CopySource="eg-prod/customers.csv")
    with pytest.raises(Denied):
        client.delete_objects(
            Bucket="eg-shared",
            Delete={"Objects": [{"Key": "dev/a"}, {"Key": "prod/customers.csv"}]},
        )
    assert not _exists(s3, "eg-dev", "copy.csv")


def test_shared_bucket_listing_needs_a_non_prod_prefix(s3: Any, guarded: Guarded) -> None:
    s3.put_object(Bucket="eg-shared", Key="prod/customers.csv", Body=b"secret")
    s3.put_object(Bucket="eg-shared", Key="dev/sample.csv", Body=b"ok")
    client = guarded("train")
    with pytest.raises(Denied, match="pass a Prefix outside it"):
        client.list_objects_v2(Bucket="eg-shared")
    with pytest.raises(Denied):
        client.list_objects_v2(Bucket="eg-shared", Prefix="pro")  # would list prod/...
    listed = client.list_objects_v2(Bucket="eg-shared", Prefix="dev/")
    assert [o["Key"] for o in listed["Contents"]] == ["dev/sample.csv"]
    client.head_bucket(Bucket="eg-prod")  # bucket configuration, no object data
    client.get_bucket_location(Bucket="eg-prod")
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        client.get_bucket_policy(Bucket="eg-prod")  # reached the server: not refused
    with pytest.raises(Denied):
        client.put_bucket_policy(Bucket="eg-prod", Policy="{}")


def test_writes_are_tagged_with_the_process_environment(s3: Any, guarded: Guarded) -> None:
    client = guarded("train")
    client.put_object(Bucket="eg-dev", Key="a.csv", Body=b"a")
    assert tags_of(s3, "eg-dev", "a.csv") == {"envguard.env": "train"}
    client.put_object(Bucket="eg-dev", Key="b.csv", Body=b"b", Tagging="team=fraud&note=x%20y")
    assert tags_of(s3, "eg-dev", "b.csv") == {
        "team": "fraud",
        "note": "x y",
        "envguard.env": "train",
    }
    client.put_object(Bucket="eg-dev", Key="c.csv", Body=b"c", Tagging="envguard.env=train")
    assert tags_of(s3, "eg-dev", "c.csv") == {"envguard.env": "train"}


def test_multipart_upload_is_tagged(s3: Any, guarded: Guarded) -> None:
    from boto3.s3.transfer import TransferConfig

    client = guarded("train")
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024**2)
    client.upload_fileobj(
        io.BytesIO(b"x" * (6 * 1024 * 1024)),
        "eg-dev",
        "big.bin",
        ExtraArgs={"Tagging": "team=fraud"},
        Config=config,
    )
    assert tags_of(s3, "eg-dev", "big.bin") == {"team": "fraud", "envguard.env": "train"}


def test_copy_keeps_source_tags_and_records_the_origin(s3: Any, guarded: Guarded) -> None:
    s3.put_object(Bucket="eg-dev", Key="src.csv", Body=b"s", Tagging="team=fraud&envguard.env=test")
    client = guarded("train")
    client.copy_object(Bucket="eg-dev", Key="dst.csv", CopySource="eg-dev/src.csv")
    assert tags_of(s3, "eg-dev", "dst.csv") == {
        "team": "fraud",
        "envguard.origin": "test",
        "envguard.env": "train",
    }
    client.copy_object(
        Bucket="eg-dev",
        Key="dst2.csv",
        CopySource={"Bucket": "eg-dev", "Key": "src.csv"},
        TaggingDirective="REPLACE",
        Tagging="stage=raw",
    )
    assert tags_of(s3, "eg-dev", "dst2.csv") == {"stage": "raw", "envguard.env": "train"}


def test_put_object_tagging_keeps_the_environment_tag(s3: Any, guarded: Guarded) -> None:
    client = guarded("train")
    client.put_object(Bucket="eg-dev", Key="a.csv", Body=b"a")
    client.put_object_tagging(
        Bucket="eg-dev", Key="a.csv", Tagging={"TagSet": [{"Key": "team", "Value": "x"}]}
    )
    assert tags_of(s3, "eg-dev", "a.csv") == {"team": "x", "envguard.env": "train"}


def test_caller_set_environment_tag_of_another_value_is_refused(s3: Any, guarded: Guarded) -> None:
    client = guarded("train")
    with pytest.raises(Denied, match=r"sets the tag envguard\.env='prod'") as caught:
        client.put_object(Bucket="eg-dev", Key="a.csv", Body=b"a", Tagging="envguard.env=prod")
    assert [r.rule for r in caught.value.decision.reasons] == ["s3-env-tag"]
    with pytest.raises(Denied):
        client.put_object_tagging(
            Bucket="eg-dev",
            Key="a.csv",
            Tagging={"TagSet": [{"Key": "envguard.env", "Value": "prod"}]},
        )
    assert not _exists(s3, "eg-dev", "a.csv")


def test_prod_process_uses_prod_buckets_and_tags_them(s3: Any, guarded: Guarded) -> None:
    client = guarded("prod")
    client.put_object(Bucket="eg-prod", Key="model.bin", Body=b"m")
    assert client.get_object(Bucket="eg-prod", Key="model.bin")["Body"].read() == b"m"
    assert tags_of(s3, "eg-prod", "model.bin") == {"envguard.env": "prod"}
    client.list_objects_v2(Bucket="eg-shared")


def test_warn_and_audit_modes_allow_and_say_so(
    s3: Any,
    guarded: Guarded,
    write_policy: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    s3.put_object(Bucket="eg-prod", Key="customers.csv", Body=b"secret")
    write_policy(mode="warn")
    client = guarded("train")
    with caplog.at_level(logging.INFO, logger="envguard_s3"):
        assert client.get_object(Bucket="eg-prod", Key="customers.csv")["Body"].read()
    assert any(
        r.levelno == logging.WARNING and "envguard warn: S3 GetObject" in r.message
        for r in caplog.records
    )
    caplog.clear()
    write_policy(mode="audit")
    client = guarded("train")
    with caplog.at_level(logging.INFO, logger="envguard_s3"):
        client.put_object(Bucket="eg-prod", Key="x", Body=b"x")
    assert any("envguard record: S3 PutObject" in r.message for r in caplog.records)
    assert tags_of(s3, "eg-prod", "x") == {"envguard.env": "train"}


def test_strict_uris_refuses_unknown_buckets(
    s3: Any, guarded: Guarded, write_policy: Callable[..., Path]
) -> None:
    s3.create_bucket(Bucket="eg-elsewhere")
    client = guarded("train")
    client.put_object(Bucket="eg-elsewhere", Key="a", Body=b"a")  # not strict: allowed
    write_policy(strict=True)
    client = guarded("prod")
    with pytest.raises(Denied, match="belongs to no environment"):
        client.get_object(Bucket="eg-elsewhere", Key="a")


def test_envguard_disable_turns_the_guard_off(
    s3: Any, guarded: Guarded, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = guarded("train")
    monkeypatch.setenv("ENVGUARD_DISABLE", "1")
    client.put_object(Bucket="eg-prod", Key="x", Body=b"x")
    assert tags_of(s3, "eg-prod", "x") == {}


def test_install_on_sessions_guards_their_new_clients(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    import botocore.session
    import envguard_s3

    monkeypatch.setenv("ENVGUARD_ENV", "train")
    session = envguard_s3.install(boto3.session.Session())
    with pytest.raises(Denied):
        session.client("s3").put_object(Bucket="eg-prod", Key="x", Body=b"x")
    core = envguard_s3.install(botocore.session.get_session())
    with pytest.raises(Denied):
        core.create_client("s3").put_object(Bucket="eg-prod", Key="x", Body=b"x")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    envguard_s3.install()
    envguard_s3.install()  # twice is harmless
    client = boto3.client("s3")
    client.put_object(Bucket="eg-dev", Key="y", Body=b"y")
    assert tags_of(s3, "eg-dev", "y") == {"envguard.env": "train"}
    with pytest.raises(TypeError, match="takes a botocore client"):
        envguard_s3.install(object())


def test_botocore_plugin_variable_guards_every_client_of_a_process(
    s3: Any, write_policy: Callable[..., Path]
) -> None:
    policy = write_policy()
    script = (
        "import boto3\n"
        "from envguard.errors import Denied\n"
        "c = boto3.client('s3')\n"
        "c.put_object(Bucket='eg-dev', Key='plugin.csv', Body=b'p')\n"
        "try:\n"
        "    c.put_object(Bucket='eg-prod', Key='plugin.csv', Body=b'p')\n"
        "except Denied as exc:\n"
        "    print('DENIED', exc.decision.reasons[0].rule)\n"
    )
    env = subprocess_env(
        ENVGUARD_CONFIG=str(policy),
        ENVGUARD_ENV="train",
        BOTOCORE_EXPERIMENTAL__PLUGINS="envguard=envguard_s3",
        PYTHONPATH=str(ROOT),
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "DENIED s3-prod-from-non-prod"
    assert tags_of(s3, "eg-dev", "plugin.csv") == {"envguard.env": "train"}
    assert not _exists(s3, "eg-prod", "plugin.csv")


def test_a_broken_policy_fails_closed(
    s3: Any, guarded: Guarded, write_policy: Callable[..., Path]
) -> None:
    from envguard.errors import PolicyError

    client = guarded("train")
    write_policy().write_text("version = 1\n[environments.train]\ntier = 'nope'\n")
    from envguard import runtime

    runtime.reset()
    with pytest.raises(PolicyError):
        client.put_object(Bucket="eg-dev", Key="x", Body=b"x")
    assert not _exists(s3, "eg-dev", "x")
