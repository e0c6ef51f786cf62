"""Decisions: allow or deny, with every reason, each naming its rule and a remedy.

The deciders here are pure functions of the policy and the facts an integration gathered (the
environment, a dataset's lineage, a model version's approvals). They never raise for a denial:
they return a :class:`Decision`, and the caller enforces it (``decision.enforce()`` raises
:class:`~envguard.errors.Denied` in ``enforce`` mode). In ``warn`` mode a denial becomes a warning
and in ``audit`` mode a record; the decision says which, and keeps every reason either way.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from envguard.errors import Denied

if TYPE_CHECKING:
    from envguard.policy import Policy
    from envguard.policy.schema import PromotionRule

__all__ = [
    "Approval",
    "DataLineage",
    "DataMovement",
    "Decision",
    "Outcome",
    "PromotionRequest",
    "Reason",
    "conclude",
    "decide_data_movement",
    "decide_data_use",
    "decide_promotion",
]


class Outcome(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    WARN = "warn"  # would have been denied; mode = warn
    RECORD = "record"  # would have been denied; mode = audit


@dataclass(frozen=True)
class Reason:
    """Why a decision is not a plain allow: the rule, what is wrong, and how to fix it."""

    rule: str
    message: str
    remedy: str
    guideline: int | None = None  # the I&S-05 implementation guideline the rule serves
    plugin: str | None = None  # set when a plugin gave the reason

    def __str__(self) -> str:
        by = f" [{self.plugin}]" if self.plugin else ""
        return f"{self.rule}{by}: {self.message}\n    fix: {self.remedy}"


@dataclass(frozen=True)
class Decision:
    action: str  # "data-use", "promotion", "data-movement"
    subject: str
    outcome: Outcome
    reasons: tuple[Reason, ...]
    policy_sha256: str
    mode: str
    environment: str | None = None
    override: dict[str, str] | None = None

    @property
    def allowed(self) -> bool:
        """False only when the action must not happen."""
        return self.outcome is not Outcome.DENY

    @property
    def violated(self) -> bool:
        """True when any rule failed, whatever the mode made of it."""
        return bool(self.reasons)

    def explain(self) -> str:
        head = f"envguard {self.outcome.value}: {self.action} of {self.subject}"
        if self.environment:
            head += f" in environment {self.environment!r}"
        if self.override:
            head += f" (emergency override by {self.override['actor']}: {self.override['reason']})"
        if not self.reasons:
            return head
        return head + "\n" + "\n".join(f"  - {r}" for r in self.reasons)

    def enforce(self) -> Decision:
        """Raise :class:`~envguard.errors.Denied` when the outcome is deny; else return self."""
        if self.outcome is Outcome.DENY:
            raise Denied(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        data["allowed"] = self.allowed
        return data


def conclude(
    action: str,
    subject: str,
    reasons: Iterable[Reason],
    policy: Policy,
    environment: str | None = None,
    override: dict[str, str] | None = None,
) -> Decision:
    """Turn reasons into a decision under the policy's mode."""
    found = tuple(reasons)
    if not found or override:
        outcome = Outcome.ALLOW
    else:
        outcome = {"enforce": Outcome.DENY, "warn": Outcome.WARN, "audit": Outcome.RECORD}[
            policy.mode
        ]
    return Decision(
        action, subject, outcome, found, policy.sha256, policy.mode, environment, override
    )


# -- facts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataLineage:
    """What is known of one dataset: where it (or any ancestor) came from, and any masking proof.

    ``origin_env`` is the production environment found in its lineage when there is one,
    otherwise its own origin (None when unknown). ``chain`` lists the steps from that origin to
    this data, for the message. ``masked_by`` names a masking proof that verified.
    ``digest_source`` is set by a plugin that supplies ``digest`` (the sha256) without reading the
    data, from a record it trusts (DVC's state: md5, size, mtime and inode); it says which record,
    and lets the data-use gate skip hashing the file.
    """

    subject: str
    digest: str | None = None
    origin_env: str | None = None
    chain: tuple[str, ...] = ()
    masked_by: str | None = None
    digest_source: str | None = None


