"""A real ``mlflow server --app-name envguard`` for the registry gate's tests.

Started once per test session as a subprocess on a free port of 127.0.0.1 (one uvicorn worker,
SQLite backend, artifacts served from a folder), with basic auth: an admin from
``MLFLOW_AUTH_ADMIN_PASSWORD`` and three users created through MLflow's auth API: ada (trains;
also holds the approver role in the example policy, which separation of duties must override),
grace and linus (approvers). Readiness is polled on ``/health`` with a deadline; the server is
stopped at the end of the session.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import EXAMPLE_POLICY
from tests.servers import free_port

ADMIN = ("admin", "Admin-Password-1234")
PASSWORDS = {"ada": "Ada-Password-1234", "grace": "Grace-Password-1234", "linus": "Linus-Pw-1234"}
STARTUP_DEADLINE = 240.0  # MLflow's first start migrates two databases; slow on a busy machine


@dataclass
class RegistryServer:
    url: str
    folder: Path
    policy: Path
    log: Path

    def http(self, user: str) -> requests.Session:
        session = requests.Session()
        session.auth = ADMIN if user == "admin" else (user, PASSWORDS[user])
        return session

    def client(self, user: str, monkeypatch: pytest.MonkeyPatch) -> Any:
        """A plain MlflowClient acting as ``user`` (MLflow reads the credentials per request)."""
        from mlflow import MlflowClient

        name, password = ADMIN if user == "admin" else (user, PASSWORDS[user])
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", name)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)

    def events(self, kind: str | None = None) -> list[Any]:
        from envguard.lineage import open_store
        from envguard.policy import load_policy

        with open_store(load_policy(self.policy)) as store:
            return list(store.events(kind=kind))


def _server_env(folder: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ENVGUARD_", "MLFLOW_TRACKING"))
    }
    env.update(
        {
            "ENVGUARD_CONFIG": str(folder / "envguard.toml"),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "envguard-tests-secret",
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
            "MLFLOW_ENABLE_ARTIFACTS_DESTINATION_LOGGING": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def registry_server() -> Iterator[RegistryServer]:
    folder = Path(tempfile.mkdtemp(prefix="envguard-registry-"))
    shutil.copy(EXAMPLE_POLICY, folder / "envguard.toml")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        "envguard",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=folder, env=_server_env(folder), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited early:\n{log.read_text()[-4000:]}")
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer in time:\n{log.read_text()[-4000:]}")
            time.sleep(0.1)
        for user, password in PASSWORDS.items():
            response = requests.post(
                f"{url}/api/2.0/mlflow/users/create",
                json={"username": user, "password": password},
                auth=ADMIN,
                timeout=30,
            )
            assert response.status_code == 200, response.text
        yield RegistryServer(url, folder, folder / "envguard.toml", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


_names = itertools.count()


@dataclass
class Trained:
    name: str
    version: str
    run_id: str

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def train(
    server: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    user: str = "ada",
    env: str = "train",
    dataset_sha256: str | None = "0" * 63 + "1",
    weights: str = "w1",
    model: str | None = None,
) -> Trained:
    """A run by ``user`` in ``env`` that used one dataset; a model version registered from it."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    client = server.client(user, monkeypatch)
    tag = next(_names)
    experiment = client.create_experiment(f"exp-{os.getpid()}-{tag}")
    run = client.create_run(experiment, tags={"envguard.env": env, "envguard.actor": user})
    run_id = run.info.run_id
    if dataset_sha256 is not None:
        dataset = Dataset(f"data-{tag}", dataset_sha256[:8], "local", "/data/train.csv")
        tags = [InputTag("envguard.sha256", dataset_sha256)]
        client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags)])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "weights.bin").write_text(weights)
        client.log_artifact(run_id, str(Path(tmp) / "weights.bin"), "model")
    client.set_terminated(run_id)
    name = model or f"model-{os.getpid()}-{tag}"
    try:
        client.create_registered_model(name)
    except Exception as exc:  # an existing model is fine
        if "RESOURCE_ALREADY_EXISTS" not in str(exc):
            raise
    version = client.create_model_version(name, f"runs:/{run_id}/model", run_id)
    return Trained(name, str(version.version), run_id)


def evaluate(
    server: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
    trained: Trained,
    *,
    user: str = "ada",
    env: str = "test",
) -> str:
    """A finished evaluation run of ``trained`` in ``env`` (tag ``envguard.evaluates``)."""
    client = server.client(user, monkeypatch)
    experiment = client.create_experiment(f"eval-{os.getpid()}-{next(_names)}")
    run = client.create_run(
        experiment,
        tags={"envguard.env": env, "envguard.actor": user, "envguard.evaluates": trained.uri},
    )
    client.log_metric(run.info.run_id, "auc", 0.91)
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)
