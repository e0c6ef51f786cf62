"""Evidence the gate relies on cannot be forged, and prompts are told apart from models."""

from __future__ import annotations

import pytest

from tests.integration.registry.conftest import RegistryServer, evaluate, train

pytestmark = pytest.mark.integration


def test_an_approval_written_straight_into_the_log_does_not_count(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envguard.lineage import open_store
    from envguard.lineage.events import EventDraft
    from envguard.policy import load_policy

    trained = train(registry_server, monkeypatch)
    client = registry_server.client("ada", monkeypatch)
    client.set_registered_model_alias(trained.name, "staging", trained.version)
    evaluate(registry_server, monkeypatch, trained)
    real = registry_server.http("grace").post(
        f"{registry_server.url}/api/2.0/envguard/approvals",
        json={"name": trained.name, "version": trained.version, "to": "prod"},
    )
    assert real.status_code == 200, real.text
    forged_statement = {**real.json()["approval"], "id": "f0f0f0f0", "approver": "linus"}
    with open_store(load_policy(registry_server.policy)) as store:
        store.append(
            EventDraft(
                "approval.granted",
                entities=["approval:f0f0f0f0", trained.uri],
                payload={
                    "statement": forged_statement,
                    "keyid": real.json()["keyid"],
                    "signature": real.json()["signature"],  # grace's, over another statement
                },
                actor="linus",
                environment="prod",
            )
        )
    listed = registry_server.http("ada").get(
        f"{registry_server.url}/api/2.0/envguard/approvals",
        params={"name": trained.name, "version": trained.version},
    )
    by_id = {a["id"]: a for a in listed.json()["approvals"]}
    assert by_id["f0f0f0f0"]["valid"] is False
    assert "signature" in by_id["f0f0f0f0"]["problems"][0]
    with pytest.raises(Exception, match=r"1 counted \(grace\).*linus \(approval invalid"):
        client.set_registered_model_alias(trained.name, "production", trained.version)


def test_prompt_aliases_are_not_model_promotions(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.genai

    registry_server.client("ada", monkeypatch)  # credentials for mlflow.genai's own client
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_server.url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry_server.url)
    prompt = mlflow.genai.register_prompt(name="greeting-prompt", template="Hello {{name}}")
    mlflow.genai.set_prompt_alias("greeting-prompt", alias="production", version=prompt.version)
    loaded = mlflow.genai.load_prompt("prompts:/greeting-prompt@production")
    assert loaded.version == prompt.version
