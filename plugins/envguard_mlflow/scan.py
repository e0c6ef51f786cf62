"""The MLflow plugin's part of ``envguard audit scan``: every registry and tracking server the
policy names, read through ``MlflowClient`` (paginated), checked against the lineage log.

* **registry** (each ``mlflow_registry_uris`` and ``mlflow_tracking_uris`` entry): every
  registered model (``search_registered_models``) and its aliases, every version
  (``search_model_versions``) and its legacy stage. A version that an alias or stage (of any
  registered model), or its registered model's binding (``[registry.models]``), puts in a
  production-tier environment needs a ``promotion.allowed`` event for that environment in the
  log; without one, someone went around the gate (``registry-bypass``). A version of a bound
  model enters it as a copy (``copy_model_version``), which the gate decides as the promotion of
  its source: the source's allowed promotion counts for the copy. With one, the version's
  files are read again and compared with the binding the promotion recorded and the approvals
  were signed over (``binding-mismatch``).
* **runs** (each ``mlflow_tracking_uris`` entry): every run of every experiment, deleted ones
  included (``search_experiments`` then ``search_runs``). A run without an ``envguard.env`` tag
  naming an environment of the policy is ``run-untagged``; a non-production run whose dataset
  inputs (input tag ``envguard.sha256``) have production lineage without a masking proof is
  ``run-prod-data-unmasked``.

A server that cannot be read is a ``scan-unreachable`` finding naming the URI. The scan reads
across environments (an auditor's read is not a crossing): the client-side guard stands aside.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.scan import Finding, ScanProgress, unreachable
from envguard.scan.lineage_checks import prod_lineage, unmasked_use
from envguard.scan.proof_checks import MaskedLinks
from envguard.uris import normalize_uri

if TYPE_CHECKING:
    from envguard.lineage.events import Event
    from envguard.policy import Policy

__all__ = ["sweep"]

ENV_TAG = "envguard.env"
DATASET_DIGEST_TAG = "envguard.sha256"
PROMPT_TAG = "mlflow.prompt.is_prompt"
PAGE = 1000
EXPERIMENT_BATCH = 50


def _uris(policy: Policy, registry: bool) -> list[tuple[str, str]]:
    """(URI, environment) of every server the policy names, each once."""
    found: dict[str, tuple[str, str]] = {}
    for name, env in policy.spec.environments.items():
        uris = [*env.mlflow_registry_uris, *env.mlflow_tracking_uris] if registry else []
        for uri in uris or env.mlflow_tracking_uris:
            found.setdefault(normalize_uri(uri), (uri, name))
    return list(found.values())


def _pages(call: Callable[..., Any], **kwargs: Any) -> Iterator[Any]:
    token = None
    while True:
        page = call(**kwargs, page_token=token)
        yield from page
        token = getattr(page, "token", None)
        if not token:
            return


def _unreadable(uri: str, what: str, exc: Exception) -> Finding:
    return unreachable(
        uri,
        f"the MLflow {what} {uri} could not be read ({type(exc).__name__}: {exc})",
        "check the URI in the policy (environments.ENV.mlflow_*_uris), that the server runs, "
        "and the credentials (MLFLOW_TRACKING_USERNAME/PASSWORD or TOKEN); then scan again",
        what=what,
    )


def sweep(policy: Policy, store: Any, progress: ScanProgress) -> list[Finding]:
    from mlflow.exceptions import MlflowException
    from requests import RequestException

    from envguard_mlflow.facts import standing_aside

    failures = (MlflowException, RequestException, OSError)
    findings: list[Finding] = []
    with standing_aside():
        allowed = _allowed(store)
        for uri, _env in _uris(policy, registry=True):
            try:
                findings.extend(_registry(policy, store, uri, progress, allowed))
            except failures as exc:
                findings.append(_unreadable(uri, "registry", exc))
        for uri, _env in _uris(policy, registry=False):
            try:
                findings.extend(_runs(policy, store, uri, progress))
            except failures as exc:
                findings.append(_unreadable(uri, "tracking server", exc))
    return findings


# -- registry ------------------------------------------------------------------------------------
def _allowed(store: Any) -> dict[str, list[Event]]:
    """models:/NAME/VERSION -> its ``promotion.allowed`` events, oldest first."""
    found: dict[str, list[Event]] = {}
    for event in store.events(kind="promotion.allowed"):
        for entity in event.entities:
            if entity.startswith("models:/"):
                found.setdefault(entity, []).append(event)
    return found


Placement = tuple[str, str, str, str]  # (name, version, env, "alias @x" / "stage X" / ...)


def _registry(
    policy: Policy,
    store: Any,
    uri: str,
    progress: ScanProgress,
    allowed: dict[str, list[Event]],
) -> list[Finding]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    copied_from: dict[str, str | None] = {}  # version of a bound model -> the version it copies
    placed = _placements(policy, client, uri, progress, copied_from)
    findings: list[Finding] = []
    checked: set[str] = set()
    for name, version, env, where in placed:
        entity = f"models:/{name}/{version}"
        events = [e for e in allowed.get(entity, []) if e.environment == env]
        source = copied_from.get(entity)
        if not events and source:
            events = [e for e in allowed.get(source, []) if e.environment == env]
        if not events:
            findings.append(_bypass(uri, entity, env, where, allowed.get(entity, []), source))
            continue
        if entity not in checked:
            checked.add(entity)
            found = _binding_check(policy, store, client, uri, name, version, events[-1])
            if found is not None:
                findings.append(found)
    return findings


def _placements(
    policy: Policy,
    client: Any,
    uri: str,
    progress: ScanProgress,
    copied_from: dict[str, str | None],
) -> list[Placement]:
    """Every version that an alias, a stage or its model's binding puts in production (in any
    registered model but prompts); ``copied_from`` gets the source of each bound version."""
    label = f"model versions at {uri}"
    prompts: set[str] = set()
    placed: list[Placement] = []
    models = 0
    for model in _pages(client.search_registered_models, max_results=PAGE):
        models += 1
        if str((model.tags or {}).get(PROMPT_TAG, "")).lower() == "true":
            prompts.add(model.name)
            continue
        for alias, version in _aliases(model):
            env = policy.env_for_alias(alias)
            if env and _prod(policy, env):
                placed.append((model.name, str(version), env, f"alias @{alias}"))
    progress(f"registered models at {uri}", models, models)
    count = 0
    for mv in _pages(client.search_model_versions, max_results=PAGE):
        count += 1
        if count % 200 == 0:
            progress(label, count)
        if mv.name in prompts:
            continue
        stage = mv.current_stage or ""
        env = policy.env_for_stage(stage) if stage and stage != "None" else None
        if env and _prod(policy, env):
            placed.append((mv.name, str(mv.version), env, f"stage {stage}"))
        bound = policy.env_for_model(mv.name)
        if bound and _prod(policy, bound):
            placed.append((mv.name, str(mv.version), bound, f"bound model {mv.name}"))
            copied_from[f"models:/{mv.name}/{mv.version}"] = _copy_source(mv)
    progress(label, count, count)
    return placed


def _prod(policy: Policy, env: str) -> bool:
    return env in policy.spec.environments and policy.is_prod(env)


def _copy_source(mv: Any) -> str | None:
    """``models:/NAME/VERSION`` that ``copy_model_version`` copied into ``mv``, else None."""
    source = str(mv.source or "")
    if (
        source.startswith("models:/")
        and source.count("/") == 2
        and not source.startswith("models:/m-")
    ):
        return source
    return None


def _aliases(model: Any) -> list[tuple[str, str]]:
    aliases = model.aliases or {}
    if isinstance(aliases, dict):
        return [(str(a), str(v)) for a, v in aliases.items()]
    return [(str(a.alias), str(a.version)) for a in aliases]


def _bypass(
    uri: str, entity: str, env: str, where: str, other: list[Event], source: str | None = None
) -> Finding:
    elsewhere = sorted({e.environment for e in other})
    copied = f" nor of {source}, which it copies" if source else ""
    return Finding(
        "registry-bypass",
        entity,
        f"{entity} is in production environment {env!r} ({where} at {uri}), but the lineage "
        f"log holds no allowed promotion of it{copied} to {env!r}"
        + (f" (only to {', '.join(elsewhere)})" if elsewhere else "")
        + ": it got there around the gate (the database, or a server without envguard's app)",
        f"move it out of {where} now; find who changed the registry (database and server logs); "
        f"then promote it through the gate (envguard promote {entity} --to {env})",
        {"registry": uri, "placement": where, "allowed_to": elsewhere, "copy_of": source},
        detail=where,
        environment=env,
    )


def _files_digest(files: dict[str, str]) -> str:
    from envguard.lineage.events import canonical_json

    return hashlib.sha256(canonical_json(files).encode()).hexdigest()


def _current_files(client: Any, uri: str, name: str, version: str) -> dict[str, str]:
    """Every file the version serves now -> its sha256, paths as the server's binding has them."""
    import mlflow.artifacts

    from envguard.digests import sha256_file

    location = client.get_model_version_download_uri(name, version)
    with tempfile.TemporaryDirectory(prefix="envguard-scan-") as tmp:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=tmp, tracking_uri=uri
            )
        )
        root = local if local.is_dir() else local.parent
        return {
            item.relative_to(root).as_posix(): sha256_file(item)
            for item in sorted(root.rglob("*"))
            if item.is_file()
        }


