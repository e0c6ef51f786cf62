"""Mapping, inventory and origin tags: `envguard dvc status|tag`, and tagging after `dvc push`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.integration.dvc.conftest import Repo, events, write

pytestmark = pytest.mark.integration

Run = Callable[..., CliResult]


def _md5_key(content: bytes) -> str:
    md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
    return f"store/files/md5/{md5[:2]}/{md5[2:]}"


def test_push_tags_every_object_including_skipped_and_multipart(repo: Repo, run: Run) -> None:
    write(repo.root / "data" / "a.csv", "id,x\n1,2\n")
    big = b"x" * (5 * 1024 * 1024) + b"tail"
    (repo.root / "data" / "big.bin").write_bytes(big)
    # Already on the remote before the push, uploaded in two parts: DVC skips it.
    s3 = repo.moto.client()
    key = _md5_key(big)
    upload = s3.create_multipart_upload(Bucket=repo.dev_bucket, Key=key)
    parts = []
    for number, chunk in enumerate((big[: 5 * 1024 * 1024], big[5 * 1024 * 1024 :]), start=1):
        done = s3.upload_part(
            Bucket=repo.dev_bucket,
            Key=key,
            PartNumber=number,
            UploadId=upload["UploadId"],
            Body=chunk,
        )
        parts.append({"PartNumber": number, "ETag": done["ETag"]})
    s3.complete_multipart_upload(
        Bucket=repo.dev_bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    assert "-2" in s3.head_object(Bucket=repo.dev_bucket, Key=key)["ETag"]
    repo.dvc("add", "-q", "data")
    pushed = repo.dvc("push")
    # a.csv and the directory's listing are tagged by S3 as DVC uploads them; big.bin, skipped,
    # by one PutObjectTagging.
    assert (
        "envguard: remote 'dev-data' (train): 3 objects, 3 tagged now "
        "(2 by S3 on upload, 1 by PutObjectTagging)" in pushed.stderr
    )

    keys = repo.keys(repo.dev_bucket)
    assert len(keys) == 3  # a.csv, big.bin and the directory's listing
    assert key in keys
    for each in keys:
        assert repo.tags(repo.dev_bucket, each) == {
            "envguard.env": "train",
            "envguard.origin": "train",
        }

    status = run("dvc", "status", "--json")
    assert status.exit_code == 0, status.stderr
    dev = next(r for r in status.json() if r["remote"] == "dev-data")
    assert dev["env"] == "train"
    assert (dev["inventoried"], dev["tagged"], dev["untagged"], dev["failed"]) == (3, 3, 0, {})
    assert dev["workspace_not_inventoried"] == []

    tagged_before = len(events("dvc.tagged"))
    again = run("dvc", "tag", "dev-data", "--json")
    assert again.exit_code == 0, again.stderr
    (report,) = again.json()
    assert (report["listed"], report["inventoried"], report["tagged"]) == (3, 0, 0)
    assert report["unchanged"] == 3
    assert len(events("dvc.tagged")) == tagged_before  # idempotent: nothing new recorded


def test_local_remote_keeps_a_manifest(repo: Repo, run: Run, tmp_path: Path) -> None:
    write(repo.root / "notes.txt", "hello\n")
    repo.dvc("add", "-q", "notes.txt")
    repo.dvc("push", "-r", "local")
    manifest = json.loads((tmp_path / "local-remote" / "envguard-manifest.json").read_text())
    assert manifest["env"] == "train"
    (entry,) = manifest["objects"].values()
    assert entry == {"envguard.env": "train", "envguard.origin": "train"}
    second = run("dvc", "tag", "local", "--json").json()
    assert second[0]["tagged"] == 0
    assert second[0]["unchanged"] == 1


def test_status_names_a_remote_the_policy_does_not_know(repo: Repo, run: Run) -> None:
    repo.dvc("remote", "add", "elsewhere", "s3://somebody-elses-bucket/x")
    status = run("dvc", "status")
    assert status.exit_code == 1
    assert "elsewhere  s3://somebody-elses-bucket/x  env UNKNOWN" in status.stdout
    assert "no environment of the policy lists this remote" in status.stdout
    refused = run("dvc", "tag", "elsewhere")
    assert refused.exit_code == 2
    assert "remote 'elsewhere' (s3://somebody-elses-bucket/x): no environment" in refused.stderr
    assert "environments.ENV.dvc_remotes" in refused.stderr
    assert "Traceback" not in refused.stderr
