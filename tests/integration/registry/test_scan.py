"""``envguard audit scan`` against the real MLflow server with envguard's gate (the session's)
and a real S3 server (moto): a clean setup scans clean; then a version moved into the production
alias straight in MLflow's database, a version in a model the policy binds to production
(``[registry.models]``) with no promotion, files changed under a promoted version (and under
its copy in a bound model), a run without
environment tags, an object without tags and a production object in the development bucket are
all found, recorded once and alerted once.

The session's registry server holds every other test's models and runs, so its scan is never
clean as a whole: the MLflow part asserts on this test's own entities; the clean exit code is
checked on a setup of its own (S3 and a fresh lineage log).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.integration.registry.conftest import ADMIN, RegistryServer, Trained, evaluate, train
from tests.servers import MotoServer

pytestmark = pytest.mark.integration

SCAN_POLICY = """\
version = 1
default_env = "train"

[environments.train]
tier = "non-prod"
s3 = ["scan-dev"]

[environments.test]
tier = "non-prod"

[environments.prod]
tier = "prod"
mlflow_tracking_uris = [{urls}]
s3 = ["scan-prod"]

[registry.aliases]
staging = "test"
production = "prod"
champion = "prod"

[registry.stages]
Staging = "test"
Production = "prod"

[registry.models]
{models}

[alerts]
file = "{alerts}"
"""


@pytest.fixture
def s3(moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A freshly reset moto server with the buckets scan-dev (train) and scan-prod (prod) and one
    tagged object in each; dummy credentials in the environment, as a user's AWS_* would be."""
    import boto3

    moto.api("reset")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("BOTOCORE_EXPERIMENTAL__PLUGINS", raising=False)
    for name, value in MotoServer.ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.session.Session().client("s3")
    for bucket in ("scan-dev", "scan-prod"):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket="scan-dev", Key="data/a.csv", Body=b"a", Tagging="envguard.env=train")
    client.put_object(Bucket="scan-prod", Key="data/b.csv", Body=b"b", Tagging="envguard.env=prod")
    return client


