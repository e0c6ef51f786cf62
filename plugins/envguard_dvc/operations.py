"""What the ``envguard dvc`` commands and the guard's post-push step do, on an open DVC repo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import InputError
from envguard_dvc.pipeline import Output, collect
from envguard_dvc.remotes import RemoteInfo, default_remote, remote_info, remotes_of
from envguard_dvc.state import write_pointer
from envguard_dvc.storage import RemoteObject, object_key
from envguard_dvc.sync import SyncReport, sync_lineage
from envguard_dvc.tagging import SweepReport, remote_entity, sweep, tag_state

if TYPE_CHECKING:
    from dvc.repo import Repo

    from envguard.runtime import Runtime
    from envguard_dvc.upload_tags import UploadTagger

__all__ = ["remote_status", "sync_repo", "tag_remotes"]


def sync_repo(runtime: Runtime, repo: Repo) -> tuple[SyncReport, list[Output]]:
    """Record the repository's digests and stage runs (``envguard dvc sync``); also returns the
    workspace's outputs."""
    collected = collect(repo)
    report = sync_lineage(runtime, repo, collected)
    write_pointer(Path(repo.root_dir), repo.site_cache_dir)
    return report, collected.outputs


def _remote(runtime: Runtime, repo: Repo, name: str) -> RemoteInfo:
    configured = repo.config.get("remote", {})
    if name not in configured:
        known = ", ".join(sorted(configured)) or "none"
        raise InputError(
            f"remote {name!r}", f"not a DVC remote of this repository (known: {known})"
        )
    return remote_info(name, dict(configured[name]), runtime.policy)


def tag_remotes(
    runtime: Runtime,
    repo: Repo,
    names: list[str],
    *,
    retag: bool = False,
    uploaded: UploadTagger | None = None,
    expected: list[Output] | None = None,
) -> list[SweepReport]:
    """Inventory and tag the named remotes (``envguard dvc tag``). ``uploaded``: after a push,
    what S3 confirmed it stored with the upload's tags (:mod:`envguard_dvc.upload_tags`)."""
    dvc_dir = Path(repo.dvc_dir)
    reports = []
    for name in names:
        remote = _remote(runtime, repo, name)
        objects = None
        if expected is not None and remote.kind == "s3":
            objects = _objects_of(expected, remote.prefix)
        reports.append(
            sweep(runtime, remote, dvc_dir, retag=retag, uploaded=uploaded, expected=objects)
        )
    return reports


def _objects_of(outputs: list[Output], prefix: str) -> list[RemoteObject]:
    """The remote objects holding ``outputs`` (files, directory listings and their files)."""
    found: dict[str, RemoteObject] = {}
    for out in outputs:
        pairs = [(out.md5, out.hash_name), *((m, out.hash_name) for _r, m, _c in out.files)]
        for md5, hash_name in pairs:
            key = object_key(prefix, md5, hash_name)
            found.setdefault(key, RemoteObject(key, md5, hash_name))
    return list(found.values())


def taggable(runtime: Runtime, repo: Repo) -> list[str]:
    """The remotes a bare ``envguard dvc tag`` sweeps: every remote of the repository."""
    names = [r.name for r in remotes_of(repo, runtime.policy)]
    if not names:
        raise InputError(repo.root_dir, "the repository has no DVC remote (dvc remote add ...)")
    return names


def remote_status(runtime: Runtime, repo: Repo) -> list[dict[str, Any]]:
    """Each remote: URL, environment, inventory and tags, as the lineage store records them."""
    store = runtime.store
    default = default_remote(repo)
    collected = collect(repo)
    rows = []
    for remote in remotes_of(repo, runtime.policy):
        inventoried = {
            e.payload.get("md5")
            for e in store.events(kind="object.stored", entity=remote_entity(remote.name))
        }
        state = tag_state(store, remote.name)
        tagged = {m for m in state.tagged if m in inventoried}
        used = {o.md5 for o in collected.outputs if (o.remote or default) == remote.name}
        rows.append(
            {
                "remote": remote.name,
                "url": remote.url,
                "default": remote.name == default,
                "env": remote.env,
                "tier": runtime.policy.tier(remote.env) if remote.env else None,
                "problem": None if remote.env else remote.unknown_message(runtime.policy),
                "inventoried": len(inventoried),
                "tagged": len(tagged),
                "untagged": len(inventoried - tagged - set(state.failed)),
                "failed": dict(sorted(state.failed.items())),
                "workspace_outputs": len(used),
                "workspace_not_inventoried": sorted(used - inventoried),
            }
        )
    return rows