@dataclass(frozen=True)
class Approval:
    approver: str
    target_env: str
    model_version: str
    time: str = ""
    comment: str = ""
    valid: bool = True  # signature verified and bound to the version's current files
    invalid_reason: str = ""


@dataclass(frozen=True)
class PromotionRequest:
    model_version: str  # models:/NAME/VERSION
    target_env: str
    actor: str
    source_env: str | None = None
    creators: frozenset[str] = frozenset()  # the run's creator and the version's creator
    approvals: tuple[Approval, ...] = ()
    lineage: tuple[DataLineage, ...] = ()
    evaluated_in: frozenset[str] = frozenset()
    override_reason: str | None = None


@dataclass(frozen=True)
class DataMovement:
    subject: str
    from_env: str | None
    to_env: str
    actor: str
    lineage: DataLineage = field(default_factory=lambda: DataLineage(""))
    approvals: tuple[Approval, ...] = ()
    creators: frozenset[str] = frozenset()


# -- deciders ------------------------------------------------------------------------------------
def _lineage_reasons(
    policy: Policy, env: str, data: DataLineage, requirement: str = "masked"
) -> Iterator[Reason]:
    if requirement == "any" or policy.is_prod(env):
        return
    origin = data.origin_env
    if origin is None or not policy.has_environment(origin) or not policy.is_prod(origin):
        return
    if requirement == "masked" and data.masked_by:
        return
    chain = " -> ".join(data.chain) if data.chain else data.subject
    digest = f" (sha256 {data.digest[:12]}…)" if data.digest else ""
    if requirement == "non-prod":
        yield Reason(
            "lineage-non-prod",
            f"{data.subject}{digest} has production lineage from {origin!r} ({chain}); "
            f"the policy allows no production data here, masked or not",
            f"use data that never came from {origin!r}",
            guideline=5,
        )
        return
    yield Reason(
        "prod-data-in-non-prod",
        f"{data.subject}{digest} has production lineage from {origin!r} ({chain}) "
        f"and no masking proof that verifies, but environment {env!r} is non-production",
        f"mask it first: envguard mask {data.subject} -o MASKED_FILE, then use MASKED_FILE",
        guideline=5,
    )


def decide_data_use(policy: Policy, env: str, data: DataLineage) -> Decision:
    """May a process in ``env`` use ``data``? (I&S-05 guideline 5)."""
    policy.check_environment(env)
    return conclude("data-use", data.subject, _lineage_reasons(policy, env, data), policy, env)


def _approval_reasons(
    policy: Policy,
    rule: PromotionRule,
    target: str,
    subject: str,
    approvals: Iterable[Approval],
    creators: frozenset[str],
) -> Iterator[Reason]:
    if rule.approvals <= 0:
        return
    counted: set[str] = set()
    refused: list[str] = []
    wanted = set(rule.approver_roles)
    for approval in approvals:
        who = approval.approver
        if approval.target_env != target or approval.model_version != subject:
            continue
        if not approval.valid:
            refused.append(f"{who} (approval invalid: {approval.invalid_reason or 'unverified'})")
        elif rule.separation_of_duties and who in creators:
            refused.append(f"{who} (created the model; separation of duties)")
        elif wanted and not wanted & policy.roles_of(who):
            refused.append(f"{who} (holds none of the roles {', '.join(sorted(wanted))})")
        else:
            counted.add(who)
    if len(counted) >= rule.approvals:
        return
    have = f"{len(counted)} counted" + (f" ({', '.join(sorted(counted))})" if counted else "")
    extra = f"; not counted: {'; '.join(refused)}" if refused else ""
    roles = f" from role {' or '.join(sorted(wanted))}" if wanted else ""
    yield Reason(
        "approvals",
        f"{target!r} needs {rule.approvals} approval(s){roles}; {have}{extra}",
        f"ask {rule.approvals - len(counted)} more approver(s) to run: "
        f"envguard approve {subject} --to {target}",
        guideline=10 if subject.startswith("models:/") else 9,
    )


