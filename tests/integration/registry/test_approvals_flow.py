"""Approvals recorded by the server, and the whole path train -> test -> prod through the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.integration.registry.conftest import PASSWORDS, RegistryServer, evaluate, train

pytestmark = pytest.mark.integration


@pytest.fixture
def as_user(
    registry_server: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    envguard_cli: Callable[..., CliResult],
) -> Callable[..., CliResult]:
    """Run ``envguard ARGS`` as USER against the server, with MLflow's own variables."""

    def run(user: str, *args: str) -> CliResult:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_server.url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS[user])
        return envguard_cli(*args)

    return run


def test_train_evaluate_approve_and_promote(
    registry_server: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    as_user: Callable[..., CliResult],
) -> None:
    trained = train(registry_server, monkeypatch)
    staged = as_user("ada", "promote", trained.uri, "--to", "staging")
    assert staged.exit_code == 0, staged.stdout + staged.stderr
    assert f"moved {trained.uri} to @staging" in staged.stdout
    evaluate(registry_server, monkeypatch, trained)

    early = as_user("ada", "promote", trained.uri, "--to", "prod", "--dry-run")
    assert early.exit_code == 1
    assert "needs 2 approval(s)" in early.stdout

    own = as_user("ada", "approve", trained.uri, "--to", "production")
    assert own.exit_code == 1
    assert "separation-of-duties" in own.stderr

    grace = as_user("grace", "approve", trained.uri, "--to", "prod", "--comment", "AUC ok")
    assert grace.exit_code == 0, grace.stderr
    assert "approved" in grace.stdout
    linus = registry_server.http("linus").post(
        f"{registry_server.url}/api/2.0/envguard/approvals",
        json={"name": trained.name, "version": trained.version, "to": "champion"},
    )
    assert linus.status_code == 200, linus.text
    assert linus.json()["approval"]["target_env"] == "prod"

    listed = as_user("ada", "approvals", "list", trained.uri, "--json")
    assert listed.exit_code == 0, listed.stderr
    approvals = listed.json()["approvals"]
    assert sorted(a["approver"] for a in approvals) == ["grace", "linus"]
    assert all(a["valid"] for a in approvals)

    dry = as_user("ada", "promote", trained.uri, "--to", "production", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stdout
    assert dry.json()["decision"]["allowed"] is True
    assert dry.json()["moved"] is False
    client = registry_server.client("ada", monkeypatch)
    assert client.get_model_version(trained.name, trained.version).aliases == ["staging"]

    done = as_user("ada", "promote", trained.uri, "--to", "production")
    assert done.exit_code == 0, done.stdout + done.stderr
    assert client.get_model_version_by_alias(trained.name, "production").version == trained.version
    allowed = [e for e in registry_server.events("promotion.allowed") if trained.uri in e.entities]
    assert [e.actor for e in allowed] == ["ada", "ada"]  # staging, then production


def test_revoked_and_outdated_approvals_do_not_count(
    registry_server: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    as_user: Callable[..., CliResult],
) -> None:
    trained = train(registry_server, monkeypatch, weights="original")
    client = registry_server.client("ada", monkeypatch)
    client.set_registered_model_alias(trained.name, "staging", trained.version)
    evaluate(registry_server, monkeypatch, trained)
    assert as_user("grace", "approve", trained.uri, "--to", "prod").exit_code == 0
    assert as_user("linus", "approve", trained.uri, "--to", "prod").exit_code == 0
    approvals = as_user("linus", "approvals", "list", trained.uri, "--json").json()["approvals"]
    linus_id = next(a["id"] for a in approvals if a["approver"] == "linus")
    grace_id = next(a["id"] for a in approvals if a["approver"] == "grace")

    refused = as_user("linus", "approvals", "revoke", grace_id)
    assert refused.exit_code == 1
    assert "only they or an administrator" in refused.stderr
    assert as_user("linus", "approvals", "revoke", linus_id).exit_code == 0
    dry = as_user("ada", "promote", trained.uri, "--to", "prod", "--dry-run")
    assert dry.exit_code == 1
    assert "linus (approval invalid: revoked by linus" in dry.stdout

    assert as_user("linus", "approve", trained.uri, "--to", "prod").exit_code == 0
    assert as_user("ada", "promote", trained.uri, "--to", "prod", "--dry-run").exit_code == 0
    # The weights change underneath the approvals (written straight into the storage).
    weights = next(
        Path(registry_server.folder, "artifacts").rglob(f"{trained.run_id}/**/weights.bin")
    )
    weights.write_text("swapped")
    with pytest.raises(Exception, match="files changed since the approval"):
        client.set_registered_model_alias(trained.name, "production", trained.version)
