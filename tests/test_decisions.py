"""The core deciders: data use, promotion and data movement, under each mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from envguard.decisions import (
    Approval,
    DataLineage,
    DataMovement,
    Outcome,
    PromotionRequest,
    decide_data_movement,
    decide_data_use,
    decide_promotion,
)
from envguard.errors import Denied
from envguard.policy import Policy, load_policy
from tests.conftest import EXAMPLE_POLICY

MV = "models:/fraud/3"
RAW = DataLineage("data/customers.csv", "ab" * 32, "prod", ("prod-data", "prepare"))


def policy_with_mode(tmp_path: Path, mode: str) -> Policy:
    path = tmp_path / "envguard.toml"
    path.write_text(EXAMPLE_POLICY.read_text().replace('mode = "enforce"', f'mode = "{mode}"'))
    return load_policy(path)


@pytest.fixture
def policy() -> Policy:
    return load_policy(EXAMPLE_POLICY)


def test_prod_data_in_non_prod_is_denied_with_remedy(policy: Policy) -> None:
    decision = decide_data_use(policy, "train", RAW)
    assert decision.outcome is Outcome.DENY
    assert not decision.allowed
    (reason,) = decision.reasons
    assert reason.rule == "prod-data-in-non-prod"
    assert "production lineage from 'prod' (prod-data -> prepare)" in reason.message
    assert reason.remedy.startswith("mask it first: envguard mask data/customers.csv")
    assert decision.policy_sha256 == policy.sha256
    with pytest.raises(Denied) as info:
        decision.enforce()
    assert "envguard deny: data-use of data/customers.csv in environment 'train'" in str(info.value)


def test_masked_prod_data_and_prod_use_are_allowed(policy: Policy) -> None:
    masked = DataLineage("masked.csv", "cd" * 32, "prod", ("prod-data", "mask"), masked_by="p1")
    assert decide_data_use(policy, "train", masked).outcome is Outcome.ALLOW
    assert decide_data_use(policy, "prod", RAW).outcome is Outcome.ALLOW
    assert decide_data_use(policy, "train", DataLineage("x.csv")).outcome is Outcome.ALLOW
    dev = DataLineage("dev.csv", None, "train")
    assert decide_data_use(policy, "test", dev).allowed


@pytest.mark.parametrize(("mode", "outcome"), [("warn", Outcome.WARN), ("audit", Outcome.RECORD)])
def test_modes_turn_denials_into_warnings_or_records(
    tmp_path: Path, mode: str, outcome: Outcome
) -> None:
    decision = decide_data_use(policy_with_mode(tmp_path, mode), "train", RAW)
    assert decision.outcome is outcome
    assert decision.allowed
    assert decision.violated
    assert decision.mode == mode
    assert decision.enforce() is decision


def approval(who: str, target: str = "prod", valid: bool = True) -> Approval:
    return Approval(who, target, MV, valid=valid, invalid_reason="" if valid else "bad signature")


def request(**changes: object) -> PromotionRequest:
    base: dict[str, object] = {
        "model_version": MV,
        "target_env": "prod",
        "actor": "margaret",
        "source_env": "test",
        "creators": frozenset({"ada"}),
        "approvals": (approval("grace"), approval("linus")),
        "lineage": (),
        "evaluated_in": frozenset({"test"}),
    }
    base.update(changes)
    return PromotionRequest(**base)  # type: ignore[arg-type]


def test_promotion_with_everything_is_allowed(policy: Policy) -> None:
    decision = decide_promotion(policy, request())
    assert decision.outcome is Outcome.ALLOW
    assert decision.reasons == ()


def test_promotion_reports_every_missing_rule_at_once(policy: Policy) -> None:
    decision = decide_promotion(
        policy,
        request(
            approvals=(
                approval("ada"),
                approval("margaret"),
                approval("grace", valid=False),
                approval("linus", target="test"),
            ),
            source_env="train",
            lineage=(RAW,),
            evaluated_in=frozenset(),
        ),
    )
    assert decision.outcome is Outcome.DENY
    rules = [r.rule for r in decision.reasons]
    assert rules == ["approvals", "allowed-sources", "prod-data-in-non-prod", "evaluation"]
    message = decision.reasons[0].message
    assert "'prod' needs 2 approval(s) from role approver; 0 counted" in message
    assert "ada (created the model; separation of duties)" in message
    assert "margaret (holds none of the roles approver)" in message
    assert "grace (approval invalid: bad signature)" in message
    assert "linus" not in message  # an approval for another target is not an approval here
    assert (
        decision.reasons[0].remedy
        == f"ask 2 more approver(s) to run: envguard approve {MV} --to prod"
    )


def test_separation_of_duties_can_be_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "envguard.toml"
    text = EXAMPLE_POLICY.read_text().replace(
        "separation_of_duties = true     # the model's", "separation_of_duties = false     # the"
    )
    path.write_text(text)
    policy = load_policy(path)
    decision = decide_promotion(policy, request(approvals=(approval("ada"), approval("grace"))))
    assert decision.outcome is Outcome.ALLOW


def test_emergency_override_is_explicit_and_recorded(policy: Policy) -> None:
    denied = decide_promotion(
        policy, request(approvals=(), override_reason="incident 42", actor="grace")
    )
    assert denied.outcome is Outcome.DENY
    assert denied.reasons[-1].rule == "override"
    allowed = decide_promotion(policy, request(approvals=(), override_reason="incident 42"))
    assert allowed.outcome is Outcome.ALLOW
    assert allowed.override == {
        "actor": "margaret",
        "reason": "incident 42",
        "role": "incident-commander",
    }
    assert [r.rule for r in allowed.reasons] == ["approvals"]  # kept: what was overridden


def test_data_movement_needs_target_approvals_and_masking(policy: Policy) -> None:
    to_prod = DataMovement("curated.csv", "test", "prod", "ada", DataLineage("curated.csv"))
    decision = decide_data_movement(policy, to_prod)
    assert [r.rule for r in decision.reasons] == ["approvals"]
    assert decision.reasons[0].guideline == 9
    skipping_test = DataMovement("curated.csv", "train", "prod", "ada", DataLineage("c"))
    assert [r.rule for r in decide_data_movement(policy, skipping_test).reasons] == [
        "approvals",
        "allowed-sources",
    ]
    approved = DataMovement(
        "curated.csv",
        "test",
        "prod",
        "ada",
        DataLineage("curated.csv"),
        approvals=(
            Approval("grace", "prod", "curated.csv"),
            Approval("linus", "prod", "curated.csv"),
        ),
    )
    assert decide_data_movement(policy, approved).allowed
    raw_to_test = DataMovement("raw.csv", "prod", "test", "ada", RAW)
    assert [r.rule for r in decide_data_movement(policy, raw_to_test).reasons] == [
        "allowed-sources",
        "prod-data-in-non-prod",
    ]
    # Approved by its own producer: separation of duties leaves the count at one.
    self_approved = DataMovement(
        "curated.csv",
        "test",
        "prod",
        "grace",
        DataLineage("curated.csv"),
        approvals=(
            Approval("grace", "prod", "curated.csv"),
            Approval("linus", "prod", "curated.csv"),
        ),
        creators=frozenset({"grace"}),
    )
    (reason,) = decide_data_movement(policy, self_approved).reasons
    assert reason.rule == "approvals"
    assert "separation of duties" in reason.message
