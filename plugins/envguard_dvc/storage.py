"""The objects of a DVC remote, and how their origin tags are written.

- **S3** remotes: object tags ``envguard.env`` and ``envguard.origin`` (``PutObjectTagging``),
  written in parallel by a thread pool through botocore (already installed with dvc-s3); during
  ``dvc push`` the guard also has S3 set them on upload (:mod:`envguard_dvc.guard`). An
  object's tag set is replaced: DVC's objects are content-addressed and owned by DVC, and a
  read-merge-write would double the requests of every push.
- **local** remotes (a folder): a manifest ``envguard-manifest.json`` at the remote's root, with
  the same two values per object, replaced atomically.

Each object is tried up to :data:`ATTEMPTS` times. An object that has vanished since it was listed
is reported as *missing*; one that could not be tagged is reported with the error. Nothing is
dropped silently: :mod:`envguard_dvc.tagging` records both.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import InputError

if TYPE_CHECKING:
    from envguard_dvc.remotes import RemoteInfo

__all__ = [
    "ATTEMPTS",
    "ENV_TAG",
    "MANIFEST",
    "ORIGIN_TAG",
    "LocalStorage",
    "RemoteObject",
    "S3Storage",
    "TagResult",
    "storage_for",
]

ENV_TAG = "envguard.env"
ORIGIN_TAG = "envguard.origin"
MANIFEST = "envguard-manifest.json"
ATTEMPTS = 3
JOBS = 32


@dataclass(frozen=True)
class RemoteObject:
    key: str  # the S3 key, or the path under a local remote's root
    md5: str
    hash_name: str


@dataclass
class TagResult:
    tagged: list[RemoteObject] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> error
    missing: list[str] = field(default_factory=list)  # keys gone since they were listed


def parse_key(relative: str) -> tuple[str, str] | None:
    """(md5, hash name) of an object path under a remote's root; None for other files."""
    parts = relative.split("/")
    if len(parts) == 4 and parts[:2] == ["files", "md5"] and len(parts[2]) == 2:
        return parts[2] + parts[3], "md5"
    if len(parts) == 2 and len(parts[0]) == 2 and parts[0] != "fi":
        return parts[0] + parts[1], "md5-dos2unix"  # DVC 2's layout
    return None


def _retrying(attempt: Callable[[], None], retryable: Callable[[Exception], bool]) -> None:
    for n in range(ATTEMPTS):
        try:
            attempt()
            return
        except Exception as exc:
            if n == ATTEMPTS - 1 or not retryable(exc):
                raise
            time.sleep(0.1 * 2**n)


