"""Bad input: one clear message each, exit 2 (or 1 for what could not be tagged), no traceback,
and nothing half-tagged without a record of it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import CliResult
from tests.integration.dvc.conftest import Repo, events, write
from tests.servers import MotoServer

pytestmark = pytest.mark.integration

Run = Callable[..., CliResult]


def test_a_dvc_file_with_no_hash_and_a_corrupted_lock(repo: Repo, run: Run) -> None:
    write(repo.root / "a.txt", "a\n")
    write(repo.root / "a.txt.dvc", "outs:\n- path: a.txt\n")
    synced = run("dvc", "sync")
    assert synced.exit_code == 0
    assert (
        "problem: a.txt.dvc: output 'a.txt' has no hash; run `dvc commit a.txt.dvc`"
        in synced.stdout
    )
    write(repo.root / "dvc.yaml", "stages:\n  s:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n")
    write(repo.root / "dvc.lock", "schema: '2.0'\nstages: [\n")
    broken = run("dvc", "sync")
    assert broken.exit_code == 2
    assert broken.stderr.startswith("error: ")
    assert "dvc.lock" in broken.stderr
    assert "fix or restore the file" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_a_missing_bucket(repo: Repo, run: Run) -> None:
    repo.dvc("remote", "modify", "dev-data", "url", "s3://no-such-bucket-here/store")
    missing = run("dvc", "tag", "dev-data")
    assert missing.exit_code == 2
    assert "bucket 'no-such-bucket-here' does not exist" in missing.stderr
    assert "dvc remote modify dev-data url" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_an_object_deleted_between_listing_and_tagging(repo: Repo) -> None:
    from envguard_dvc.remotes import remote_info
    from envguard_dvc.storage import ENV_TAG, S3Storage

    from envguard.policy import load_policy

    s3 = repo.moto.client()
    for name in ("aa/1111", "bb/2222"):
        s3.put_object(Bucket=repo.dev_bucket, Key=f"store/files/md5/{name}", Body=b"x")
    remote = remote_info(
        "dev-data",
        {"url": f"s3://{repo.dev_bucket}/store", "endpointurl": repo.moto.url},
        load_policy(),
    )
    storage = S3Storage(remote)
    listed = storage.objects()
    assert [o.md5 for o in listed] == ["aa1111", "bb2222"]
    s3.delete_object(Bucket=repo.dev_bucket, Key="store/files/md5/bb/2222")
    result = storage.apply([(o, {ENV_TAG: "train"}) for o in listed])
    assert [o.md5 for o in result.tagged] == ["aa1111"]
    assert result.missing == ["store/files/md5/bb/2222"]
    assert result.failed == {}


@pytest.fixture(scope="module")
def iam_moto() -> Iterator[MotoServer]:
    """A second moto server that enforces IAM after its first four requests."""
    server = MotoServer(no_auth_actions=4).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_bucket_without_tagging_permission(repo: Repo, run: Run, iam_moto: MotoServer) -> None:
    iam = iam_moto.client("iam")
    iam_moto.client().create_bucket(Bucket="no-tagging")
    iam.create_user(UserName="dev")
    allow = {
        "Effect": "Allow",
        "Action": ["s3:ListBucket", "s3:GetObject", "s3:PutObject"],
        "Resource": "*",
    }
    iam.put_user_policy(
        UserName="dev",
        PolicyName="no-tagging",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
    )
    key = iam.create_access_key(UserName="dev")["AccessKey"]
    for setting, value in (
        ("url", "s3://no-tagging/store"),
        ("endpointurl", iam_moto.url),
        ("access_key_id", key["AccessKeyId"]),
        ("secret_access_key", key["SecretAccessKey"]),
    ):
        repo.dvc("remote", "modify", "--local", "dev-data", setting, value)
    write(repo.root / "a.txt", "a\n")
    repo.dvc("add", "-q", "a.txt")
    # Already on the remote (DVC skips it), so it needs a PutObjectTagging, which is refused.
    # (Tags set in the upload request would not show the refusal here: moto accepts them
    # without s3:PutObjectTagging, where AWS refuses the upload; see envguard_dvc.upload_tags.)
    dev = iam_moto.client(key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    md5 = hashlib.md5(b"a\n", usedforsecurity=False).hexdigest()
    dev.put_object(Bucket="no-tagging", Key=f"store/files/md5/{md5[:2]}/{md5[2:]}", Body=b"a\n")
    pushed = repo.dvc("push")  # the push succeeds; tagging the skipped object fails
    assert "1 FAILED (envguard dvc status; envguard dvc tag)" in pushed.stderr

    status = run("dvc", "status", "--json")
    assert status.exit_code == 1
    dev = next(r for r in status.json() if r["remote"] == "dev-data")
    (error,) = dev["failed"].values()
    assert error.startswith("AccessDenied")
    retried = run("dvc", "tag", "dev-data")
    assert retried.exit_code == 1
    assert "1 failed" in retried.stdout
    assert "failed: store/files/md5/" in retried.stdout
    recorded = [e.payload["failed"] for e in events("dvc.tagged")]
    assert len(recorded) == 2
    assert all(len(failed) == 1 for failed in recorded)
