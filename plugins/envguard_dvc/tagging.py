"""``envguard dvc tag``: inventory a remote's objects and tag each with its origin.

A sweep lists the remote, records every object not yet inventoried (``object.stored``, with the
origin of its content: the production environment found upstream in the lineage, else the
content's own recorded origin, else the remote's environment), then tags every object whose
recorded tags differ from what they should be. The outcome is recorded as a ``dvc.tagged`` event
(tagged, failed with the error, missing): ``envguard dvc status`` reads it back, and the next
sweep retries what failed. A sweep is idempotent: a second one lists, finds nothing to do, and
records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import InputError
from envguard_dvc.entities import content_entity, object_entity
from envguard_dvc.storage import (
    ENV_TAG,
    ORIGIN_TAG,
    LocalStorage,
    RemoteObject,
    S3Storage,
    storage_for,
)

if TYPE_CHECKING:
    from envguard.lineage.sql import SqlLineageStore
    from envguard.runtime import Runtime
    from envguard_dvc.remotes import RemoteInfo
    from envguard_dvc.upload_tags import UploadTagger

__all__ = ["TAGGED_KIND", "SweepReport", "TagState", "remote_entity", "sweep", "tag_state"]

TAGGED_KIND = "dvc.tagged"


def remote_entity(name: str) -> str:
    return f"dvc-remote:{name}"


@dataclass
class TagState:
    """What the lineage store says of a remote's tags: md5 -> (env, origin) tagged, and the
    objects whose tagging failed (md5 -> error)."""

    tagged: dict[str, tuple[str, str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def tag_state(store: SqlLineageStore, remote: str) -> TagState:
    state = TagState()
    for event in store.events(kind=TAGGED_KIND, entity=remote_entity(remote)):
        payload = event.payload
        for md5, (env, origin) in payload.get("tagged", {}).items():
            state.tagged[md5] = (env, origin)
            state.failed.pop(md5, None)
        for md5, error in payload.get("failed", {}).items():
            state.failed[md5] = error
            state.tagged.pop(md5, None)
        for md5 in payload.get("missing", []):
            state.tagged.pop(md5, None)
            state.failed.pop(md5, None)
    return state


@dataclass
class SweepReport:
    remote: str
    env: str
    where: str
    listed: int = 0
    inventoried: int = 0  # newly recorded
    tagged: int = 0  # tagged by this sweep or, after a push, on upload
    on_upload: int = 0  # of which S3 tagged on upload (no request of the sweep)
    unchanged: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # key -> error
    missing: list[str] = field(default_factory=list)
    recorded: bool = True  # False when the outcome could only be spooled

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "env": self.env,
            "where": self.where,
            "listed": self.listed,
            "inventoried": self.inventoried,
            "tagged": self.tagged,
            "on_upload": self.on_upload,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "missing": self.missing,
            "recorded": self.recorded,
        }


def sweep(
    runtime: Runtime,
    remote: RemoteInfo,
    dvc_dir: Path,
    *,
    retag: bool = False,
    uploaded: UploadTagger | None = None,
    expected: list[RemoteObject] | None = None,
) -> SweepReport:
    """Inventory and tag every object of ``remote``; see the module's docstring.

    ``uploaded`` (after ``dvc push``): the keys S3 confirmed it stored with the tags of the upload
    request (:mod:`envguard_dvc.upload_tags`). Those objects need no request when these tags are
    the right ones; every other object is tagged as usual. ``expected``: the
    objects a successful push guarantees are on the remote, used instead of listing it again."""
    from envguard.lineage.origin import lineage_origins, origins_of

    policy = runtime.policy
    if remote.env is None:
        raise InputError(f"remote {remote.name!r} ({remote.url})", remote.unknown_message(policy))
    storage: S3Storage | LocalStorage = storage_for(remote, dvc_dir)
    report = SweepReport(remote.name, remote.env, storage.where)
    objects = storage.objects() if expected is None else expected
    report.listed = len(objects)
    store = runtime.store
    contents = [content_entity(o.md5, o.hash_name) for o in objects]
    origin_of = lineage_origins(store, policy, sorted(set(contents)))
    known = origins_of(store, [object_entity(remote.name, o.md5) for o in objects])
    drafts = []
    wanted: list[tuple[RemoteObject, dict[str, str]]] = []
    state = tag_state(store, remote.name)
    for obj, content in zip(objects, contents, strict=True):
        origin = origin_of.get(content) or remote.env
        entity = object_entity(remote.name, obj.md5)
        if entity not in known:
            drafts.append(
                runtime.draft(
                    "object.stored",
                    entities=[entity, content, remote_entity(remote.name)],
                    payload={
                        "origin": origin,
                        "remote": remote.name,
                        "env": remote.env,
                        "url": remote.url,
                        "key": obj.key,
                        "md5": obj.md5,
                    },
                )
            )
        if retag or state.tagged.get(obj.md5) != (remote.env, origin):
            wanted.append((obj, {ENV_TAG: remote.env, ORIGIN_TAG: origin}))
        else:
            report.unchanged += 1
    report.inventoried = len(drafts)
    if drafts:
        store.append_many(drafts, required=False)
    pretagged: list[RemoteObject] = []
    if uploaded is not None and not retag:
        keys, upload_tags = uploaded.uploaded, uploaded.tags
        pretagged = [o for o, t in wanted if o.key in keys and t == upload_tags]
        done = {o.key for o in pretagged}
        wanted_now = [(o, t) for o, t in wanted if o.key not in done]
    else:
        wanted_now = wanted
    result = storage.apply(wanted_now)
    result.tagged.extend(pretagged)
    report.tagged = len(result.tagged)
    report.on_upload = len(pretagged)
    report.failed = result.failed
    report.missing = result.missing
    if result.tagged or result.failed or result.missing:
        by_key = {obj.key: obj for obj, _tags in wanted}
        tags = {obj.key: t for obj, t in wanted}
        event = runtime.draft(
            TAGGED_KIND,
            entities=[remote_entity(remote.name)],
            payload={
                "remote": remote.name,
                "env": remote.env,
                "where": storage.where,
                "tagged": {
                    o.md5: [tags[o.key][ENV_TAG], tags[o.key][ORIGIN_TAG]] for o in result.tagged
                },
                "failed": {by_key[k].md5: err for k, err in result.failed.items()},
                "missing": [by_key[k].md5 for k in result.missing],
            },
        )
        report.recorded = store.append(event, required=False) is not None
    return report
