"""Every dataset input carries the environment and envguard's own full digest beside MLflow's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from envguard.errors import Denied
from tests.integration.mlflow.conftest import Site

pytestmark = pytest.mark.integration


def _input_tags(client: object, run_id: str, name: str) -> dict[str, str]:
    run = client.get_run(run_id)  # type: ignore[attr-defined]
    (found,) = [d for d in run.inputs.dataset_inputs if d.dataset.name == name]
    return {t.key: t.value for t in found.tags}


def test_the_data_digest_is_stable() -> None:
    """The sha256 of a DataFrame is an identity in the lineage log: the same data must give the
    same digest in every envguard version, or registered production data would go unrecognised.
    Index, column names of any type, missing values, objects, datetimes, duplicate names."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd
    from envguard_mlflow.datasets import data_sha256

    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "name": ["a", None, "c"],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            3: [0.5, 1.5, np.nan],
        },
        index=pd.Index([10, 20, 30], name="k"),
    )
    assert data_sha256(SimpleNamespace(df=frame)) == (
        "7a270087ff862aaa19e4b965bfc486985ffb0dd4dfdbefb0dd336403c9092b73"
    )
    twice = pd.concat([frame[["id"]], frame[["id"]]], axis=1)
    assert list(twice.columns) == ["id", "id"]
    digest = data_sha256(SimpleNamespace(df=twice))
    assert digest is not None
    assert digest != data_sha256(SimpleNamespace(df=frame[["id"]]))


def test_the_digest_covers_every_row_where_mlflows_stops_at_10000(
    guarded: Site, tracking_uri: str
) -> None:
    import mlflow
    import pandas as pd

    mlflow.set_tracking_uri(tracking_uri)
    base = pd.DataFrame({"amount": range(10_001), "email": [f"u{i}@x" for i in range(10_001)]})
    changed = base.copy()
    changed.loc[10_000, "email"] = "someone-else@x"
    first = mlflow.data.from_pandas(base, name="payments-a")
    second = mlflow.data.from_pandas(changed, name="payments-b")
    assert first.digest == second.digest  # MLflow's digest: first 10,000 rows only
    with mlflow.start_run() as run:
        mlflow.log_input(first, context="training")
        mlflow.log_input(second, context="training")
    client = mlflow.MlflowClient(tracking_uri)
    a = _input_tags(client, run.info.run_id, "payments-a")
    b = _input_tags(client, run.info.run_id, "payments-b")
    assert a["envguard.sha256_of"] == b["envguard.sha256_of"] == "data"
    assert a["envguard.sha256"] != b["envguard.sha256"]
    assert a["envguard.env"] == "train"
    assert a["mlflow.data.context"] == "training"
    assert "envguard.mlflow_digest" not in a  # it is the input's own dataset.digest
    # the lineage log holds both digests of each use: envguard's sha256 and MLflow's digest
    from envguard_mlflow.observations import flush_all

    from envguard.runtime import current

    flush_all()
    used = current().store.events(entity=f"run:{run.info.run_id}", kind="dataset.used")
    recorded = {e.entities[0]: e.payload["details"] for e in used}
    for tags, name in ((a, "payments-a"), (b, "payments-b")):
        details = recorded[f"sha256:{tags['envguard.sha256']}"]
        assert details == {"dataset": name, "mlflow_digest": first.digest, "sha256_of": "data"}


