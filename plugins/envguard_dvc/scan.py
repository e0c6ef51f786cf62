"""The DVC plugin's part of ``envguard audit scan``: every object of every DVC remote the policy
names (``dvc_remotes``), with the origin tags ``envguard dvc tag`` gave it.

A remote listed by URL or path is swept as it is; one listed by name is looked up in the DVC
repository of the working directory (a name no repository configures there is
``scan-unreachable``). Local remotes are read with their ``envguard-manifest.json``; S3 remotes
with their object tags, unless an ``s3`` entry of the policy already covers them (the S3 plugin
reads those tags). Findings: ``object-untagged`` (no ``envguard.env`` tag or manifest entry) and
``object-prod-in-non-prod`` (in a non-production remote, but its tags, its inventory record
``object.stored`` or its content's lineage say production). The content's lineage is found
through DVC's md5: ``envguard dvc sync`` links each md5 to the sha256 of the same content
(``same-content``), so an object whose md5 names production data (a registered sha256, or one
derived from it) is found whether or not it was ever inventoried. A covered S3 remote is still
listed (no tags read) for that: the S3 plugin knows its objects only by key.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import InputError
from envguard.scan import Finding, ScanProgress, unreachable
from envguard.scan.lineage_checks import prod_lineage
from envguard.uris import parse_location
from envguard_dvc.entities import content_entity, object_entity
from envguard_dvc.remotes import RemoteInfo
from envguard_dvc.storage import (
    ENV_TAG,
    ORIGIN_TAG,
    LocalStorage,
    RemoteObject,
    S3Storage,
    storage_for,
)

if TYPE_CHECKING:
    from envguard.policy import Policy

__all__ = ["sweep"]

JOBS = 16


def _is_location(item: str) -> bool:
    return "://" in item or item.startswith(("/", "./", "../"))


def _remotes(policy: Policy) -> tuple[list[RemoteInfo], list[Finding], Path]:
    """The remotes to sweep, findings for names that cannot be resolved, and the folder that
    relative remote paths are relative to."""
    entries = [
        (env, item) for env, spec in policy.spec.environments.items() for item in spec.dvc_remotes
    ]
    configured: dict[str, RemoteInfo] = {}
    base = policy.base_dir
    where = "no DVC repository here"
    if any(not _is_location(item) for _env, item in entries):
        try:
            from envguard_dvc.remotes import open_repo, remotes_of

            repo = open_repo()
            configured = {r.name: r for r in remotes_of(repo, policy)}
            base = Path(repo.dvc_dir)
            where = f"the DVC repository {repo.root_dir}"
        except InputError as exc:
            where = str(exc)
    remotes: list[RemoteInfo] = []
    findings: list[Finding] = []
    for env, item in entries:
        if _is_location(item):
            url = item if "://" in item else str(policy.resolve_path(item))
            remotes.append(RemoteInfo(item, url, env))
        elif item in configured:
            remotes.append(configured[item])
        else:
            findings.append(
                unreachable(
                    f"dvc-remote:{item}",
                    f"the policy names DVC remote {item!r} (environment {env!r}), but it is not "
                    f"configured in the working directory ({where}): its objects are unchecked",
                    "run the scan inside the DVC repository that configures the remote, or list "
                    "the remote by URL in the policy (environments.ENV.dvc_remotes)",
                    environment=env,
                )
            )
    return remotes, findings, base


def _covered_by_s3(policy: Policy, remote: RemoteInfo) -> bool:
    loc = parse_location(remote.url)
    for spec in policy.spec.environments.values():
        for raw in (*spec.s3, *spec.artifact_locations):
            claim = parse_location(raw)
            if claim.scheme == "s3" and claim.contains(loc):
                return True
    return False


def _tags(storage: S3Storage | LocalStorage, keys: list[str]) -> list[dict[str, str]]:
    if isinstance(storage, LocalStorage):
        manifest = storage.read_manifest()
        return [manifest.get(key, {}) for key in keys]
    if not keys:
        return []
    with ThreadPoolExecutor(max_workers=min(JOBS, len(keys))) as pool:
        return list(pool.map(storage.read_tags, keys))


def sweep(policy: Policy, store: Any, progress: ScanProgress) -> list[Finding]:
    from envguard.lineage.origin import origins_of

    remotes, findings, base = _remotes(policy)
    for remote in remotes:
        if remote.env is None:
            continue
        covered = remote.kind == "s3" and _covered_by_s3(policy, remote)
        try:
            storage = storage_for(remote, base)
            objects = storage.objects()
            tags = [{} for _ in objects] if covered else _tags(storage, [o.key for o in objects])
        except InputError as exc:
            findings.append(
                unreachable(
                    f"dvc-remote:{remote.name}",
                    f"DVC remote {remote.name!r} ({remote.url}) could not be read: {exc}",
                    "make the remote readable (path, bucket, credentials), then scan again",
                    environment=remote.env,
                )
            )
            continue
        progress(f"objects in DVC remote {remote.name}", len(objects), len(objects))
        entities = [object_entity(remote.name, o.md5) for o in objects]
        contents = [content_entity(o.md5, o.hash_name) for o in objects]
        inventoried = origins_of(store, entities)
        lineage = prod_lineage(policy, store, contents)
        prod_remote = remote.env in policy.spec.environments and policy.is_prod(remote.env)
        for obj, entity, content, found in zip(objects, entities, contents, tags, strict=True):
            if ENV_TAG not in found and not covered:
                findings.append(
                    Finding(
                        "object-untagged",
                        entity,
                        f"{obj.key} in DVC remote {remote.name!r} has no {ENV_TAG} tag: its "
                        f"origin is not recorded on the object",
                        f"envguard dvc tag {remote.name} (inside the repository that uses it)",
                        {"remote": remote.name, "url": remote.url, "key": obj.key, "tags": found},
                        environment=remote.env,
                    )
                )
            if prod_remote:
                continue
            origin, why = _origin(policy, found, inventoried.get(entity), lineage.get(content))
            if origin is not None:
                findings.append(
                    _prod_object(remote, obj, entity, content, found, origin, why, covered)
                )
    return findings


def _prod_object(
    remote: RemoteInfo,
    obj: RemoteObject,
    entity: str,
    content: str,
    tags: dict[str, str],
    origin: str,
    why: str,
    covered: bool,
) -> Finding:
    """``object-prod-in-non-prod`` for a DVC object. In an S3 remote that an ``s3`` entry
    covers, the finding is about ``s3://BUCKET/KEY``, the entity the S3 plugin's sweep of the
    same object uses: when both find it (its tags, and its content's lineage), it is one
    finding."""
    subject = f"s3://{remote.bucket}/{obj.key}" if covered else entity
    return Finding(
        "object-prod-in-non-prod",
        subject,
        f"{obj.key} in DVC remote {remote.name!r} ({remote.env!r}, non-production) comes from "
        f"production environment {origin!r} ({why})",
        f"remove it from the remote (dvc gc -c -r {remote.name} after dropping it from the "
        f"pipeline) and use a masked copy instead (envguard mask)",
        {
            "remote": remote.name,
            "key": obj.key,
            "tags": tags,
            "origin": origin,
            "by": why,
            "object": entity,
            "content": content,
        },
        environment=remote.env,
    )


def _origin(
    policy: Policy, tags: dict[str, str], inventoried: str | None, lineage: str | None
) -> tuple[str | None, str]:
    def prod(env: str | None) -> bool:
        return env is not None and env in policy.spec.environments and policy.is_prod(env)

    for key in (ORIGIN_TAG, ENV_TAG):
        if prod(tags.get(key)):
            return tags[key], f"tag {key}={tags[key]}"
    if prod(inventoried):
        return inventoried, "its inventory record in the log"
    if lineage is not None:
        return lineage, "its content's lineage in the log"
    return None, ""
