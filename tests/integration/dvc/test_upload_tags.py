"""Tags set in the upload request (envguard_dvc.upload_tags), against moto's S3 server.

The same handlers DVC's aiobotocore client gets during `dvc push` (test_tags.py covers that path
end to end); here a botocore client drives the cases a small push does not reach: a multipart
upload, an upload S3 refuses, and a client after the push is over.
"""

from __future__ import annotations

import itertools

import pytest
from botocore.exceptions import ClientError
from envguard_dvc.upload_tags import UploadTagger

from tests.servers import MotoServer

pytestmark = pytest.mark.integration

TAGS = {"envguard.env": "train", "envguard.origin": "train"}
_n = itertools.count(1)


def _tags(client: object, bucket: str, key: str) -> dict[str, str]:
    found = client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]  # type: ignore[attr-defined]
    return {t["Key"]: t["Value"] for t in found}


def test_put_and_multipart_uploads_carry_the_tags_and_are_recorded(moto: MotoServer) -> None:
    client = moto.client()
    bucket = f"upload-tags-{next(_n)}"
    client.create_bucket(Bucket=bucket)
    tagger = UploadTagger(TAGS)
    tagger.attach(client)
    tagger.attach(client)  # twice: harmless
    assert tagger.clients == 1

    client.put_object(Bucket=bucket, Key="small", Body=b"x", Tagging="team=ml")
    upload = client.create_multipart_upload(Bucket=bucket, Key="big")
    part = b"y" * (5 * 1024 * 1024)
    parts = []
    for number, body in enumerate((part, b"tail"), start=1):
        done = client.upload_part(
            Bucket=bucket, Key="big", PartNumber=number, UploadId=upload["UploadId"], Body=body
        )
        parts.append({"PartNumber": number, "ETag": done["ETag"]})
    assert tagger.uploaded == {"small"}  # not before the multipart upload is complete
    client.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    assert "-2" in client.head_object(Bucket=bucket, Key="big")["ETag"]

    assert tagger.uploaded == {"small", "big"}
    assert _tags(client, bucket, "small") == {**TAGS, "team": "ml"}  # the caller's tag stays
    assert _tags(client, bucket, "big") == TAGS

    with pytest.raises(ClientError):  # refused by S3: not recorded as tagged
        client.put_object(Bucket=f"{bucket}-missing", Key="lost", Body=b"x")
    assert "lost" not in tagger.uploaded

    tagger.detach()  # the push is over: the client uploads as before
    client.put_object(Bucket=bucket, Key="later", Body=b"z")
    assert _tags(client, bucket, "later") == {}
    assert "later" not in tagger.uploaded

    other = UploadTagger({"envguard.env": "test", "envguard.origin": "prod"})
    other.attach(client)  # the next push on the same client tags with its own remote's tags
    client.put_object(Bucket=bucket, Key="next", Body=b"n")
    other.detach()
    assert other.uploaded == {"next"}
    assert tagger.uploaded == {"small", "big"}
    assert _tags(client, bucket, "next") == {"envguard.env": "test", "envguard.origin": "prod"}
