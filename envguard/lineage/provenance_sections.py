"""The sections of an ``audit lineage`` answer, read from the events and edges already fetched.

Nothing here queries the store: every section is built from the nodes, edges and events that
:func:`~envguard.lineage.provenance.gather_provenance` found, so its cost grows with the answer.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envguard.lineage.events import Event
    from envguard.runtime import Runtime

__all__ = ["Sections"]

ORIGIN_KINDS = ("dataset.registered", "object.stored")
RUN_CREATED = "mlflow.run.created"
VERSION_CREATED = "mlflow.model_version.created"
EVALUATED = "evaluated-by"


def _is_content(entity: str) -> bool:
    return entity.startswith(("sha256:", "dvc-md5", "dvc-sha256"))


class Sections:
    """Builds each section of the answer once."""

    def __init__(
        self,
        runtime: Runtime,
        entity: str,
        nodes: set[str],
        edges: list[dict[str, Any]],
        events: list[Event],
        verify: bool,
    ) -> None:
        self.runtime = runtime
        self.entity = entity
        self.edges = edges
        self.events = events
        self.verify = verify
        self.by_entity: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            ends = {x for link in event.links for x in (link.src, link.dst)}
            for name in dict.fromkeys([*event.entities, *ends]):
                self.by_entity[name].append(event)
        self.nodes = set(nodes) | {r for runs in self._bound_runs().values() for r in runs}
        self.into: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        seen: set[tuple[str, str, str]] = set()
        for edge in edges:
            key = (edge["src"], edge["dst"], edge["relation"])
            if key in seen:
                continue
            seen.add(key)
            self.into[edge["dst"]].append(edge)
            self.out[edge["src"]].append(edge)

    # -- shared facts ------------------------------------------------------------------------
    def _bound_runs(self) -> dict[str, list[str]]:
        """Model version -> the runs its approvals (or promotions) were bound to."""
        found: dict[str, list[str]] = defaultdict(list)
        for event in self.events:
            if event.kind == "approval.granted":
                statement = event.payload.get("statement") or {}
                mv, run_id = statement.get("model_version"), statement.get("run_id")
            elif event.kind in ("promotion.allowed", "promotion.denied"):
                binding = (event.payload.get("facts") or {}).get("binding") or {}
                mv, run_id = binding.get("model_version"), binding.get("run_id")
            elif event.kind == VERSION_CREATED:
                mv, run_id = event.entities[0], event.payload.get("run_id")
            else:
                continue
            if mv and run_id and f"run:{run_id}" not in found[mv]:
                found[str(mv)].append(f"run:{run_id}")
        return found

    @cached_property
    def origins(self) -> dict[str, str]:
        """Entity -> the origin environment recorded first for it (as the gate reads it)."""
        found: dict[str, str] = {}
        for event in self.events:
            origin = event.payload.get("origin")
            if event.kind in ORIGIN_KINDS and isinstance(origin, str):
                for name in event.entities:
                    found.setdefault(name, origin)
        return found

    @cached_property
    def production_lineage(self) -> dict[str, str]:
        """Node -> the production environment it descends from through unmasked steps."""
        policy = self.runtime.policy

        def is_prod(env: str | None) -> bool:
            return env is not None and env in policy.spec.environments and policy.is_prod(env)

        found = {n: o for n, o in self.origins.items() if is_prod(o)}
        queue = list(found)
        while queue:
            node = queue.pop()
            for edge in self.out.get(node, ()):
                child = edge["dst"]
                if edge["relation"] != "masked" and child not in found:
                    found[child] = found[node]
                    queue.append(child)
        return found

    @cached_property
    def known_policies(self) -> list[str]:
        """The policies the events of this answer were recorded under: a proof made under one of
        them is made under a policy the log knows (no scan of the whole log)."""
        return sorted({e.policy_sha256 for e in self.events if e.policy_sha256})

    def _first(self, entity: str, kinds: tuple[str, ...]) -> Event | None:
        return next((e for e in self.by_entity.get(entity, ()) if e.kind in kinds), None)

    # -- sections ------------------------------------------------------------------------------
    def model_versions(self) -> list[dict[str, Any]]:
        bound = self._bound_runs()
        found = []
        for node in sorted(n for n in self.nodes if n.startswith("models:/")):
            name, version = node[len("models:/") :].rsplit("/", 1)
            created = self._first(node, (VERSION_CREATED,))
            produced = [e["src"] for e in self.into.get(node, ()) if e["src"].startswith("run:")]
            produced += [r for r in bound.get(node, []) if r not in produced]
            evaluated = [e["dst"] for e in self.out.get(node, ()) if e["relation"] == EVALUATED]
            found.append(
                {
                    "entity": node,
                    "name": name,
                    "version": version,
                    "created": _who(created),
                    "produced_by": produced,
                    "evaluated_by": evaluated,
                }
            )
        return found

    def runs(self) -> list[dict[str, Any]]:
        produced = {r for mv in self.model_versions() for r in mv["produced_by"]}
        evaluated = {r for mv in self.model_versions() for r in mv["evaluated_by"]}
        found = []
        for node in sorted(n for n in self.nodes if n.startswith("run:")):
            events = self.by_entity.get(node, [])
            own = [e for e in events if e.kind in (RUN_CREATED, "dataset.used", "artifact.logged")]
            created = self._first(node, (RUN_CREATED,))
            env = next((e.environment for e in own if e.environment), None)
            tier = next((e.payload["tier"] for e in own if e.payload.get("tier")), None)
            commit = next(
                (e.payload["git_commit"] for e in own if e.payload.get("git_commit")), None
            )
            roles = [
                role
                for role, members in (("produced", produced), ("evaluated", evaluated))
                if node in members
            ]
            found.append(
                {
                    "entity": node,
                    "run_id": node[len("run:") :],
                    "roles": roles or ["related"],
                    "environment": env,
                    "tier": tier or (self._tier(env) if env else None),
                    "user": created.actor if created else (own[0].actor if own else None),
                    "code_version": commit,
                    "policy_sha256": own[0].policy_sha256 if own else None,
                    "created": _who(created),
                    "inputs": sorted(
                        {e["src"] for e in self.into.get(node, ()) if e["relation"] != EVALUATED}
                    ),
                    "outputs": sorted({e["dst"] for e in self.out.get(node, ())}),
                }
            )
        return found

    def _tier(self, env: str) -> str | None:
        policy = self.runtime.policy
        return policy.tier(env) if env in policy.spec.environments else None

    def datasets(self) -> list[dict[str, Any]]:
        found = []
        for node in sorted(n for n in self.nodes if _is_content(n)):
            twins = sorted(
                e["dst"] for e in self.out.get(node, ()) if e["relation"] == "same-content"
            )
            origin = self.origins.get(node) or next(
                (self.origins[t] for t in twins if t in self.origins), None
            )
            registered = self._first(node, ("dataset.registered",))
            found.append(
                {
                    "entity": node,
                    "sha256": node[len("sha256:") :] if node.startswith("sha256:") else None,
                    "same_content": twins,
                    "origin": origin,
                    "origin_tier": self._tier(origin) if origin else None,
                    "production_lineage": self.production_lineage.get(node),
                    "registered": _who(registered),
                    "masking": self._masking(node),
                    "used_by": sorted(
                        e["dst"] for e in self.out.get(node, ()) if e["relation"] == "used-by"
                    ),
                }
            )
        return found

    def _masking(self, node: str) -> list[dict[str, Any]]:
        """Every masking step that produced ``node``, with its proof verified again now."""
        from envguard.proofs import check_envelope

        masked = [e for e in self.into.get(node, ()) if e["relation"] == "masked"]
        by_seq: dict[int, list[str]] = defaultdict(list)
        for edge in masked:
            by_seq[edge["seq"]].append(edge["src"])
        found = []
        events = {e.seq: e for e in self.by_entity.get(node, ())}
        for seq, sources in sorted(by_seq.items()):
            event = events.get(seq)
            if event is None:
                continue
            for proof, envelope in _envelopes(event).items():
                item: dict[str, Any] = {
                    "proof": proof,
                    "sources": sorted(sources),
                    "recorded": _who(event),
                    "step": event.kind,
                }
                if self.verify:
                    sha = node[len("sha256:") :] if node.startswith("sha256:") else None
                    signer, problems = check_envelope(
                        self.runtime.policy,
                        envelope,
                        sha,
                        self.runtime.environ,
                        known_policy_sha256s=self.known_policies,
                    )
                    item.update(signer=signer, verifies=not problems, problems=problems)
                found.append(item)
        return found

    def steps(self) -> list[dict[str, Any]]:
        found = []
        for event in self.events:
            if not any(link.src in self.nodes and link.dst in self.nodes for link in event.links):
                continue  # a step beside the answer (another output of the same source)
            if event.kind == "derivation":
                stage = next((x for x in event.entities if x.startswith("dvc-stage:")), None)
                found.append(
                    {
                        "entity": stage or f"event:{event.seq}",
                        "kind": str(event.payload.get("step") or "derivation"),
                        "name": event.payload.get("stage"),
                        "repo": event.payload.get("repo"),
                        "cmd": event.payload.get("cmd"),
                        "inputs": sorted({link.src for link in event.links}),
                        "outputs": sorted({link.dst for link in event.links}),
                        "masked": any(link.relation == "masked" for link in event.links),
                        "proofs": sorted(set((event.payload.get("proofs") or {}).values())),
                        **_stamp(event),
                    }
                )
            elif event.kind == "proof.recorded":
                proof = next((x for x in event.entities if x.startswith("proof:")), None)
                found.append(
                    {
                        "entity": proof or f"event:{event.seq}",
                        "kind": "masking",
                        "name": "envguard mask",
                        "repo": None,
                        "cmd": None,
                        "inputs": sorted({link.src for link in event.links}),
                        "outputs": sorted({link.dst for link in event.links}),
                        "masked": True,
                        "proofs": [proof] if proof else [],
                        **_stamp(event),
                    }
                )
        return found

    def objects(self) -> list[dict[str, Any]]:
        found = []
        for event in self.events:
            p = event.payload
            if event.kind == "object.stored":
                found.append(
                    {
                        **_stamp(event),
                        "entity": event.entities[0],
                        "content": event.entities[1] if len(event.entities) > 1 else None,
                        "location": p.get("url") or p.get("remote"),
                        "key": p.get("key"),
                        "environment": p.get("env") or event.environment,
                        "origin": p.get("origin"),
                    }
                )
            elif event.kind == "artifact.logged":
                uri = str(p.get("artifact_uri", "")).rstrip("/")
                found.append(
                    {
                        **_stamp(event),
                        "entity": f"{uri}/{p.get('path')}",
                        "content": f"sha256:{p['sha256']}" if p.get("sha256") else None,
                        "location": uri,
                        "key": p.get("path"),
                        "environment": event.environment,
                        "origin": None,
                    }
                )
        return found

    def approvals(self) -> list[dict[str, Any]]:
        revoked = {str(e.payload.get("id")): e for e in self.events if e.kind == "approval.revoked"}
        found = []
        for event in self.events:
            if event.kind != "approval.granted":
                continue
            s = event.payload.get("statement") or {}
            gone = revoked.get(str(s.get("id")))
            found.append(
                {
                    "id": s.get("id"),
                    "model_version": s.get("model_version"),
                    "approver": s.get("approver") or event.actor,
                    "target_env": s.get("target_env"),
                    "time": s.get("time") or event.time,
                    "comment": s.get("comment", ""),
                    "run_id": s.get("run_id"),
                    "files": len(s.get("files_sha256") or {}),
                    "keyid": event.payload.get("keyid"),
                    "seq": event.seq,
                    "problems": (problems := _approval_problems(self.runtime, event, s)),
                    "valid": not problems,
                    "revoked": None
                    if gone is None
                    else {**_stamp(gone), "comment": gone.payload.get("comment", "")},
                }
            )
        return found

    def promotions(self) -> list[dict[str, Any]]:
        found = []
        for event in self.events:
            if event.kind not in ("promotion.allowed", "promotion.denied"):
                continue
            decision = event.payload.get("decision") or {}
            found.append(
                {
                    "seq": event.seq,
                    "time": event.time,
                    "model_version": event.entities[0] if event.entities else None,
                    "actor": event.actor,
                    "target_env": event.environment,
                    "move": event.payload.get("move"),
                    "outcome": decision.get("outcome", event.kind.rsplit(".", 1)[1]),
                    "allowed": event.kind == "promotion.allowed",
                    "reasons": [
                        {k: r.get(k) for k in ("rule", "message", "remedy")}
                        for r in decision.get("reasons") or []
                    ],
                    "override": decision.get("override"),
                    "policy_sha256": event.policy_sha256,
                }
            )
        return found


def _who(event: Event | None) -> dict[str, Any] | None:
    return None if event is None else _stamp(event)


def _stamp(event: Event) -> dict[str, Any]:
    return {
        "actor": event.actor,
        "time": event.time,
        "environment": event.environment,
        "seq": event.seq,
    }


def _envelopes(event: Event) -> dict[str, dict[str, Any]]:
    """Proof id -> the signed envelope an event carries (``envelope`` or ``envelopes``)."""
    found = {
        str(k): v
        for k, v in dict(event.payload.get("envelopes") or {}).items()
        if isinstance(v, dict)
    }
    proofs = [e for e in event.entities if str(e).startswith("proof:")]
    envelope = event.payload.get("envelope")
    if isinstance(envelope, dict) and proofs:
        found.setdefault(proofs[0], envelope)
    return found


APPROVAL_TYPE = "envguard.approval/v1"


def _approval_problems(runtime: Runtime, event: Event, statement: dict[str, Any]) -> list[str]:
    """Why a recorded approval does not count: its signature does not verify against a key the
    policy trusts for approvals, or the event's actor is not the approver (empty: it holds)."""
    import base64

    from envguard.keys import verify_signature
    from envguard.lineage.events import canonical_json

    problems: list[str] = []
    try:
        signature = base64.b64decode(str(event.payload.get("signature", "")), validate=True)
        verify_signature(
            runtime.policy,
            "approval",
            str(event.payload.get("keyid", "")),
            signature,
            canonical_json(statement).encode(),
            runtime.environ,
        )
    except (ValueError, TypeError) as exc:
        problems.append(f"signature: {exc}")
    if statement.get("type") != APPROVAL_TYPE:
        problems.append(f"not an {APPROVAL_TYPE} statement")
    if statement.get("approver") != event.actor:
        problems.append("the recorded actor is not the approver")
    return problems
