"""``envguard dvc sync``: record what the repository's ``.dvc`` files and ``dvc.lock`` say.

Three kinds of event, each recorded once (a second sync of an unchanged repository records
nothing):

- ``dvc.digest``: DVC's md5 of a content and its sha256, linked both ways (``same-content``),
  read from the object in the local cache once; and the files of a tracked directory, each
  ``part-of`` the directory;
- ``derivation``: one per run of a stage (entity ``dvc-stage:REPO:NAME``), with an edge from each
  dependency to each output (and to each file of an output directory); the relation is
  ``masked`` when the output has a masking proof beside it that binds to its content, else
  ``derived``. The core's origin walk (:mod:`envguard.lineage.origin`) then carries production
  lineage through any number of stages, and stops at a masking step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.lineage import Link, dataset_entity
from envguard_dvc.entities import content_entity, stage_entity
from envguard_dvc.pipeline import Collected, Output

if TYPE_CHECKING:
    from dvc.repo import Repo

    from envguard.lineage.events import EventDraft
    from envguard.runtime import Runtime

__all__ = ["DIGEST_KIND", "SyncReport", "sync_lineage"]

DIGEST_KIND = "dvc.digest"


@dataclass
class SyncReport:
    digests: int = 0  # contents newly linked md5 <-> sha256
    directories: int = 0
    stages: int = 0  # stage runs newly recorded
    unchanged_stages: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "digests": self.digests,
            "directories": self.directories,
            "stages": self.stages,
            "unchanged_stages": self.unchanged_stages,
            "problems": self.problems,
        }


def _contents(collected: Collected) -> dict[str, tuple[str, Path, str]]:
    """Content entity -> (md5, cached object, a path that holds it), for contents in the cache."""
    found: dict[str, tuple[str, Path, str]] = {}
    for out in collected.outputs:
        if out.cache_path is not None and not out.files and not out.md5.endswith(".dir"):
            found.setdefault(out.entity, (out.md5, out.cache_path, out.path))
        for rel, md5, cached in out.files:
            if cached is not None:
                entity = content_entity(md5, out.hash_name)
                found.setdefault(entity, (md5, cached, f"{out.path}/{rel}"))
    return found


def sync_lineage(runtime: Runtime, repo: Repo, collected: Collected) -> SyncReport:
    """Record the digests, directories and stage runs not yet in the lineage store."""
    from envguard.digests import sha256_file as file_sha256

    store = runtime.store
    report = SyncReport(problems=list(collected.problems))
    drafts: list[EventDraft] = []
    contents = _contents(collected)
    linked = {s for s, _d, r in store.edges_out_of(list(contents)) if r == "same-content"}
    for entity, (md5, cached, path) in contents.items():
        if entity in linked:
            continue
        sha = dataset_entity(file_sha256(cached))
        drafts.append(
            runtime.draft(
                DIGEST_KIND,
                entities=[entity, sha],
                links=[Link(entity, sha, "same-content"), Link(sha, entity, "same-content")],
                payload={
                    "md5": md5,
                    "sha256": sha[7:],
                    "path": path,
                    "bytes": cached.stat().st_size,
                },
            )
        )
        report.digests += 1
    directories = [o for o in collected.outputs if o.files]
    done = {d for _s, d, r in store.edges_into([o.entity for o in directories]) if r == "part-of"}
    for out in directories:
        if out.entity in done:
            continue
        done.add(out.entity)
        links = [
            Link(content_entity(md5, out.hash_name), out.entity, "part-of")
            for _r, md5, _c in out.files
        ]
        drafts.append(
            runtime.draft(
                DIGEST_KIND,
                entities=[out.entity],
                links=links,
                payload={"md5": out.md5, "path": out.path, "files": len(out.files)},
            )
        )
        report.directories += 1
    repo_id = str(Path(repo.root_dir).resolve())
    for stage in collected.stages:
        entity = stage_entity(repo_id, stage.name)
        key = stage.key()
        recorded = {e.payload.get("key") for e in store.events(kind="derivation", entity=entity)}
        if key in recorded:
            report.unchanged_stages += 1
            continue
        drafts.append(
            _derivation(
                runtime,
                entity,
                stage.name,
                stage.cmd,
                stage.deps,
                stage.outs,
                stage.proofs,
                stage.envelopes,
                key,
                repo_id,
            )
        )
        report.stages += 1
    if drafts:
        store.append_many(drafts, required=True)
    return report


def _derivation(
    runtime: Runtime,
    entity: str,
    name: str,
    cmd: str,
    deps: tuple[tuple[str, str], ...],
    outs: tuple[Output, ...],
    proofs: dict[str, str],
    envelopes: dict[str, dict[str, Any]],
    key: str,
    repo_id: str,
) -> EventDraft:
    links: list[Link] = []
    for _path, dep in deps:
        for out in outs:
            relation = "masked" if out.path in proofs else "derived"
            targets = [out.entity, *(content_entity(m, out.hash_name) for _r, m, _c in out.files)]
            links.extend(Link(dep, t, relation) for t in targets if t != dep)
    return runtime.draft(
        "derivation",
        entities=[entity, *sorted(set(proofs.values()))],
        links=list(dict.fromkeys(links)),
        payload={
            "step": "dvc-stage",
            "stage": name,
            "repo": repo_id,
            "cmd": cmd,
            "deps": {path: dep for path, dep in deps},
            "outs": {o.path: o.entity for o in outs},
            "proofs": proofs,
            "envelopes": envelopes,  # re-verified by the data-use gate
            "key": key,
        },
    )
