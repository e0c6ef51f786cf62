"""The emergency override: explicit, named, only for the policy's override roles, recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.integration.registry.conftest import PASSWORDS, RegistryServer, train

pytestmark = pytest.mark.integration


def test_override_only_by_an_override_role_and_recorded(
    registry_server: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    envguard_cli: Callable[..., CliResult],
) -> None:
    def as_user(user: str, *args: str) -> CliResult:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_server.url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS[user])
        return envguard_cli(*args)

    trained = train(registry_server, monkeypatch)  # in train: no staging, no approvals
    for user in ("grace", "margaret"):  # both may edit the model in MLflow
        granted = registry_server.http("admin").post(
            f"{registry_server.url}/api/3.0/mlflow/users/permissions/grant",
            json={
                "username": user,
                "resource_type": "registered_model",
                "resource_id": trained.name,
                "permission": "EDIT",
            },
        )
        assert granted.status_code == 200, granted.text

    # No override role: refused, and every rule is still listed.
    grace = as_user("grace", "promote", trained.uri, "--to", "production", "--override", "hurry")
    assert grace.exit_code == 1, grace.stdout
    assert "grace asked for an emergency override but holds none" in grace.stdout
    assert "needs 2 approval(s)" in grace.stdout
    # The override is explicit: the plain route still refuses margaret.
    plain = as_user("margaret", "promote", trained.uri, "--to", "production")
    assert plain.exit_code == 1
    assert (
        as_user("margaret", "promote", trained.uri, "--to", "prod", "--override", " ").exit_code
        == 2
    )

    done = as_user(
        "margaret", "promote", trained.uri, "--to", "production", "--override", "INC-42 rollback"
    )
    assert done.exit_code == 0, done.stdout + done.stderr
    assert "emergency override by margaret: INC-42 rollback" in done.stdout
    assert f"moved {trained.uri} to @production" in done.stdout
    client = registry_server.client("ada", monkeypatch)
    assert client.get_model_version_by_alias(trained.name, "production").version == (
        trained.version
    )

    overridden = [
        e for e in registry_server.events("promotion.overridden") if trained.uri in e.entities
    ]
    assert [e.actor for e in overridden] == ["margaret"]
    decision = overridden[0].payload["decision"]
    assert decision["override"] == {
        "actor": "margaret",
        "reason": "INC-42 rollback",
        "role": "incident-commander",
    }
    assert {r["rule"] for r in decision["reasons"]} >= {"approvals", "allowed-sources"}

    monkeypatch.setenv("ENVGUARD_CONFIG", str(registry_server.policy))
    out = registry_server.folder / f"report-{trained.version}-{trained.name}"
    report = envguard_cli("audit", "report", "--output", f"{out}.html", "--json", f"{out}.json")
    assert report.exit_code == 0, report.stderr
    concerns = json.loads(Path(f"{out}.json").read_text())["caiq"]["concerns"]
    assert any("margaret: INC-42 rollback" in c for c in concerns), concerns