def _binding_check(
    policy: Policy, store: Any, client: Any, uri: str, name: str, version: str, event: Event
) -> Finding | None:
    """Compare the version's files now with the binding its last allowed promotion recorded,
    and with every standing approval of it."""
    from envguard_mlflow.server.approvals import read_approvals

    entity = f"models:/{name}/{version}"
    binding = (event.payload.get("facts") or {}).get("binding")
    if not isinstance(binding, dict) or not isinstance(binding.get("files"), dict):
        return None
    files = _current_files(client, uri, name, version)
    actual = _files_digest(files)
    if actual == binding.get("files_sha256"):
        return None
    expected: dict[str, str] = binding["files"]
    changed = sorted(p for p in files.keys() & expected.keys() if files[p] != expected[p])
    approvals = [
        {"id": a.id, "approver": a.statement.get("approver"), "seq": a.seq}
        for a in read_approvals(store, policy, entity)
        if a.valid and a.statement.get("files_sha256") not in (None, actual)
    ]
    return Finding(
        "binding-mismatch",
        entity,
        f"the files of {entity} changed since promotion event {event.seq} allowed it into "
        f"{event.environment!r} (files sha256 {str(binding.get('files_sha256'))[:12]}… then, "
        f"{actual[:12]}… now): what serves is not what was approved",
        "take the version out of production, find who wrote its artifacts, and promote the "
        "intended files again through the gate (new approvals are needed)",
        {
            "registry": uri,
            "promotion_event": event.seq,
            "expected_files_sha256": binding.get("files_sha256"),
            "actual_files_sha256": actual,
            "changed": changed,
            "added": sorted(files.keys() - expected.keys()),
            "removed": sorted(expected.keys() - files.keys()),
            "approvals_bound_to_other_files": approvals,
        },
        environment=event.environment,
    )