def _scan(envguard_cli: Any, policy: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from envguard import runtime

    monkeypatch.setenv("ENVGUARD_CONFIG", str(policy))
    monkeypatch.setenv("ENVGUARD_ENV", "train")
    monkeypatch.setenv("ENVGUARD_DISABLED_PLUGINS", "dvc,gx")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    runtime.reset()
    try:
        return envguard_cli("audit", "scan", "--json")
    finally:
        monkeypatch.delenv("ENVGUARD_CONFIG")
        runtime.reset()


def test_a_clean_setup_scans_clean(
    s3: Any, tmp_path: Path, envguard_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "envguard.toml"
    policy.write_text(SCAN_POLICY.format(urls="", alerts="alerts.jsonl", models=""))
    clean = _scan(envguard_cli, policy, monkeypatch)
    assert clean.exit_code == 0, clean.stdout + clean.stderr
    assert clean.json()["swept"]["objects in s3://scan-dev"] == 1
    assert clean.json()["swept"]["objects in s3://scan-prod"] == 1


def _to_prod(server: RegistryServer, monkeypatch: pytest.MonkeyPatch, trained: Trained) -> None:
    """Through the gate: staging, an evaluation in test, two approvals, production."""
    client = server.client("ada", monkeypatch)
    client.set_registered_model_alias(trained.name, "staging", trained.version)
    evaluate(server, monkeypatch, trained)
    for approver in ("grace", "linus"):
        response = server.http(approver).post(
            f"{server.url}/api/2.0/envguard/approvals",
            json={"name": trained.name, "version": trained.version, "to": "prod"},
        )
        assert response.status_code == 200, response.text
    client.set_registered_model_alias(trained.name, "production", trained.version)
    client.set_registered_model_alias(trained.name, "champion", trained.version)


def _mine(result: Any, *entities: str) -> set[tuple[str, str]]:
    return {(f["rule"], f["entity"]) for f in result.json()["findings"] if f["entity"] in entities}


def test_scan_finds_what_went_around_the_gate(
    registry_server: RegistryServer,
    s3: Any,
    envguard_cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = registry_server
    policy = server.folder / "scan.toml"
    first = train(server, monkeypatch, weights="first")
    _to_prod(server, monkeypatch, first)
    second = train(server, monkeypatch, weights="second", model=first.name)
    # A model the scan's policy binds to prod ([registry.models]; the server's policy does not):
    # its version got there around the gate. And a copy of the promoted first version into
    # another bound model: the copy's source has an allowed promotion, so the copy is in order.
    third = train(server, monkeypatch, weights="third")
    client = server.client("admin", monkeypatch)
    copy = client.copy_model_version(first.uri, f"{first.name}-prod")
    v3, v1_copy = third.uri, f"models:/{copy.name}/{copy.version}"
    models = f'"{third.name}" = "prod"\n"{copy.name}" = "prod"'
    policy.write_text(
        SCAN_POLICY.format(urls=f'"{server.url}"', alerts="scan-alerts.jsonl", models=models)
    )
    untagged_run = client.create_run(client.create_experiment(f"untagged-{first.name}"))
    run = f"run:{untagged_run.info.run_id}"
    v1, v2 = first.uri, second.uri
    dev = "s3://scan-dev/data"
    mine = (v1, v2, v3, v1_copy, run, f"run:{first.run_id}", f"run:{second.run_id}")
    mine = (*mine, f"run:{third.run_id}", f"{dev}/a.csv")

    before = _scan(envguard_cli, policy, monkeypatch)
    assert before.exit_code in (0, 1), before.stdout + before.stderr
    assert _mine(before, *mine) == {("run-untagged", run), ("registry-bypass", v3)}, before.stdout
    bound = next(f for f in before.json()["findings"] if f["entity"] == v3)
    assert bound["evidence"]["placement"] == f"bound model {third.name}"
    assert bound["severity"] == "critical"

    # Around the gate: @production moved to the second version by an UPDATE of MLflow's
    # database; the files of the first (still @champion) overwritten on the artifact store ...
    db = sqlite3.connect(server.folder / "mlflow.db")
    db.execute(
        "UPDATE registered_model_aliases SET version = ? WHERE name = ? AND alias = 'production'",
        (int(second.version), second.name),
    )
    db.commit()
    db.close()
    weights = next((server.folder / "artifacts").rglob(f"{first.run_id}/artifacts/model/*.bin"))
    weights.write_text("swapped")
    # ... an object without tags, production data in the development bucket.
    s3.put_object(Bucket="scan-dev", Key="data/untagged.csv", Body=b"u")
    s3.put_object(Bucket="scan-dev", Key="data/copied.csv", Body=b"p", Tagging="envguard.env=prod")

    found = _scan(envguard_cli, policy, monkeypatch)
    assert found.exit_code == 1, found.stdout + found.stderr
    copied, untagged = f"{dev}/copied.csv", f"{dev}/untagged.csv"
    assert _mine(found, *mine, copied, untagged, "s3://scan-dev") == {
        ("registry-bypass", v2),
        ("registry-bypass", v3),
        ("binding-mismatch", v1),
        ("binding-mismatch", v1_copy),
        ("run-untagged", run),
        ("object-untagged", untagged),
        ("object-prod-in-non-prod", copied),
        ("bucket-unencrypted", "s3://scan-dev"),
    } - ({("bucket-unencrypted", "s3://scan-dev")} if _encrypted(s3) else set())
    by_entity = {f["entity"]: f for f in found.json()["findings"]}
    bypass = by_entity[v2]
    assert bypass["severity"] == "critical"
    assert bypass["guideline"] == 12
    assert "alias @production" in bypass["message"]
    assert bypass["remedy"]
    assert by_entity[v1]["evidence"]["changed"] == ["weights.bin"]
    new = {f["id"] for f in found.json()["findings"] if f["new"]}
    assert {by_entity[e]["id"] for e in (v1, v2, copied, untagged)} <= new
    violations = server.events("violation.found")  # the gate's too, in a whole session
    recorded = [e.payload["finding"]["id"] for e in violations if "finding" in e.payload]
    assert new <= set(recorded)
    alerts = [json.loads(x) for x in (server.folder / "scan-alerts.jsonl").read_text().splitlines()]
    assert {a["decision"]["subject"] for a in alerts} >= {v1, v2, copied, untagged, run}

    again = _scan(envguard_cli, policy, monkeypatch)
    assert again.exit_code == 1
    assert {f["id"] for f in again.json()["findings"]} >= {by_entity[e]["id"] for e in (v1, v2)}
    assert [f for f in again.json()["findings"] if f["entity"] in mine and f["new"]] == []
    assert len(server.events("violation.found")) == len(violations)  # nothing recorded again
    assert recorded.count(by_entity[v2]["id"]) == 1


def _encrypted(s3: Any) -> bool:
    """moto, like AWS since 2023, may give new buckets default encryption."""
    try:
        s3.get_bucket_encryption(Bucket="scan-dev")
    except s3.exceptions.ClientError:
        return False
    return True
