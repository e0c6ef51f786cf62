"""An unmodified autologging script (scikit-learn, ``mlflow.autolog()``) that fits on production
data in `train` is stopped: ``fit()`` raises, the run is FAILED, the refusal is in the log."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.mlflow.conftest import Site, clean_environ
from tests.integration.mlflow.test_datasets import _register_prod
from tests.integration.mlflow.test_training_script import FAST

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("train_autolog.py")


def test_an_autologged_fit_on_production_data_raises_and_fails_the_run(
    guarded: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import pandas as pd
    from mlflow import MlflowClient

    from envguard import runtime

    workdir = guarded.root / "autolog-script"
    workdir.mkdir()
    shutil.copy(SCRIPT, workdir / "train.py")
    shutil.copy(guarded.policy, workdir / "envguard.toml")
    rng = np.random.default_rng(7)
    table = {"age": rng.integers(18, 90, 300), "spend": rng.random(300) * 100.0}
    pd.DataFrame({**table, "churned": rng.integers(0, 2, 300)}).to_csv(
        workdir / "customers.csv", index=False
    )
    # the lineage the script's process finds: this very data came from production
    monkeypatch.setenv("ENVGUARD_CONFIG", str(workdir / "envguard.toml"))
    runtime.reset()
    features = pd.read_csv(workdir / "customers.csv").drop(columns=["churned"])
    prod_sha = _register_prod(features)

    uri = guarded.train_uri  # the session's store, created here unless a test did: the
    MlflowClient(uri).search_experiments()  # script's time is then the script's own
    done = subprocess.run(
        [sys.executable, "train.py"],
        cwd=workdir,
        env=clean_environ(ENVGUARD_ENV="train", MLFLOW_TRACKING_URI=uri, **FAST),
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    assert "accuracy" not in done.stdout  # fit() raised: the script went no further
    error = done.stderr[done.stderr.rindex("envguard.errors.DeniedUnderAutologging") :]
    assert "prod-data-in-non-prod" in error
    assert f"production lineage from 'prod' (sha256:{prod_sha[:12]}" in error  # origin, chain
    assert "envguard mask" in error  # the remedy
    assert "dataset 'dataset' (MLflow digest" in error
    assert "from train.py" in error

    # the refusal, in the script's lineage log, names the data and the run
    events = runtime.current().store.events(entity=f"sha256:{prod_sha}")
    (refusal,) = [e for e in events if e.kind == "decision"]
    assert refusal.payload["decision"]["outcome"] == "deny"
    (run_id,) = [e.removeprefix("run:") for e in refusal.entities if e.startswith("run:")]
    assert f"envguard stopped run {run_id}" in error

    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.inputs.dataset_inputs == []
    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    for model in (m for m in models if m.source_run_id == run_id):
        assert model.status.to_string() == "FAILED"  # logged before the refusal: FAILED too