def test_a_file_source_is_digested_when_the_data_is_not_at_hand(
    guarded: Site, tracking_uri: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Dataset, DatasetInput, InputTag

    csv = tmp_path / "customers.csv"
    csv.write_text("id,email\n1,a@x\n2,b@x\n")
    gone = tmp_path / "gone.csv"
    client = MlflowClient(tracking_uri)
    run = client.create_run("0")
    inputs = [
        DatasetInput(
            Dataset("customers", "abcd1234", "local", json.dumps({"uri": str(csv)})),
            [InputTag("mlflow.data.context", "eval")],
        ),
        DatasetInput(Dataset("vanished", "", "local", json.dumps({"uri": str(gone)}))),
        DatasetInput(Dataset("remote", "ffff0000", "s3", json.dumps({"uri": "s3://b/k.csv"}))),
    ]
    client.log_inputs(run.info.run_id, datasets=inputs)
    tags = _input_tags(client, run.info.run_id, "customers")
    assert tags["envguard.sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert tags["envguard.sha256_of"] == "file"
    assert tags["mlflow.data.context"] == "eval"
    vanished = _input_tags(client, run.info.run_id, "vanished")
    assert vanished["envguard.sha256_of"] == "source-missing"
    assert "envguard.sha256" not in vanished
    assert _input_tags(client, run.info.run_id, "remote")["envguard.sha256_of"] == "remote-source"

    forged = DatasetInput(
        Dataset("forged", "abcd1234", "local", json.dumps({"uri": str(csv)})),
        [InputTag("envguard.sha256", "0" * 64)],
    )
    with pytest.raises(Denied, match=r"dataset 'forged': tag envguard\.sha256='0+' contradicts"):
        client.log_inputs(run.info.run_id, datasets=[forged])
    names = {d.dataset.name for d in client.get_run(run.info.run_id).inputs.dataset_inputs}
    assert "forged" not in names
    from envguard_mlflow.observations import flush_all

    from envguard.runtime import current

    client.set_terminated(run.info.run_id)
    flush_all()  # a run shorter than FLUSH_AFTER leaves its observational records waiting
    used = list(current().store.events(entity=f"run:{run.info.run_id}", kind="dataset.used"))
    assert f"sha256:{tags['envguard.sha256']}" in {e.entities[0] for e in used}


def test_production_data_is_refused_at_log_input(
    guarded: Site, tracking_uri: str, tmp_path: Path
) -> None:
    """The data-use gate: a DataFrame read from a file registered as production data is refused
    at ``log_input`` in `train`, naming the data, its origin and the remedy; MLflow records
    nothing of it; the decision is in the lineage log. Other data goes through and is recorded
    as used by the run."""
    import mlflow
    import pandas as pd

    from envguard.runtime import current

    raw = tmp_path / "customers.csv"
    raw.write_text("id,email\n1,ada@example.com\n2,grace@example.com\n")
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    runtime = current()
    runtime.store.append(
        runtime.draft(
            "dataset.registered",
            entities=[f"sha256:{digest}"],
            payload={"origin": "prod", "path": str(raw)},
        )
    )
    mlflow.set_tracking_uri(tracking_uri)
    frame = pd.read_csv(raw)
    dataset = mlflow.data.from_pandas(frame, source=str(raw), name="customers")
    clean = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2]}), name="synthetic")
    with mlflow.start_run() as run:
        with pytest.raises(Denied) as caught:
            mlflow.log_input(dataset, context="training")
        mlflow.log_input(clean, context="training")
    message = str(caught.value)
    assert "has production lineage from 'prod'" in message
    assert f"envguard mask {raw}" in message
    client = mlflow.MlflowClient(tracking_uri)
    names = [d.dataset.name for d in client.get_run(run.info.run_id).inputs.dataset_inputs]
    assert names == ["synthetic"]
    denied = [e for e in runtime.store.events(entity=f"sha256:{digest}") if e.kind == "decision"]
    assert denied
    assert denied[-1].payload["decision"]["outcome"] == "deny"
    touching = list(runtime.store.events(entity=f"run:{run.info.run_id}"))
    assert [e.kind for e in touching] == ["decision", "dataset.used"]  # refused, then used
    assert touching[0].links == []  # a refused use adds no lineage edge
    assert [link.dst for link in touching[1].links] == [f"run:{run.info.run_id}"]


def _register_prod(frame: object) -> str:
    """Give the data of ``frame`` production lineage (as a production run's use would)."""
    from types import SimpleNamespace

    from envguard_mlflow.datasets import data_sha256

    from envguard.runtime import current

    sha = data_sha256(SimpleNamespace(df=frame))
    assert sha is not None
    runtime = current()
    runtime.store.append(
        runtime.draft("dataset.registered", entities=[f"sha256:{sha}"], payload={"origin": "prod"})
    )
    return sha


