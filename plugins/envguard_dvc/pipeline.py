"""What a repository's ``.dvc`` files and ``dvc.lock`` say: every output by digest, and every
stage's dependencies and outputs.

Read through DVC's own index (``Repo.index.stages``), so that whatever DVC accepts is read the way
DVC reads it. Problems that concern one file (a ``.dvc`` file with no hash, an output not in the
cache) are collected and reported together; a file DVC cannot parse (a corrupted ``dvc.lock``)
stops the collection with an :class:`~envguard.errors.InputError` naming it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import InputError
from envguard_dvc.entities import content_entity

if TYPE_CHECKING:
    from dvc.output import Output as DvcOutput
    from dvc.repo import Repo

__all__ = ["PROOF_SUFFIX", "Collected", "Output", "Stage", "collect"]

PROOF_SUFFIX = ".envguard-proof.json"


@dataclass(frozen=True)
class Output:
    """A tracked output: its path, DVC's digest, the cached object, the files of a directory."""

    path: str  # relative to the repository's root
    md5: str  # HEX, or HEX.dir for a directory
    hash_name: str  # "md5" (DVC 3) or "md5-dos2unix" (DVC 2)
    cache_path: Path | None  # the object in the local cache, when it is there
    files: tuple[tuple[str, str, Path | None], ...] = ()  # (relative path, md5, cached object)
    remote: str | None = None  # the output's own remote (``remote:`` in its .dvc/dvc.yaml)

    @property
    def entity(self) -> str:
        return content_entity(self.md5, self.hash_name)


@dataclass(frozen=True)
class Stage:
    """A pipeline stage that ran (it has a ``dvc.lock`` entry), or an import."""

    name: str  # DVC's address: "train", "sub/dvc.yaml:train", "data.dvc"
    cmd: str
    deps: tuple[tuple[str, str], ...]  # (path, content entity)
    outs: tuple[Output, ...]
    proofs: dict[str, str] = field(default_factory=dict)  # output path -> proof entity
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)  # proof entity -> DSSE

    def key(self) -> str:
        """What makes a run of this stage distinct (recorded, so that reruns are idempotent)."""
        return json.dumps(
            [self.name, sorted(self.deps), sorted(o.entity for o in self.outs), self.proofs],
            sort_keys=True,
        )


@dataclass
class Collected:
    outputs: list[Output] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def collect(repo: Repo) -> Collected:
    """Every output and every stage of the repository's workspace."""
    from dvc.exceptions import DvcException

    found = Collected()
    try:
        stages = list(repo.index.stages)
    except DvcException as exc:
        raise InputError(
            _culprit(exc), f"DVC cannot read it ({exc}); fix or restore the file (git checkout)"
        ) from None
    for stage in stages:
        outs = []
        for out in stage.outs:
            output = _output(repo, out, stage.relpath, found.problems)
            if output is not None:
                outs.append(output)
                found.outputs.append(output)
        deps = []
        for dep in stage.deps:
            value = getattr(dep.hash_info, "value", None)
            if value:
                deps.append((str(dep.def_path), content_entity(value, dep.hash_info.name)))
        if deps and outs:
            checked = {o.path: p for o in outs if (p := _proof(repo, o, found.problems))}
            proofs = {path: entity for path, (entity, _envelope) in checked.items()}
            envelopes = {entity: envelope for entity, envelope in checked.values()}
            cmd = stage.cmd if isinstance(stage.cmd, str) else json.dumps(stage.cmd)
            found.stages.append(
                Stage(stage.addressing, cmd or "", tuple(deps), tuple(outs), proofs, envelopes)
            )
    return found


def _culprit(exc: Exception) -> str:
    path = getattr(exc, "path", None)
    return str(path) if path else "dvc.lock / dvc.yaml / .dvc files"


def _output(repo: Repo, out: DvcOutput, stage_file: str, problems: list[str]) -> Output | None:
    value = out.hash_info.value if out.hash_info else None
    rel = str(Path(out.fs_path).relative_to(repo.root_dir)) if out.is_in_repo else out.def_path
    if not value:
        problems.append(
            f"{stage_file}: output {out.def_path!r} has no hash; run `dvc commit {stage_file}` "
            f"(or `dvc add {out.def_path}`) so that DVC records it"
        )
        return None
    if not out.use_cache:
        return None  # `cache: false` outputs (metrics, plots) are never stored in a remote
    cache_path = _cached(out, value)
    files: list[tuple[str, str, Path | None]] = []
    if out.hash_info.isdir:
        files = _dir_entries(out, problems, stage_file)
    return Output(rel, value, out.hash_info.name or "md5", cache_path, tuple(files), out.remote)


def _cached(out: DvcOutput, value: str) -> Path | None:
    if out.cache is None:
        return None
    path = Path(out.cache.oid_to_path(value))
    return path if path.is_file() else None


def _dir_entries(
    out: DvcOutput, problems: list[str], stage_file: str
) -> list[tuple[str, str, Path | None]]:
    from dvc_data.hashfile.tree import Tree

    try:
        tree = Tree.load(out.cache, out.hash_info)
    except (FileNotFoundError, ValueError, OSError) as exc:
        problems.append(
            f"{stage_file}: the listing of directory {out.def_path!r} is not in the local "
            f"cache ({type(exc).__name__}); run `dvc fetch {stage_file}` to record its files"
        )
        return []
    entries = []
    for key, _meta, hash_info in tree:
        md5 = hash_info.value if hash_info else None
        if md5:
            cached = Path(out.cache.oid_to_path(md5))
            entries.append(("/".join(key), md5, cached if cached.is_file() else None))
    return entries


def _proof(repo: Repo, output: Output, problems: list[str]) -> tuple[str, dict[str, Any]] | None:
    """The masking proof next to ``output`` (OUTPUT.envguard-proof.json), verified in full
    against the cached output (signature by a key the policy trusts, subject digest,
    validation, policy): its entity ``proof:ID`` and its envelope, else None and a problem."""
    from envguard.errors import EnvGuardError
    from envguard.proofs import read_proof, verify_proof
    from envguard.runtime import current

    path = Path(repo.root_dir) / (output.path + PROOF_SUFFIX)
    if not path.is_file():
        return None
    if output.cache_path is None:
        problems.append(f"{path}: cannot check the proof, {output.path} is not in the cache")
        return None
    try:
        checked = verify_proof(current().policy, path, output.cache_path)
        proof = read_proof(path)
    except EnvGuardError as exc:
        problems.append(f"{path}: {exc}; the stage is not recorded as a masking step")
        return None
    if checked.reasons:
        why = "; ".join(r.message for r in checked.reasons)
        problems.append(
            f"{path}: the proof does not verify ({why}); the stage is not recorded "
            f"as a masking step"
        )
        return None
    return f"proof:{proof.proof_id}", dict(proof.envelope)


def _statement(envelope: Any) -> dict[str, Any]:
    if not isinstance(envelope, dict):
        raise TypeError("expected a JSON object")
    payload = envelope.get("payload")
    if isinstance(payload, str):
        decoded = json.loads(base64.b64decode(payload))
        if not isinstance(decoded, dict):
            raise TypeError("payload is not a JSON object")
        return decoded
    return envelope