# -- runs ----------------------------------------------------------------------------------------
def _runs(policy: Policy, store: Any, uri: str, progress: ScanProgress) -> list[Finding]:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=uri)
    experiments = [
        e.experiment_id
        for e in _pages(client.search_experiments, view_type=ViewType.ALL, max_results=PAGE)
    ]
    label = f"runs at {uri}"
    findings: list[Finding] = []
    uses: list[tuple[str, str, str]] = []  # (run entity, dataset entity, env)
    count = 0
    for start in range(0, len(experiments), EXPERIMENT_BATCH):
        batch = experiments[start : start + EXPERIMENT_BATCH]
        for run in _pages(
            client.search_runs,
            experiment_ids=batch,
            run_view_type=ViewType.ALL,
            max_results=PAGE,
        ):
            count += 1
            if count % 200 == 0:
                progress(label, count)
            entity = f"run:{run.info.run_id}"
            env = (run.data.tags or {}).get(ENV_TAG)
            if not env or env not in policy.spec.environments:
                findings.append(_untagged(uri, entity, run, env))
                continue
            if policy.is_prod(env):
                continue
            for item in getattr(run.inputs, "dataset_inputs", None) or []:
                digest = {t.key: t.value for t in item.tags or []}.get(DATASET_DIGEST_TAG)
                if digest:
                    uses.append((entity, f"sha256:{digest.removeprefix('sha256:')}", env))
    progress(label, count, count)
    masked = MaskedLinks(policy, store)
    origins = prod_lineage(policy, store, [u[1] for u in uses], masked)
    findings.extend(
        unmasked_use(run, dataset, origins[dataset], env, masked, tracking_uri=uri)
        for run, dataset, env in uses
        if dataset in origins
    )
    return findings


def _untagged(uri: str, entity: str, run: Any, env: str | None) -> Finding:
    what = (
        f"an {ENV_TAG} tag naming no environment of the policy ({env!r})"
        if env
        else (f"no {ENV_TAG} tag")
    )
    return Finding(
        "run-untagged",
        entity,
        f"{entity} (experiment {run.info.experiment_id} at {uri}, by "
        f"{run.info.user_id or 'unknown'}) has {what}: nobody can tell which environment's "
        f"data and code it saw",
        "install envguard where this run was made (pip install 'envguard[mlflow]'), so every run "
        "is tagged; find out where it ran, then tag it or delete it",
        {
            "tracking_uri": uri,
            "experiment_id": run.info.experiment_id,
            "user": run.info.user_id,
            "status": run.info.status,
            "env_tag": env,
        },
    )
