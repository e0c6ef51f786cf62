"""The server refuses promotions the policy does not allow, through MLflow's own routes."""

from __future__ import annotations

import pytest

from tests.integration.registry.conftest import RegistryServer, evaluate, train

pytestmark = pytest.mark.integration


def test_alias_to_production_is_refused_with_every_reason(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = train(registry_server, monkeypatch)
    response = registry_server.http("ada").post(
        f"{registry_server.url}/api/2.0/mlflow/registered-models/alias",
        json={"name": trained.name, "alias": "production", "version": trained.version},
    )
    assert response.status_code == 403
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    message = body["message"]
    for rule in ("approvals:", "allowed-sources:", "evaluation:"):
        assert rule in message, message
    assert f"envguard approve {trained.uri} --to prod" in message
    client = registry_server.client("ada", monkeypatch)
    assert client.get_model_version(trained.name, trained.version).aliases == []


def test_administrators_get_no_bypass(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = train(registry_server, monkeypatch)
    admin = registry_server.client("admin", monkeypatch)
    with pytest.raises(Exception, match="PERMISSION_DENIED") as caught:
        admin.set_registered_model_alias(trained.name, "champion", trained.version)
    assert "needs 2 approval(s)" in str(caught.value)


def test_stage_transition_is_gated_like_an_alias(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = train(registry_server, monkeypatch)
    response = registry_server.http("ada").post(
        f"{registry_server.url}/ajax-api/2.0/mlflow/model-versions/transition-stage",
        json={
            "name": trained.name,
            "version": trained.version,
            "stage": "Production",
            "archive_existing_versions": False,
        },
    )
    assert response.status_code == 403, response.text
    assert "allowed-sources" in response.json()["message"]
    allowed = registry_server.http("ada").post(
        f"{registry_server.url}/api/2.0/mlflow/model-versions/transition-stage",
        json={
            "name": trained.name,
            "version": trained.version,
            "stage": "Staging",
            "archive_existing_versions": False,
        },
    )
    assert allowed.status_code == 200, allowed.text


def test_alias_to_test_follows_the_rules_of_test(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = train(registry_server, monkeypatch)
    client = registry_server.client("ada", monkeypatch)
    client.set_registered_model_alias(ok.name, "staging", ok.version)
    assert client.get_model_version_by_alias(ok.name, "staging").version == ok.version
    wrong = train(registry_server, monkeypatch, env="prod")
    with pytest.raises(Exception, match="allowed-sources"):
        client.set_registered_model_alias(wrong.name, "staging", wrong.version)
    # An alias the policy does not map is not a promotion.
    client.set_registered_model_alias(wrong.name, "candidate", wrong.version)


def test_unmasked_production_data_in_the_lineage_is_refused(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envguard.lineage import open_store
    from envguard.lineage.events import EventDraft
    from envguard.policy import load_policy

    digest = "ab" * 32
    with open_store(load_policy(registry_server.policy)) as store:
        store.append(
            EventDraft(
                "dataset.registered",
                entities=[f"sha256:{digest}"],
                payload={"origin": "prod", "subject": "customers.csv"},
                actor="tests",
                environment="prod",
            )
        )
    trained = train(registry_server, monkeypatch, dataset_sha256=digest)
    no_tag = train(registry_server, monkeypatch, dataset_sha256=None)
    client = registry_server.client("ada", monkeypatch)
    with pytest.raises(Exception, match="prod-data-in-non-prod") as caught:
        client.set_registered_model_alias(trained.name, "staging", trained.version)
    assert "envguard mask" in str(caught.value)
    client.set_registered_model_alias(no_tag.name, "staging", no_tag.version)  # no datasets


def test_a_protected_alias_cannot_be_deleted(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = train(registry_server, monkeypatch)
    client = registry_server.client("ada", monkeypatch)
    client.set_registered_model_alias(trained.name, "staging", trained.version)
    response = registry_server.http("admin").delete(
        f"{registry_server.url}/api/2.0/mlflow/registered-models/alias",
        json={"name": trained.name, "alias": "staging"},
    )
    assert response.status_code == 403
    assert "protected-alias" in response.json()["message"]
    assert client.get_model_version_by_alias(trained.name, "staging").version == trained.version


def test_every_promotion_is_recorded_with_the_authenticated_actor(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = train(registry_server, monkeypatch)
    evaluate(registry_server, monkeypatch, trained)
    admin = registry_server.client("admin", monkeypatch)
    with pytest.raises(Exception, match="PERMISSION_DENIED"):
        admin.set_registered_model_alias(trained.name, "production", trained.version)
    denied = [e for e in registry_server.events("promotion.denied") if trained.uri in e.entities]
    requested = [
        e for e in registry_server.events("promotion.requested") if trained.uri in e.entities
    ]
    assert [e.actor for e in requested] == ["admin"]
    assert [e.actor for e in denied] == ["admin"]
    facts = denied[0].payload["facts"]
    assert "ada" in facts["creators"]
    assert facts["evaluated_in"] == ["test"]
    assert facts["binding"]["files"]["weights.bin"]
