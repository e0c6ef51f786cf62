"""``envguard audit lineage models:/NAME/VERSION`` over what a real guarded server recorded."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import CliResult
from tests.integration.registry.conftest import RegistryServer, evaluate, train

pytestmark = pytest.mark.integration


def test_a_model_versions_lineage_answers_the_auditor(
    registry_server: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    envguard_cli: Callable[..., CliResult],
) -> None:
    trained = train(registry_server, monkeypatch)
    client = registry_server.client("ada", monkeypatch)
    client.set_registered_model_alias(trained.name, "staging", trained.version)
    eval_run = evaluate(registry_server, monkeypatch, trained)
    approved = registry_server.http("grace").post(
        f"{registry_server.url}/api/2.0/envguard/approvals",
        json={"name": trained.name, "version": trained.version, "to": "prod", "comment": "AUC ok"},
    )
    assert approved.status_code == 200, approved.text
    with pytest.raises(Exception, match="needs 2 approval"):
        client.set_registered_model_alias(trained.name, "production", trained.version)

    monkeypatch.setenv("ENVGUARD_CONFIG", str(registry_server.policy))
    result = envguard_cli("audit", "lineage", trained.uri, "--json")
    assert result.exit_code == 0, result.stderr
    answer = result.json()
    assert answer["schema"] == "envguard.audit-lineage/v1"
    (version,) = [m for m in answer["model_versions"] if m["entity"] == trained.uri]
    assert version["created"]["actor"] == "ada"
    assert version["produced_by"] == [f"run:{trained.run_id}"]
    assert version["evaluated_by"] == [f"run:{eval_run}"]
    runs = {r["run_id"]: r for r in answer["runs"]}
    assert runs[trained.run_id]["roles"] == ["produced"]
    assert runs[trained.run_id]["user"] == "ada"
    assert runs[eval_run]["roles"] == ["evaluated"]
    (approval,) = answer["approvals"]
    assert (approval["approver"], approval["comment"], approval["target_env"]) == (
        "grace",
        "AUC ok",
        "prod",
    )
    assert approval["valid"] is True, approval["problems"]
    outcomes = [(p["target_env"], p["outcome"]) for p in answer["promotions"]]
    assert outcomes == [("test", "allow"), ("prod", "deny")]
    denied = answer["promotions"][1]
    assert denied["actor"] == "ada"
    assert any(r["rule"] == "approvals" for r in denied["reasons"]), denied["reasons"]

    tree = envguard_cli("audit", "lineage", trained.uri)
    assert tree.exit_code == 0, tree.stderr
    assert "\x1b[" not in tree.stdout  # no colours outside a terminal
    assert f"registered from run:{trained.run_id[:12]}" in tree.stdout
    assert "evaluated by run:" in tree.stdout
    assert "by grace → prod" in tree.stdout
    assert '"AUC ok"' in tree.stdout
    assert "└── " in tree.stdout
    assert "DENY" in tree.stdout
