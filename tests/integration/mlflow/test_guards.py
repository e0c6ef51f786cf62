"""Spoofed envguard.* tags, environment crossings and ENVGUARD_DISABLE, in this process, against
the local sqlite store and the real server."""

from __future__ import annotations

import pytest

from envguard import runtime
from envguard.errors import Denied
from tests.integration.mlflow.conftest import Site, write_policy

pytestmark = pytest.mark.integration


def _envguard_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.startswith("envguard.")}


def test_client_created_runs_are_tagged_without_any_run_context_provider(
    guarded: Site, tracking_uri: str
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    run = client.create_run("0")
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["envguard.env"] == "train"
    assert tags["envguard.tier"] == "non-prod"
    client.set_terminated(run.info.run_id)


@pytest.mark.parametrize(
    "spoof",
    [
        "fluent set_tag",
        "fluent set_tags (log_batch)",
        "client set_tag",
        "client log_batch",
        "unknown envguard key",
        "delete envguard tag",
    ],
)
def test_hand_written_envguard_run_tags_are_refused(
    guarded: Site, tracking_uri: str, spoof: str
) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    with mlflow.start_run() as run:
        run_id = run.info.run_id
        attempts = {
            "fluent set_tag": lambda: mlflow.set_tag("envguard.env", "prod"),
            "fluent set_tags (log_batch)": lambda: mlflow.set_tags(
                {"team": "fraud", "envguard.tier": "prod"}
            ),
            "client set_tag": lambda: client.set_tag(run_id, "envguard.policy_sha256", "0" * 64),
            "client log_batch": lambda: client.log_batch(
                run_id, tags=[RunTag("envguard.actor", "mallory")]
            ),
            "unknown envguard key": lambda: client.set_tag(run_id, "envguard.approved", "yes"),
            "delete envguard tag": lambda: client.delete_tag(run_id, "envguard.env"),
        }
        with pytest.raises(Denied) as caught:
            attempts[spoof]()
        assert "protected-tag" in str(caught.value)
        mlflow.set_tag("envguard.env", "train")  # agreeing with envguard is no spoof
    tags = client.get_run(run_id).data.tags
    assert _envguard_tags(tags)["envguard.env"] == "train"
    assert tags["envguard.tier"] == "non-prod"
    assert "envguard.approved" not in tags
    assert "team" not in tags  # a refused batch writes none of its tags


def test_a_run_declares_the_version_it_evaluates(guarded: Site, tracking_uri: str) -> None:
    """``envguard.evaluates`` is the user's to write, in the form the server checks."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run() as run:
        mlflow.set_tag("envguard.evaluates", "models:/churn/3")
        with pytest.raises(Denied, match=r"envguard\.evaluates='churn v3' does not have the form"):
            mlflow.set_tag("envguard.evaluates", "churn v3")
    tags = MlflowClient(tracking_uri).get_run(run.info.run_id).data.tags
    assert tags["envguard.evaluates"] == "models:/churn/3"


def test_tags_passed_to_create_run_and_logged_models_are_checked(
    guarded: Site, tracking_uri: str
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    before = len(client.search_runs(["0"], max_results=1000))
    with pytest.raises(Denied, match=r"envguard\.env='prod' contradicts envguard"):
        client.create_run("0", tags={"envguard.env": "prod", "purpose": "x"})
    assert len(client.search_runs(["0"], max_results=1000)) == before

    model = client.create_logged_model("0", name="spoofed")
    assert model.tags["envguard.env"] == "train"
    with pytest.raises(Denied, match="protected-tag"):
        client.set_logged_model_tags(model.model_id, {"envguard.env": "prod"})
    with pytest.raises(Denied, match="may not be deleted"):
        client.delete_logged_model_tag(model.model_id, "envguard.env")
    assert client.get_logged_model(model.model_id).tags["envguard.env"] == "train"


def _switch(monkeypatch: pytest.MonkeyPatch, env_name: str) -> None:
    monkeypatch.setenv("ENVGUARD_ENV", env_name)
    runtime.reset()


def test_a_store_of_another_tier_is_refused_at_the_first_call(
    guarded: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    with pytest.raises(Denied) as caught:
        MlflowClient(guarded.prod_uri).search_experiments()
    message = str(caught.value)
    assert "this process runs in 'train' (non-prod, from ENVGUARD_ENV)" in message
    assert f"MLflow tracking URI {guarded.prod_uri} belongs to 'prod' (prod)" in message
    assert not (guarded.root / "prod.db").exists()  # refused before MLflow created anything

    crossing = MlflowClient(guarded.train_uri, registry_uri=guarded.prod_registry_uri)
    with pytest.raises(Denied, match=r"registry URI .* belongs to 'prod'"):
        crossing.search_registered_models()
    assert not (guarded.root / "prod-registry.db").exists()

    _switch(monkeypatch, "prod")  # a production process may not write to train's store either
    with pytest.raises(Denied, match=r"runs in 'prod' \(prod.*belongs to 'train' \(non-prod\)"):
        MlflowClient(guarded.train_uri).create_run("0")

    _switch(monkeypatch, "test")  # same tier: allowed
    run = MlflowClient(guarded.train_uri).create_run("0")
    assert run.data.tags["envguard.env"] == "test"


def test_an_artifact_location_of_another_tier_is_refused(
    guarded: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(guarded.train_uri)
    with pytest.raises(Denied, match=r"artifact location s3://acme-ml-prod/mlflow/x belongs"):
        client.create_experiment("leaky", artifact_location="s3://acme-ml-prod/mlflow/x")
    assert client.get_experiment_by_name("leaky") is None

    monkeypatch.setenv("ENVGUARD_DISABLE", "1")  # made behind envguard's back
    runtime.reset()
    experiment = client.create_experiment("prod-bucket", artifact_location="s3://acme-ml-prod/y")
    monkeypatch.delenv("ENVGUARD_DISABLE")
    runtime.reset()
    with pytest.raises(Denied, match="environment-crossing"):
        client.create_run(experiment)
    assert client.search_runs([experiment]) == []


def test_strict_uris_refuses_an_unlisted_store_and_warn_mode_only_warns(
    guarded: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    from pathlib import Path

    from mlflow import MlflowClient

    folder = Path(str(tmp_path))
    strict = write_policy(guarded, folder / "strict.toml", strict=True)
    monkeypatch.setenv("ENVGUARD_CONFIG", str(strict))
    runtime.reset()
    unlisted = f"sqlite:///{folder}/unlisted.db"
    with pytest.raises(Denied, match=r"unlisted-uri.*belongs to no environment.*strict_uris"):
        MlflowClient(unlisted).search_experiments()
    assert not (folder / "unlisted.db").exists()

    warn = write_policy(guarded, folder / "warn.toml", mode="warn")
    monkeypatch.setenv("ENVGUARD_CONFIG", str(warn))
    runtime.reset()
    client = MlflowClient(guarded.train_uri)
    run = client.create_run("0")
    with pytest.warns(UserWarning, match="envguard warn: tag-write"):
        client.set_tag(run.info.run_id, "envguard.env", "prod")
    assert client.get_run(run.info.run_id).data.tags["envguard.env"] == "prod"


def test_envguard_disable_behaves_like_plain_mlflow(
    guarded: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envguard_mlflow.stores import build_tracking_store
    from mlflow import MlflowClient
    from mlflow.store.tracking.rest_store import RestStore

    monkeypatch.setenv("ENVGUARD_DISABLE", "1")
    runtime.reset()
    client = MlflowClient(guarded.train_uri)
    run = client.create_run("0", tags={"envguard.env": "anything"})
    client.set_tag(run.info.run_id, "envguard.tier", "whatever")
    assert _envguard_tags(client.get_run(run.info.run_id).data.tags) == {
        "envguard.env": "anything",
        "envguard.tier": "whatever",
    }
    assert type(build_tracking_store("http://127.0.0.1:9")) is RestStore  # MLflow's own class


def test_model_versions_record_the_logged_model_and_refuse_envguard_tags(
    guarded: Site, tracking_uri: str
) -> None:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)  # the sqlite registry resolves models:/ through it
    client = MlflowClient(tracking_uri)
    run = client.create_run("0")
    model = client.create_logged_model("0", source_run_id=run.info.run_id)
    name = f"envguard-it-{run.info.run_id[:8]}"
    with pytest.raises(Denied, match="protected-tag"):
        client.create_registered_model(name, tags={"envguard.env": "prod"})
    client.create_registered_model(name)
    version = client.create_model_version(
        name, f"models:/{model.model_id}", run_id=run.info.run_id, model_id=model.model_id
    )
    tags = client.get_model_version(name, version.version).tags
    assert tags["envguard.model_id"] == model.model_id  # the OSS registry drops model_id
    assert tags["envguard.created_in"] == "train"
    with pytest.raises(Denied, match="protected-tag"):
        client.set_model_version_tag(name, version.version, "envguard.env", "prod")
    with pytest.raises(Denied, match="protected-tag"):
        client.set_registered_model_tag(name, "envguard.env", "prod")
    with pytest.raises(Denied, match="may not be deleted"):
        client.delete_model_version_tag(name, version.version, "envguard.model_id")


def test_run_context_provider_gives_the_same_tags(guarded: Site) -> None:
    from envguard_mlflow.facts import current_facts
    from mlflow.tracking.context.registry import resolve_tags

    facts = current_facts()
    assert facts is not None
    assert _envguard_tags(resolve_tags()) == facts.tags


def test_an_unknown_tracking_scheme_fails_with_mlflows_message(guarded: Site) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match=r"unsupported URI 'nosuch://x'.*'sqlite'"):
        MlflowClient("nosuch://x").create_run("0")
    assert MlflowClient(guarded.train_uri).search_experiments()  # nothing else is affected


def test_the_logged_model_id_is_read_from_a_models_source() -> None:
    from envguard_mlflow.registry_store import model_id_from_source

    assert model_id_from_source("models:/m-0123abcd") == "m-0123abcd"
    assert model_id_from_source("models:/fraud/3") is None
    assert model_id_from_source("runs:/abc/model") is None