def test_an_autologged_training_set_is_digested_and_gated(guarded: Site) -> None:
    """sklearn autolog logs fit()'s DataFrame from MLflow's worker thread: envguard finds the
    data by MLflow's digest, records its full sha256, and refuses production data: fit() raises
    (past MLflow's ``except Exception``), the run is FAILED and takes no more writes."""
    from types import SimpleNamespace

    import mlflow
    import pandas as pd
    from envguard_mlflow.datasets import data_sha256
    from sklearn.linear_model import LinearRegression

    from envguard.errors import DeniedUnderAutologging, EnvGuardDenied
    from envguard.runtime import current

    mlflow.set_tracking_uri(guarded.train_uri)
    clean = pd.DataFrame({"a": range(40), "b": [i * 2.0 for i in range(40)]})
    prod = clean * 3 + 1
    target = pd.Series(range(40))
    prod_sha = _register_prod(prod)
    mlflow.sklearn.autolog(log_models=False, log_post_training_metrics=False)
    try:
        with mlflow.start_run() as ok:
            LinearRegression().fit(clean, target)
        with pytest.raises(EnvGuardDenied) as caught, mlflow.start_run() as refused:
            LinearRegression().fit(prod, target)
        with pytest.raises(DeniedUnderAutologging):  # the autologger's own run, too
            LinearRegression().fit(prod, target)
        managed = mlflow.last_active_run()
        mlflow.end_run()  # what MLflow does at exit: the run stays FAILED
    finally:
        mlflow.sklearn.autolog(disable=True)
    assert isinstance(caught.value, DeniedUnderAutologging)
    assert not isinstance(caught.value, Exception)  # what lets it pass MLflow's safe_patch
    message = str(caught.value)
    assert "prod-data-in-non-prod" in message
    assert "'prod'" in message
    assert f"sha256:{prod_sha[:12]}" in message  # the chain
    assert "envguard mask" in message
    assert f"envguard stopped run {refused.info.run_id}" in message
    client = mlflow.MlflowClient(guarded.train_uri)
    (logged,) = client.get_run(ok.info.run_id).inputs.dataset_inputs
    tags = {t.key: t.value for t in logged.tags}
    assert tags["envguard.sha256_of"] == "data"
    assert tags["envguard.sha256"] == data_sha256(SimpleNamespace(df=clean))
    assert tags["mlflow.data.context"] == "train"
    assert client.get_run(ok.info.run_id).info.status == "FINISHED"
    for run_id in (refused.info.run_id, managed.info.run_id):
        assert client.get_run(run_id).inputs.dataset_inputs == []
        assert client.get_run(run_id).info.status == "FAILED"
        with pytest.raises(EnvGuardDenied):
            client.log_param(run_id, "after", "1")
    decisions = [
        e for e in current().store.events(entity=f"sha256:{prod_sha}") if e.kind == "decision"
    ]
    assert decisions[-1].payload["decision"]["outcome"] == "deny"
    assert f"run:{managed.info.run_id}" in decisions[-1].entities


@pytest.mark.parametrize(("mode", "outcome"), [("warn", "warn"), ("audit", "record")])
def test_an_autologged_production_set_in_warn_or_audit_mode_trains_and_is_recorded(
    guarded: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str, outcome: str
) -> None:
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from envguard import runtime
    from tests.integration.mlflow.conftest import write_policy

    monkeypatch.setenv("ENVGUARD_CONFIG", str(write_policy(guarded, tmp_path / "p.toml", mode)))
    runtime.reset()
    mlflow.set_tracking_uri(guarded.train_uri)
    prod = pd.DataFrame({"a": range(30), "b": [i * 5.0 for i in range(30)], mode: 1})
    prod_sha = _register_prod(prod)
    mlflow.sklearn.autolog(log_models=False, log_post_training_metrics=False)
    try:
        with mlflow.start_run() as run:
            LinearRegression().fit(prod, pd.Series(range(30)))
    finally:
        mlflow.sklearn.autolog(disable=True)
    client = mlflow.MlflowClient(guarded.train_uri)
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    (logged,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert {t.key: t.value for t in logged.tags}["envguard.sha256"] == prod_sha
    events = runtime.current().store.events(entity=f"sha256:{prod_sha}")
    used = [e for e in events if e.kind == "dataset.used"]  # allowed, with the violation in it
    assert used[-1].payload["decision"]["outcome"] == outcome
    assert [link.dst for link in used[-1].links] == [f"run:{run.info.run_id}"]
