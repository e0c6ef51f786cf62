"""``envguard data promote``: moving a dataset between environments under the target's promotion
rule (I&S-05 guideline 9), with approvals signed by the approvers' own keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from envguard import hookimpl
from envguard.decisions import DataMovement, Reason
from envguard.digests import sha256_file
from tests.conftest import CliResult
from tests.integration.registry.test_local_registry import new_key

Cli = Callable[..., CliResult]


@pytest.fixture
def signed_workspace(workspace: Path) -> dict[str, Path]:
    """The example policy, with ada, grace and linus as approval signers; their key files."""
    keys: dict[str, Path] = {}
    policy = workspace / "envguard.toml"
    text = policy.read_text()
    for name in ("ada", "grace", "linus"):
        keys[name], public = new_key(workspace, name)
        text += f'\n[signers.{name}]\npublic_key = "{public}"\npurposes = ["approval"]\n'
    policy.write_text(text)
    (workspace / "curated.csv").write_text("id,score\n1,0.4\n2,0.9\n")
    return keys


def moved(envguard_cli: Cli) -> list[dict[str, object]]:
    return list(envguard_cli("audit", "log", "--kind", "data.moved", "--json").json())


def test_dataset_moves_train_test_prod_with_signed_approvals(
    signed_workspace: dict[str, Path], monkeypatch: pytest.MonkeyPatch, envguard_cli: Cli
) -> None:
    keys = signed_workspace
    digest = f"sha256:{sha256_file('curated.csv')}"
    monkeypatch.setenv("ENVGUARD_ACTOR", "ada")
    assert envguard_cli("data", "register", "curated.csv", "--env", "train").exit_code == 0

    # Straight from train to prod: refused, every reason at once with its fix.
    skip = envguard_cli("data", "promote", "curated.csv", "--to", "prod", "--json")
    assert skip.exit_code == 1
    reasons = skip.json()["decision"]["reasons"]
    assert [r["rule"] for r in reasons] == ["approvals", "allowed-sources"]
    assert "envguard data promote sha256:" in reasons[1]["remedy"]
    assert skip.json()["from_env"] == "train"

    # Into test: no approvals needed, and it comes from train. Recorded, so it is in test now.
    into_test = envguard_cli("data", "promote", "curated.csv", "--to", "test")
    assert into_test.exit_code == 0, into_test.stdout + into_test.stderr
    assert "is now in 'test'" in into_test.stdout
    assert [(e["payload"]["from"], e["payload"]["to"]) for e in moved(envguard_cli)] == [
        ("train", "test")
    ]
    again = envguard_cli("data", "promote", "curated.csv", "--to", "test")
    assert again.exit_code == 2
    assert "already in 'test'" in again.stderr

    # ada registered it: her approval is refused (separation of duties), nothing recorded.
    own = envguard_cli("approve", "curated.csv", "--to", "prod", "--key-file", str(keys["ada"]))
    assert own.exit_code == 1
    assert "separation-of-duties" in own.stderr
    granted = envguard_cli(
        "approve", "curated.csv", "--to", "prod", "--key-file", str(keys["grace"]), "--json"
    )
    assert granted.exit_code == 0, granted.stderr
    assert granted.json()["approval"]["approver"] == "grace"
    monkeypatch.setenv("ENVGUARD_APPROVER_KEY", keys["linus"].read_text())
    by_digest = envguard_cli("approve", digest, "--to", "prod", "--comment", "looks right")
    assert by_digest.exit_code == 0, by_digest.stderr
    listed = envguard_cli("approvals", "list", "curated.csv", "--json").json()["approvals"]
    assert sorted(a["approver"] for a in listed if a["valid"]) == ["grace", "linus"]

    # A revoked approval no longer counts.
    linus = next(a["id"] for a in listed if a["approver"] == "linus")
    assert envguard_cli("approvals", "revoke", linus).exit_code == 0
    one = envguard_cli("data", "promote", "curated.csv", "--to", "prod", "--dry-run", "--json")
    assert one.exit_code == 1
    assert "linus (approval invalid: revoked by ada" in one.stdout
    assert envguard_cli("approve", digest, "--to", "prod").exit_code == 0

    dry = envguard_cli("data", "promote", "curated.csv", "--to", "prod", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stdout
    assert dry.json()["moved"] is False
    assert len(moved(envguard_cli)) == 1  # a dry run records nothing

    monkeypatch.setenv("ENVGUARD_ACTOR", "margaret")
    done = envguard_cli("data", "promote", "curated.csv", "--to", "prod")
    assert done.exit_code == 0, done.stdout
    assert [(e["payload"]["to"], e["actor"]) for e in moved(envguard_cli)] == [
        ("test", "ada"),
        ("prod", "margaret"),
    ]
    decisions = envguard_cli("audit", "log", "--kind", "decision", "--entity", digest, "--json")
    outcomes = [e["payload"]["decision"]["outcome"] for e in decisions.json()]
    assert outcomes == ["deny", "allow", "allow"]  # the refusal, then the two moves
    assert envguard_cli("audit", "verify").exit_code == 0

    # The evidence report lists the movements beside the promotions (auditing guideline 5).
    report = envguard_cli("audit", "report", "-o", "report.html", "--json", "report.json")
    assert report.exit_code == 0, report.stderr
    evidence = json.loads(Path("report.json").read_text())
    assert [(m["outcome"], m["from"], m["to"]) for m in evidence["data_movements"]] == [
        ("deny", "train", "prod"),
        ("allow", "train", "test"),
        ("allow", "test", "prod"),
    ]
    assert evidence["data_uses"]["items"] == []  # movements are not data uses
    assert "Data moved between environments" in Path("report.html").read_text()


def test_production_data_into_test_needs_a_masking_proof(
    signed_workspace: dict[str, Path], envguard_cli: Cli
) -> None:
    assert envguard_cli("data", "register", "curated.csv", "--env", "prod").exit_code == 0
    result = envguard_cli("data", "promote", "curated.csv", "--to", "test", "--json")
    assert result.exit_code == 1
    rules = [r["rule"] for r in result.json()["decision"]["reasons"]]
    assert rules == ["allowed-sources", "prod-data-in-non-prod"]
    assert moved(envguard_cli) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "--to", "test"], "missing.csv: no such file"),
        (["curated.csv", "--to", "nowhere"], "unknown environment 'nowhere'"),
        (["sha256:abc", "--to", "test"], "sha256:abc: a digest is sha256: and 64"),
        ([".", "--to", "test"], ".: is a folder"),
    ],
)
def test_bad_input_is_one_clear_message_and_exit_2(
    signed_workspace: dict[str, Path], envguard_cli: Cli, args: list[str], message: str
) -> None:
    result = envguard_cli("data", "promote", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_approval_without_a_trusted_key_is_a_configuration_error(
    signed_workspace: dict[str, Path], envguard_cli: Cli
) -> None:
    missing = envguard_cli("approve", "curated.csv", "--to", "prod")
    assert missing.exit_code == 2
    assert "--key-file FILE or set ENVGUARD_APPROVER_KEY" in missing.stderr
    stranger, _ = new_key(Path.cwd(), "stranger")
    unknown = envguard_cli("approve", "curated.csv", "--to", "prod", "--key-file", str(stranger))
    assert unknown.exit_code == 2
    assert "lists no signer with this key for approvals" in unknown.stderr


class Freeze:
    """A plugin that refuses every movement into prod, and one that fails."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    @hookimpl
    def envguard_check_data_movement(self, move: DataMovement, policy: object) -> list[Reason]:
        if self.fail:
            raise RuntimeError("change-freeze service down")
        return [Reason("freeze", f"{move.to_env} is frozen", "wait for the freeze to end")]


@pytest.mark.parametrize("fail", [False, True])
def test_plugins_add_reasons_and_fail_closed(signed_workspace: dict[str, Path], fail: bool) -> None:
    from envguard.movement import promote_data
    from envguard.plugins import PluginManager
    from envguard.runtime import Runtime

    plugins = PluginManager({})
    plugins.register(Freeze(fail), "freeze")
    runtime = Runtime(Path("envguard.toml"), environ={"ENVGUARD_ACTOR": "ada"}, plugins=plugins)
    evaluation = promote_data(runtime, "curated.csv", "train", dry_run=False)
    assert not evaluation.decision.allowed
    (reason,) = evaluation.decision.reasons  # the file's origin is unknown: any source is fine
    assert reason.plugin == "freeze"
    assert ("change-freeze service down" in reason.message) is fail