def decide_promotion(policy: Policy, request: PromotionRequest) -> Decision:
    """May this model version enter ``request.target_env``? Every rule reports independently."""
    from envguard.policy.schema import PromotionRule

    target = request.target_env
    policy.environment(target)
    rule = policy.promotion_rule(target) or PromotionRule()
    reasons: list[Reason] = list(
        _approval_reasons(
            policy, rule, target, request.model_version, request.approvals, request.creators
        )
    )
    if rule.allowed_sources and request.source_env not in rule.allowed_sources:
        reasons.append(
            Reason(
                "allowed-sources",
                f"{request.model_version} comes from {request.source_env or 'an unknown'!r} "
                f"environment; {target!r} accepts only from {', '.join(rule.allowed_sources)}",
                f"promote it to {rule.allowed_sources[0]!r} first",
                guideline=10,
            )
        )
    for data in request.lineage:
        # A promotion checks the lineage as if the data were used in a non-production tier:
        # what matters is whether the model carries unmasked production data.
        reasons.extend(_lineage_for_model(policy, data, rule.lineage))
    if rule.require_evaluation_in and rule.require_evaluation_in not in request.evaluated_in:
        reasons.append(
            Reason(
                "evaluation",
                f"no evaluation run of {request.model_version} in {rule.require_evaluation_in!r}",
                f"evaluate it in {rule.require_evaluation_in!r} "
                f"(ENVGUARD_ENV={rule.require_evaluation_in}) and log the run",
                guideline=5,
            )
        )
    override = None
    if reasons and request.override_reason:
        held = policy.roles_of(request.actor) & set(rule.override_roles)
        if held:
            override = {
                "actor": request.actor,
                "reason": request.override_reason,
                "role": sorted(held)[0],
            }
        else:
            reasons.append(
                Reason(
                    "override",
                    f"{request.actor} asked for an emergency override but holds none of "
                    f"the override roles ({', '.join(rule.override_roles) or 'none allowed'})",
                    "ask a holder of an override role, or meet the rules above",
                    guideline=5,
                )
            )
    return conclude("promotion", request.model_version, reasons, policy, target, override)


def _lineage_for_model(policy: Policy, data: DataLineage, requirement: str) -> Iterator[Reason]:
    non_prod = next(
        (name for name, env in policy.spec.environments.items() if env.tier == "non-prod"), None
    )
    if non_prod is None:
        return
    yield from _lineage_reasons(policy, non_prod, data, requirement)


def decide_data_movement(policy: Policy, move: DataMovement) -> Decision:
    """May data move from one environment to another? (I&S-05 guideline 9). The target's
    promotion rule applies as to a model version: approvals (roles, separation of duties from
    whoever registered or produced the data), allowed source environments, and lineage
    (production data into a non-production environment only with a masking proof)."""
    from envguard.policy.schema import PromotionRule

    policy.environment(move.to_env)
    rule = policy.promotion_rule(move.to_env) or PromotionRule()
    reasons = list(
        _approval_reasons(policy, rule, move.to_env, move.subject, move.approvals, move.creators)
    )
    if rule.allowed_sources and move.from_env not in rule.allowed_sources:
        reasons.append(
            Reason(
                "allowed-sources",
                f"{move.subject} is in {move.from_env or 'an unknown'!r} environment; "
                f"{move.to_env!r} accepts data only from {', '.join(rule.allowed_sources)}",
                f"move it to {rule.allowed_sources[0]!r} first: envguard data promote "
                f"{move.subject} --to {rule.allowed_sources[0]}"
                if move.from_env
                else "record where it comes from: envguard data register PATH --env ENV",
                guideline=9,
            )
        )
    reasons.extend(_lineage_reasons(policy, move.to_env, move.lineage, rule.lineage))
    return conclude("data-movement", move.subject, reasons, policy, move.to_env)
