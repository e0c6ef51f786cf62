"""Every way around the gate that the issue names is tried through raw HTTP and refused."""

from __future__ import annotations

import pytest
import requests

from tests.integration.registry.conftest import RegistryServer, Trained, train

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def approved(registry_server: RegistryServer) -> Trained:
    """A version grace approved for prod (so it, its run and its files are protected)."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        trained = train(registry_server, monkeypatch)
    finally:
        monkeypatch.undo()
    response = registry_server.http("grace").post(
        f"{registry_server.url}/api/2.0/envguard/approvals",
        json={"name": trained.name, "version": trained.version, "to": "prod"},
    )
    assert response.status_code == 200, response.text
    return trained


def _refused(response: requests.Response, rule: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    assert rule in body["message"], body["message"]


def test_envguard_run_tags_are_written_only_consistently(
    registry_server: RegistryServer, approved: Trained
) -> None:
    ada, url = registry_server.http("ada"), registry_server.url
    run = approved.run_id
    _refused(
        ada.post(
            f"{url}/api/2.0/mlflow/runs/set-tag",
            json={"run_id": run, "key": "envguard.env", "value": "test"},
        ),
        "an origin never changes",
    )
    _refused(
        ada.post(
            f"{url}/ajax-api/2.0/mlflow/runs/log-batch",
            json={"run_id": run, "tags": [{"key": "envguard.actor", "value": "grace"}]},
        ),
        "the authenticated user is 'ada'",
    )
    _refused(
        ada.post(
            f"{url}/api/2.0/mlflow/runs/delete-tag", json={"run_id": run, "key": "envguard.env"}
        ),
        "cannot be deleted",
    )
    experiment = ada.post(
        f"{url}/api/2.0/mlflow/experiments/create", json={"name": f"bypass-{approved.name}"}
    ).json()["experiment_id"]
    _refused(
        ada.post(
            f"{url}/api/2.0/mlflow/runs/create",
            json={
                "experiment_id": experiment,
                "tags": [{"key": "envguard.env", "value": "staging-ish"}],
            },
        ),
        "declares no environment",
    )
    ok = ada.post(
        f"{url}/api/2.0/mlflow/runs/set-tag",
        json={"run_id": run, "key": "note", "value": "free text"},
    )
    assert ok.status_code == 200, ok.text


def test_envguard_tags_on_models_and_versions_are_protected(
    registry_server: RegistryServer, approved: Trained
) -> None:
    ada, url = registry_server.http("ada"), registry_server.url
    _refused(
        ada.post(
            f"{url}/api/2.0/mlflow/model-versions/set-tag",
            json={
                "name": approved.name,
                "version": approved.version,
                "key": "envguard.approved",
                "value": "yes",
            },
        ),
        "envguard writes no such tag",
    )
    _refused(
        ada.post(
            f"{url}/api/2.0/mlflow/registered-models/set-tag",
            json={"name": approved.name, "key": "envguard.env", "value": "nowhere"},
        ),
        "declares no environment",
    )


def test_approved_versions_their_runs_and_files_cannot_be_removed_or_swapped(
    registry_server: RegistryServer, approved: Trained
) -> None:
    ada, admin, url = (
        registry_server.http("ada"),
        registry_server.http("admin"),
        registry_server.url,
    )
    _refused(
        admin.delete(
            f"{url}/api/2.0/mlflow/model-versions/delete",
            json={"name": approved.name, "version": approved.version},
        ),
        "protected-version",
    )
    _refused(
        admin.delete(
            f"{url}/api/2.0/mlflow/registered-models/delete", json={"name": approved.name}
        ),
        "protected-version",
    )
    _refused(
        ada.post(f"{url}/api/2.0/mlflow/runs/delete", json={"run_id": approved.run_id}),
        "deleting the source run",
    )
    experiment = ada.get(
        f"{url}/api/2.0/mlflow/runs/get", params={"run_id": approved.run_id}
    ).json()["run"]["info"]["experiment_id"]
    target = f"{experiment}/{approved.run_id}/artifacts/model/weights.bin"
    _refused(
        ada.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/{target}", data=b"swapped"),
        "writing its files",
    )
    other = f"{experiment}/{approved.run_id}/artifacts/notes/readme.txt"
    assert (
        ada.put(f"{url}/api/2.0/mlflow-artifacts/artifacts/{other}", data=b"hi").status_code == 200
    )


def test_versions_enter_a_bound_model_only_by_promotion(
    registry_server: RegistryServer, approved: Trained
) -> None:
    admin, url = registry_server.http("admin"), registry_server.url
    created = admin.post(
        f"{url}/api/2.0/mlflow/registered-models/create", json={"name": "fraud-detector-prod"}
    )
    assert created.status_code in (200, 400), created.text
    _refused(
        admin.post(
            f"{url}/api/2.0/mlflow/model-versions/create",
            json={
                "name": "fraud-detector-prod",
                "source": f"runs:/{approved.run_id}/model",
                "run_id": approved.run_id,
            },
        ),
        "bound-model",
    )
    _refused(
        admin.post(
            f"{url}/api/2.0/mlflow/model-versions/create",
            json={"name": "fraud-detector-prod", "source": approved.uri, "run_id": approved.run_id},
        ),
        "needs 2 approval(s)",  # the copy is a promotion of the source version into prod
    )
    _refused(
        admin.post(
            f"{url}/api/2.0/mlflow/registered-models/rename",
            json={"name": approved.name, "new_name": "fraud-detector-prod"},
        ),
        "binds 'fraud-detector-prod'",
    )


def test_graphql_mutations_and_unknown_registry_routes_are_refused(
    registry_server: RegistryServer,
) -> None:
    ada, url = registry_server.http("ada"), registry_server.url
    _refused(
        ada.post(
            f"{url}/graphql",
            json={"query": 'mutation { testMutation(inputString: "x") { output } }'},
        ),
        "graphql-mutation",
    )
    read = ada.post(f"{url}/graphql", json={"query": 'query { test(inputString: "x") { output } }'})
    assert read.status_code == 200, read.text
    experiment = ada.post(
        f"{url}/api/2.0/mlflow/experiments/create", json={"name": "promptlab-bypass"}
    ).json()["experiment_id"]
    _refused(
        ada.post(
            f"{url}/ajax-api/2.0/mlflow/runs/create-promptlab-run",
            json={"experiment_id": experiment},
        ),
        "unknown-route",
    )
