"""Moving a dataset between environments (I&S-05 guideline 9): ``envguard data promote``.

A dataset is named by the sha256 of its content: a file (hashed, unless a plugin vouches for
its digest from a record it trusts, such as DVC's state) or ``sha256:HEX``. Moving it into an
environment follows the promotion rule of that environment (``[promotion.ENV]``), exactly as
for a model version; the facts:

* **from**: where the dataset is now: the target of its last ``data.moved`` event, else its
  recorded origin (``dataset.registered``, ``object.stored``), else the origin its lineage
  resolves to;
* **creators** (never count as approvers under separation of duties): whoever registered it,
  stored it, or recorded a step that produced it (an event with a link into it);
* **approvals**: approver-signed approvals of ``sha256:HEX`` (:mod:`envguard.approvals`);
* **lineage**: the data-use gate's resolution (:func:`envguard.gate.resolve_data`).

The core decides (:func:`~envguard.decisions.decide_data_movement`), the plugins add reasons
(``envguard_check_data_movement``; one that raises denies). An allowed move records a
``decision`` and a ``data.moved`` event in one transaction, so later gates find the dataset in
its new environment; a denied one records the ``decision``. A move never changes the dataset's
origin or lineage: production data stays production data wherever it is moved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.decisions import Approval, DataMovement, Decision, Reason, conclude
from envguard.errors import Denied, InputError

if TYPE_CHECKING:
    from envguard.approvals import RecordedApproval
    from envguard.gate import ResolvedData
    from envguard.keys import SigningKey
    from envguard.lineage.sql import SqlLineageStore
    from envguard.runtime import Runtime

__all__ = [
    "DataSubject",
    "MovementEvaluation",
    "dataset_environment",
    "evaluate_movement",
    "grant_data_approval",
    "identify",
    "promote_data",
]

MOVED = "data.moved"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_PRODUCED_BY = ("dataset.registered", "object.stored")


@dataclass(frozen=True)
class DataSubject:
    """A dataset as named on the command line, and the data the gates know of it."""

    spec: str  # what the user named: a path or sha256:HEX
    digest: str
    data: ResolvedData

    @property
    def entity(self) -> str:
        return f"sha256:{self.digest}"


def identify(runtime: Runtime, spec: str) -> DataSubject:
    """The dataset ``spec`` names (a file, or ``sha256:HEX``); :class:`InputError` otherwise."""
    import functools

    from envguard.digests import sha256_file
    from envguard.gate import resolve_data

    if spec.startswith("sha256:"):
        if not _DIGEST.fullmatch(spec):
            raise InputError(spec, "a digest is sha256: and 64 lowercase hex digits")
        data = resolve_data(runtime, spec, spec[len("sha256:") :])
    else:
        path = Path(spec)
        if path.is_dir():
            raise InputError(spec, "is a folder; name a file (or sha256:HEX)")
        if not path.is_file():
            raise InputError(spec, "no such file; name a file, or the dataset as sha256:HEX")
        hash_file = functools.partial(sha256_file, path)
        data = resolve_data(runtime, spec, None, hash_file=hash_file)
    digest = data.lineage.digest
    if not digest:  # resolve_data always has one for a file or a digest
        raise InputError(spec, "its sha256 could not be found")
    return DataSubject(spec, digest.removeprefix("sha256:"), data)


def dataset_environment(store: SqlLineageStore, entity: str) -> str | None:
    """Where the dataset is now: its last ``data.moved`` target, else its recorded origin."""
    from envguard.lineage.origin import origins_of

    moved = list(store.events(kind=MOVED, entity=entity))
    if moved:
        return str(moved[-1].payload.get("to") or "") or None
    return origins_of(store, [entity]).get(entity)


def _creators(store: SqlLineageStore, entity: str) -> frozenset[str]:
    found: set[str] = set()
    for event in store.events(entity=entity):
        produced = any(link.dst == entity for link in event.links)
        if (event.kind in _PRODUCED_BY or produced) and event.actor:
            found.add(event.actor)
    return frozenset(found)


def _approvals(store: SqlLineageStore, runtime: Runtime, entity: str) -> tuple[Approval, ...]:
    from envguard.approvals import read_approvals

    out: list[Approval] = []
    for item in read_approvals(store, runtime.policy, entity, personal=True):
        reason = "; ".join(item.problems)
        if item.revoked is not None:
            reason = f"revoked by {item.revoked['by']} at {item.revoked['time']}"
        s = item.statement
        out.append(
            Approval(
                approver=str(s.get("approver", "")),
                target_env=str(s.get("target_env", "")),
                model_version=str(s.get("dataset", "")),
                time=str(s.get("time", "")),
                comment=str(s.get("comment", "")),
                valid=not reason,
                invalid_reason=reason,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class MovementEvaluation:
    """A decision about moving one dataset, and the facts it was made on."""

    decision: Decision
    move: DataMovement
    subject: DataSubject

    def to_dict(self) -> dict[str, Any]:
        m = self.move
        return {
            "dataset": self.subject.entity,
            "path": None if self.subject.spec.startswith("sha256:") else self.subject.spec,
            "from_env": m.from_env,
            "to_env": m.to_env,
            "decision": self.decision.to_dict(),
            "facts": {
                "creators": sorted(m.creators),
                "approvals": [a.__dict__ for a in m.approvals],
                "lineage": m.lineage.__dict__,
                "digest_source": self.subject.data.digest_source,
            },
        }


def evaluate_movement(runtime: Runtime, spec: str, to: str) -> MovementEvaluation:
    """Gather the facts of moving ``spec`` into ``to`` and decide; record nothing."""
    from envguard.errors import StoreError

    policy = runtime.policy
    target = policy.resolve_target(to)
    subject = identify(runtime, spec)
    extra: list[Reason] = list(subject.data.reasons)
    from_env: str | None = None
    creators: frozenset[str] = frozenset()
    approvals: tuple[Approval, ...] = ()
    try:
        store = runtime.store
        from_env = dataset_environment(store, subject.entity)
        creators = _creators(store, subject.entity)
        approvals = _approvals(store, runtime, subject.entity)
    except StoreError as exc:
        extra.append(
            Reason("lineage-unavailable", str(exc), "make the lineage store reachable, then retry")
        )
    lineage = subject.data.lineage
    if from_env is None and lineage.origin_env:
        from_env = lineage.origin_env
    if from_env == target:
        raise InputError(spec, f"is already in {target!r}; nothing to promote")
    move = DataMovement(
        subject.entity, from_env, target, runtime.actor, lineage, approvals, creators
    )
    core = conclude_movement(runtime, move)
    reasons = [*core.reasons, *extra]
    decision = conclude("data-movement", subject.entity, reasons, policy, target)
    return MovementEvaluation(decision, move, subject)


def conclude_movement(runtime: Runtime, move: DataMovement) -> Decision:
    """The core's decision plus the plugins' reasons (``envguard_check_data_movement``)."""
    from envguard.decisions import decide_data_movement

    policy = runtime.policy
    core = decide_data_movement(policy, move)
    plugins = runtime.plugins.check_data_movement(move, policy)
    return conclude("data-movement", move.subject, [*core.reasons, *plugins], policy, move.to_env)


def promote_data(runtime: Runtime, spec: str, to: str, *, dry_run: bool) -> MovementEvaluation:
    """Evaluate, and unless ``dry_run`` record: on allow a ``decision`` and ``data.moved`` in
    one transaction, on deny the ``decision``. A record that cannot be written denies."""
    from envguard.gate import record_decision

    evaluation = evaluate_movement(runtime, spec, to)
    decision = evaluation.decision
    if dry_run:
        return evaluation
    if decision.violated:
        runtime.plugins.on_violation(decision, runtime.policy)
    move = evaluation.move
    facts = {"from": move.from_env, "to": move.to_env, "sha256": evaluation.subject.digest}
    if not decision.allowed:
        recorded = record_decision(
            runtime,
            decision,
            entities=[move.subject],
            payload=facts,
            required=runtime.policy.mode == "enforce",
        )
        return MovementEvaluation(recorded, move, evaluation.subject)
    return _record_move(runtime, evaluation, facts)


def _record_move(
    runtime: Runtime, evaluation: MovementEvaluation, facts: dict[str, Any]
) -> MovementEvaluation:
    from envguard.errors import StoreError

    decision, move = evaluation.decision, evaluation.move
    path = evaluation.subject.spec
    where = {} if path.startswith("sha256:") else {"path": str(Path(path).resolve())}
    drafts = [
        runtime.draft(
            "decision",
            entities=[move.subject],
            payload={"decision": decision.to_dict(), **facts},
            environment=move.to_env,
        ),
        runtime.draft(
            MOVED, entities=[move.subject], payload={**facts, **where}, environment=move.to_env
        ),
    ]
    try:
        runtime.store.append_many(drafts, required=True)
    except StoreError as exc:
        reason = Reason("record-required", str(exc), "make the lineage store writable, then retry")
        denied = conclude(
            "data-movement",
            move.subject,
            [*decision.reasons, reason],
            runtime.policy,
            move.to_env,
        )
        return MovementEvaluation(denied, move, evaluation.subject)
    return evaluation


def grant_data_approval(
    runtime: Runtime, spec: str, to: str, key: SigningKey, comment: str = ""
) -> RecordedApproval:
    """Sign (with the approver's own ``key``) and record an approval of moving a dataset into
    ``to``. :class:`Denied` when the approver may not approve it (they registered or produced
    it, or hold none of the roles the target's rule lists)."""
    from envguard.approvals import (
        RecordedApproval,
        approval_entity,
        approver_name,
        new_statement,
        sign_as_approver,
    )

    policy = runtime.policy
    target = policy.resolve_target(to)
    approver = approver_name(policy, key, runtime.environ)
    subject = identify(runtime, spec)
    store = runtime.store
    rule = policy.promotion_rule(target)
    reasons: list[Reason] = []
    produced = approver in _creators(store, subject.entity)
    if rule is not None and rule.separation_of_duties and produced:
        reasons.append(
            Reason(
                "separation-of-duties",
                f"{approver} registered or produced {subject.entity} and cannot approve "
                f"moving it into {target!r}",
                "ask someone who did not register or produce it",
                guideline=9,
            )
        )
    wanted = set(rule.approver_roles) if rule else set()
    if wanted and not wanted & policy.roles_of(approver):
        reasons.append(
            Reason(
                "approver-role",
                f"{approver} holds none of the roles {', '.join(sorted(wanted))}",
                f"ask a holder of {' or '.join(sorted(wanted))}",
                guideline=9,
            )
        )
    if reasons:
        decision = conclude("approval", subject.entity, reasons, policy, target)
        if not decision.allowed:
            raise Denied(decision)
    statement = new_statement(
        approver, "dataset", subject.entity, target, comment, sha256=subject.digest
    )
    signature = sign_as_approver(key, statement)
    draft = runtime.draft(
        "approval.granted",
        entities=[approval_entity(statement["id"]), subject.entity],
        payload={"statement": statement, **signature},
        environment=target,
    )
    draft = replace(draft, actor=approver)  # the signer named by the key, not the process
    event = store.append(draft, required=True)
    seq = event.seq if event is not None else 0
    return RecordedApproval(statement, seq, approver, signature["keyid"], signature["signature"])
