"""The evidence behind the I&S-05 report, gathered from the policy and the lineage log.

Everything here is data (JSON-ready), so the same evidence is written as ``--json`` and rendered
as HTML. Nothing is invented: a section with no events says so.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envguard.runtime import Runtime

__all__ = ["GUIDELINES", "gather"]

CAIQ = "I&S-05.1 Are production and non-production environments kept separate?"

#: The seven auditing guidelines of CSA AICM I&S-05, and the evidence sections that answer each.
GUIDELINES: list[tuple[int, str, list[str]]] = [
    (
        1,
        "Policies and procedures keep production and non-production environments separate, "
        "preventing unauthorized access and unintentional interactions.",
        ["environments", "mode"],
    ),
    (2, "Clear roles for the shared responsibility model.", ["roles", "plugins"]),
    (
        3,
        "Role-based access control and least privilege for all environments; production access "
        "restricted to authorized personnel.",
        ["roles", "promotion_rules"],
    ),
    (
        4,
        "Production data is not used in non-production environments unless properly sanitized "
        "or anonymized.",
        ["data_uses", "masking_proofs"],
    ),
    (
        5,
        "The change promotion process from development and testing to production has proper "
        "approvals and documentation.",
        ["promotions", "data_movements", "approvals"],
    ),
    (
        6,
        "Monitoring and logging across all environments detect unauthorized access or changes; "
        "logs are reviewed and kept securely.",
        ["verification", "scan", "violations", "alerts"],
    ),
    (7, "Segregation controls are regularly reviewed and updated.", ["policy_history"]),
]

_MAX_ITEMS = 500


def _decision_item(event: Any) -> dict[str, Any]:
    decision = event.payload.get("decision", {})
    return {
        "seq": event.seq,
        "time": event.time,
        "actor": event.actor,
        "environment": event.environment,
        "subject": decision.get("subject", event.payload.get("subject")),
        "action": decision.get("action"),
        "outcome": decision.get("outcome"),
        "rules": [r.get("rule") for r in decision.get("reasons", [])],
        "origin": event.payload.get("origin"),
        "masked_by": event.payload.get("masked_by"),
        "override": decision.get("override"),
    }


def _movement_item(event: Any) -> dict[str, Any]:
    """A data movement (``envguard data promote``): its decision, and where the data went."""
    return {
        **_decision_item(event),
        "from": event.payload.get("from"),
        "to": event.payload.get("to"),
        "sha256": event.payload.get("sha256"),
    }


def _last_scan(runtime: Runtime) -> dict[str, Any]:
    """The last ``envguard audit scan``: when, what it swept, and the findings still open."""
    from envguard.scan.sweep import COMPLETED_KIND, FOUND_KIND, open_findings

    store = runtime.store
    last = None
    for event in store.events(kind=COMPLETED_KIND):
        last = event
    if last is None:
        return {"time": None, "summary": {}, "open": []}
    still = open_findings(runtime)
    found = [
        e.payload["finding"]
        for e in store.events(kind=FOUND_KIND)
        if isinstance(e.payload.get("finding"), dict) and e.payload["finding"].get("id") in still
    ]
    latest = {f["id"]: f for f in found}  # the last record of each open finding
    return {"time": last.time, "summary": last.payload, "open": list(latest.values())[-_MAX_ITEMS:]}


def gather(runtime: Runtime, verify: bool = True) -> dict[str, Any]:
    """Collect the evidence: policy, roles, uses, proofs, promotions, the log and its history."""
    from envguard.lineage.verify import checkpoint_verifier, verify_store

    policy = runtime.policy
    store = runtime.store
    spec = policy.spec
    environments = [
        {
            "name": name,
            "tier": env.tier,
            "description": env.description,
            "locations": {k: v for k, v in env.model_dump().items() if isinstance(v, list) and v},
        }
        for name, env in spec.environments.items()
    ]
    decisions = [
        _decision_item(e)
        for kind in ("dataset.used", "decision", "violation.found")
        for e in store.events(kind=kind)
    ]
    decisions.sort(key=lambda d: d["seq"])
    movements = [
        _movement_item(e)
        for e in store.events(kind="decision")
        if (e.payload.get("decision") or {}).get("action") == "data-movement"
    ]
    decisions = [d for d in decisions if d["action"] != "data-movement"]
    outcomes = Counter(d["outcome"] for d in decisions if d["action"] != "scan")
    proofs = [
        {
            "seq": e.seq,
            "time": e.time,
            "actor": e.actor,
            "entities": e.entities,
            "payload": {k: v for k, v in e.payload.items() if k != "envelope"},
        }
        for e in store.events(kind="proof.recorded")
    ]
    approvals = [
        {
            "seq": e.seq,
            "time": e.time,
            "kind": e.kind,
            "actor": e.actor,
            "entities": e.entities,
            "comment": e.payload.get("comment", ""),
        }
        for kind in ("approval.granted", "approval.revoked")
        for e in store.events(kind=kind)
    ]
    promotions = [
        _decision_item(e)
        for kind in (
            "promotion.requested",
            "promotion.allowed",
            "promotion.denied",
            "promotion.overridden",
        )
        for e in store.events(kind=kind)
    ]
    report = verify_store(store, checkpoint_verifier(policy)) if verify else None
    pending = store.spool.count() if store.spool else 0
    from envguard.lineage.origin import origins_of

    edges = store.recent_edges(400)
    nodes = list(dict.fromkeys(n for e in edges for n in (e.src, e.dst)))
    origins = origins_of(store, nodes)
    has_prod = any(env.tier == "prod" for env in spec.environments.values())
    went_through = outcomes.get("warn", 0) + outcomes.get("record", 0)
    concerns = []
    if not has_prod:
        concerns.append("the policy declares no production environment")
    if spec.mode != "enforce":
        concerns.append(f"the policy's mode is {spec.mode!r}: violations are not blocked")
    if went_through:
        concerns.append(
            f"{went_through} use(s) with production lineage were allowed with a "
            f"warning or only recorded"
        )
    overrides = [p for p in promotions if p["override"]]
    if overrides:
        concerns.append(
            f"{len(overrides)} promotion(s) went through by emergency override, setting rules "
            f"aside: "
            + "; ".join(
                f"event {p['seq']} by {p['actor']}: {p['override'].get('reason', '')}"
                for p in overrides[-5:]
            )
        )
    if report is not None and not report.ok:
        concerns.append(f"the lineage log failed verification ({len(report.findings)} finding(s))")
    answer = "No" if not has_prod else ("Partially" if concerns else "Yes")
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "caiq": {"question": CAIQ, "answer": answer, "concerns": concerns},
        "policy": {"path": str(policy.path), "sha256": policy.sha256},
        "mode": spec.mode,
        "environments": environments,
        "roles": [{"identity": who, "roles": list(roles)} for who, roles in spec.roles.items()],
        "promotion_rules": {name: rule.model_dump() for name, rule in spec.promotion.items()},
        "plugins": [
            {"name": i.name, "status": i.status, "reason": i.reason}
            for i in runtime.plugins.plugin_infos()
        ],
        "data_uses": {
            "counts": dict(outcomes),
            "items": [d for d in decisions if d["action"] != "scan"][-_MAX_ITEMS:],
        },
        "scan": _last_scan(runtime),
        "masking_proofs": proofs[-_MAX_ITEMS:],
        "promotions": promotions[-_MAX_ITEMS:],
        "data_movements": movements[-_MAX_ITEMS:],
        "approvals": approvals[-_MAX_ITEMS:],
        "violations": [d for d in decisions if d["outcome"] != "allow"][-_MAX_ITEMS:],
        "alerts": spec.alerts.model_dump(),
        "verification": {
            "store": store.safe_url,
            "pending_spool": pending,
            **(report.to_dict() if report else {"skipped": True}),
        },
        "events_by_kind": store.counts_by_kind(),
        "policy_history": store.policy_history(),
        "graph": [[e.src, e.dst, e.relation] for e in reversed(edges)],
        "graph_prod": sorted(
            n for n, env in origins.items() if env in spec.environments and policy.is_prod(env)
        ),
        "guidelines": [
            {"number": n, "text": text, "sections": sections} for n, text, sections in GUIDELINES
        ],
    }