class S3Storage:
    """A DVC remote in an S3 bucket (or an S3-compatible server, ``endpointurl``)."""

    def __init__(self, remote: RemoteInfo) -> None:
        self.remote = remote
        self.bucket = remote.bucket
        self.prefix = remote.prefix
        self._client: Any = None

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def client(self) -> Any:
        if self._client is None:
            self._client = _client(
                tuple(
                    (k, str(self.remote.settings.get(k)))
                    for k in _CLIENT_SETTINGS
                    if self.remote.settings.get(k) is not None
                )
            )
        return self._client

    def _error(self, exc: Exception, doing: str) -> InputError:
        code = _code(exc)
        if code == "NoSuchBucket":
            return InputError(
                self.where,
                f"bucket {self.bucket!r} does not exist; create it, or correct the remote's URL "
                f"(dvc remote modify {self.remote.name} url s3://BUCKET/PREFIX)",
            )
        if code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            return InputError(
                self.where, f"{doing} refused ({code}); check the remote's credentials"
            )
        return InputError(self.where, f"{doing} failed: {exc}")

    def objects(self) -> list[RemoteObject]:
        from botocore.exceptions import BotoCoreError, ClientError

        start = f"{self.prefix}/" if self.prefix else ""
        found: list[RemoteObject] = []
        try:
            pages = (
                self.client()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=self.bucket, Prefix=start)
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    parsed = parse_key(item["Key"][len(start) :])
                    if parsed:
                        found.append(RemoteObject(item["Key"], *parsed))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, "listing the remote") from None
        return found

    def apply(self, wanted: list[tuple[RemoteObject, dict[str, str]]]) -> TagResult:
        result = TagResult()
        if not wanted:
            return result
        client = self.client()

        def tag(item: tuple[RemoteObject, dict[str, str]]) -> tuple[RemoteObject, str | None]:
            obj, tags = item
            tag_set = {"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]}
            try:
                _retrying(
                    lambda: client.put_object_tagging(
                        Bucket=self.bucket, Key=obj.key, Tagging=tag_set
                    ),
                    lambda exc: _code(exc) not in _FINAL,
                )
            except Exception as exc:  # noqa: BLE001 - every failure is reported per object
                return obj, _describe(exc)
            return obj, None

        with ThreadPoolExecutor(max_workers=min(JOBS, len(wanted))) as pool:
            for obj, error in pool.map(tag, wanted):
                if error is None:
                    result.tagged.append(obj)
                elif error.startswith("NoSuchKey"):
                    result.missing.append(obj.key)
                else:
                    result.failed[obj.key] = error
        return result

    def read_tags(self, key: str) -> dict[str, str]:
        response = self.client().get_object_tagging(Bucket=self.bucket, Key=key)
        return {t["Key"]: t["Value"] for t in response.get("TagSet", ())}


_FINAL = {"NoSuchKey", "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId"}
_CLIENT_SETTINGS = (
    "profile",
    "region",
    "endpointurl",
    "use_ssl",
    "ssl_verify",
    "access_key_id",
    "secret_access_key",
    "session_token",
)
_clients: dict[tuple[tuple[str, str], ...], Any] = {}
_clients_lock = threading.Lock()


def _client(settings: tuple[tuple[str, str], ...]) -> Any:
    """One botocore client per remote configuration and process (creating one loads the S3
    model, which takes longer than listing a thousand objects); botocore clients are
    thread-safe."""
    with _clients_lock:
        if settings not in _clients:
            import botocore.session
            from botocore.config import Config

            s = dict(settings)
            session = botocore.session.Session(profile=s.get("profile"))
            _clients[settings] = session.create_client(
                "s3",
                region_name=s.get("region") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
                endpoint_url=s.get("endpointurl"),
                use_ssl=s.get("use_ssl", "True") != "False",
                verify=None if "ssl_verify" not in s else s["ssl_verify"] != "False",
                aws_access_key_id=s.get("access_key_id"),
                aws_secret_access_key=s.get("secret_access_key"),
                aws_session_token=s.get("session_token"),
                config=Config(max_pool_connections=JOBS, retries={"max_attempts": 3}),
            )
        return _clients[settings]


def object_key(prefix: str, md5: str, hash_name: str) -> str:
    """Where DVC stores content ``md5`` under a remote's root (DVC 3, or DVC 2's layout)."""
    head = f"{prefix}/" if prefix else ""
    if hash_name == "md5":
        return f"{head}files/md5/{md5[:2]}/{md5[2:]}"
    return f"{head}{md5[:2]}/{md5[2:]}"


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _describe(exc: Exception) -> str:
    code = _code(exc)
    return f"{code}: {exc}" if code else f"{type(exc).__name__}: {exc}"


class LocalStorage:
    """A DVC remote in a folder; its tags live in ``envguard-manifest.json`` at its root."""

    def __init__(self, remote: RemoteInfo, root: Path) -> None:
        self.remote = remote
        self.root = root
        self.where = str(root)

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    def objects(self) -> list[RemoteObject]:
        if not self.root.is_dir():
            raise InputError(
                self.where, "the remote's folder does not exist; create it or fix its URL"
            )
        found = []
        for path in _walk(self.root):
            rel = path.relative_to(self.root).as_posix()
            parsed = parse_key(rel)
            if parsed:
                found.append(RemoteObject(rel, *parsed))
        return found

    def read_manifest(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.manifest.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise InputError(
                str(self.manifest),
                f"unreadable manifest ({exc}); delete it, then run "
                f"`envguard dvc tag {self.remote.name}`",
            ) from None
        objects = data.get("objects", {}) if isinstance(data, dict) else {}
        return {k: dict(v) for k, v in objects.items() if isinstance(v, dict)}

    def apply(self, wanted: list[tuple[RemoteObject, dict[str, str]]]) -> TagResult:
        result = TagResult()
        if not wanted:
            return result
        objects = self.read_manifest()
        present = []
        for obj, tags in wanted:
            if (self.root / obj.key).is_file():
                objects[obj.key] = tags
                present.append(obj)
            else:
                result.missing.append(obj.key)
        body = {
            "version": 1,
            "remote": self.remote.name,
            "env": self.remote.env,
            "objects": objects,
        }
        tmp = self.manifest.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
            os.replace(tmp, self.manifest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            result.failed.update({obj.key: f"{type(exc).__name__}: {exc}" for obj in present})
            return result
        result.tagged.extend(present)
        return result

    def read_tags(self, key: str) -> dict[str, str]:
        return self.read_manifest().get(key, {})


def _walk(root: Path) -> Iterator[Path]:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            yield Path(folder) / name


def storage_for(remote: RemoteInfo, dvc_dir: Path) -> S3Storage | LocalStorage:
    """The storage of a remote envguard can tag, or an :class:`InputError` saying it cannot."""
    if remote.kind == "s3":
        return S3Storage(remote)
    if remote.kind == "local" or remote.url.startswith("file://"):
        url = remote.url.removeprefix("file://")
        root = Path(url) if Path(url).is_absolute() else (dvc_dir / url).resolve()
        return LocalStorage(remote, root)
    raise InputError(
        remote.url,
        f"envguard tags S3 and local remotes; remote {remote.name!r} is {remote.kind!r}. "
        f"Its objects are inventoried only when they are listed some other way",
    )
