"""The scan's checks of the lineage log itself: does it verify, and did any non-production
process use data of production lineage without a masking proof that still holds (each proof
behind a ``masked`` link is verified again: :mod:`envguard.scan.proof_checks`)?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envguard.scan import Finding, ScanProgress
from envguard.scan.proof_checks import MaskedLinks

if TYPE_CHECKING:
    from envguard.policy import Policy

__all__ = ["check_data_uses", "check_log", "prod_lineage", "unmasked_use"]

_SHOWN = 20


def check_log(policy: Policy, store: Any, progress: ScanProgress) -> list[Finding]:
    """``envguard audit verify --indexes``: a log that fails verification (its chain, its
    checkpoints, or the indexes the gates query) is one finding, with the first problems as
    evidence."""
    from envguard.lineage.verify import checkpoint_verifier, verify_store

    report = verify_store(
        store,
        checkpoint_verifier(policy),
        progress=lambda n: progress("lineage log events verified", n, None),
        indexes=True,
    )
    progress("lineage log events verified", report.events, report.events)
    if report.ok:
        return []
    problems = [f"event {f.seq}: {f.problem}: {f.message}" for f in report.findings]
    return [
        Finding(
            "log-verify-failed",
            store.safe_url,
            f"the lineage log fails verification: {len(problems)} problem(s), the first: "
            f"{problems[0]}",
            "treat the log as tampered with: compare it with a backup and the signed checkpoints "
            "(envguard audit verify), find who had write access to the store, and restore it",
            {"problems": problems[:_SHOWN], "events": report.events, "head": report.head_seq},
        )
    ]


def prod_lineage(
    policy: Policy, store: Any, entities: list[str], masked: MaskedLinks | None = None
) -> dict[str, str]:
    """Entity -> the production environment it has lineage from through no masking step whose
    proof still holds (the entities without such lineage are left out). Many entities at once.
    Each ``masked`` link met on the way is verified again (:class:`MaskedLinks`; pass one to
    keep the failures as evidence)."""
    from envguard.lineage.origin import lineage_origins

    if not entities:
        return {}
    links = masked if masked is not None else MaskedLinks(policy, store)
    found = lineage_origins(store, policy, sorted(set(entities)), follow_masked=links.broken)
    return {
        e: env
        for e, env in found.items()
        if env is not None and env in policy.spec.environments and policy.is_prod(env)
    }


def unmasked_use(
    run: str,
    dataset: str,
    origin: str,
    env: str,
    masked: MaskedLinks | None = None,
    **evidence: Any,
) -> Finding:
    """The finding for a non-production ``run`` that used ``dataset`` of ``origin``'s lineage;
    ``masked``: the scan's re-verification, whose failures upstream of ``dataset`` are shown."""
    broken = masked.upstream_failures(dataset) if masked is not None else []
    if broken:
        first = broken[0]["proofs"][0]
        why = (
            f"and the masking proof on the way no longer verifies ({first['proof'] or 'none'}: "
            f"{first['reasons'][0]})"
        )
        remedy = (
            "if the proof's key was revoked or the proof altered, treat the masked data as "
            "production data: mask the sources again with a trusted key (envguard mask), retrain "
            f"on the new masked copy, and find out who changed the proof; review {run}"
        )
    else:
        why = "and no masking proof on the way"
        remedy = (
            f"mask the data (envguard mask) and retrain on the masked copy; review who ran {run} "
            f"and why the data-use gate did not stop it (mode, plugin installed?)"
        )
    extra = {"broken_masking_proofs": broken} if broken else {}
    return Finding(
        "run-prod-data-unmasked",
        run,
        f"{run} in non-production environment {env!r} used {dataset}, which has production "
        f"lineage from {origin!r} {why}",
        remedy,
        {"dataset": dataset, "origin": origin, **evidence, **extra},
        detail=dataset,
        environment=env,
    )


def check_data_uses(policy: Policy, store: Any, progress: ScanProgress) -> list[Finding]:
    """Every ``dataset.used`` event of a non-production environment whose dataset has production
    lineage through no masking step (a use that ``warn`` or ``audit`` mode let through)."""
    uses: list[tuple[str, str, str, int]] = []  # (who, dataset, env, seq)
    count = 0
    for event in store.events(kind="dataset.used"):
        count += 1
        env = event.environment
        if env not in policy.spec.environments or policy.is_prod(env):
            continue
        ends = [*event.entities, *(link.dst for link in event.links)]
        runs = [e for e in ends if e.startswith("run:")]
        who = runs[0] if runs else f"process:{event.actor}@{env}"
        for entity in event.entities:
            if entity.startswith("sha256:"):
                uses.append((who, entity, env, event.seq))
    progress("lineage log data uses", count, count)
    masked = MaskedLinks(policy, store)
    origins = prod_lineage(policy, store, [u[1] for u in uses], masked)
    return [
        unmasked_use(who, dataset, origins[dataset], env, masked, event=seq)
        for who, dataset, env, seq in uses
        if dataset in origins
    ]
