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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import EXAMPLE_POLICY
from tests.servers import PostgresServer, free_port, stop_process_group

ADMIN = ("admin", "Admin-Password-1234")
PASSWORDS = {
    "ada": "Ada-Password-1234",
    "grace": "Grace-Password-1234",
    "linus": "Linus-Pw-1234",
    "margaret": "Margaret-Pw-1234",  # incident-commander: may override
}
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
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job runners: nothing uses them
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@contextmanager
def running_server(
    folder: Path,
    backend_uri: str,
    *,
    workers: int = 1,
    lineage_url: str | None = None,
    auth_db_uri: str | None = None,
    app_name: str = "envguard",
    users: bool = True,
    startup_deadline: float = STARTUP_DEADLINE,
) -> Iterator[RegistryServer]:
    """``mlflow server --app-name APP`` on a free port, with the example policy in ``folder``
    (its lineage store at ``lineage_url`` when given), the three users created; stopped after."""
    policy = folder / "envguard.toml"
    text = EXAMPLE_POLICY.read_text()
    if lineage_url is not None:
        text = text.replace('url = "sqlite:///.envguard/lineage.db"', f'url = "{lineage_url}"')
    policy.write_text(text)
    env = _server_env(folder)
    if auth_db_uri is not None:
        ini = folder / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\ndefault_permission = READ\n"
            f"database_uri = {auth_db_uri}\nadmin_username = {ADMIN[0]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / f"server-{port}.log"
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        app_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        # uvicorn kills a worker that does not answer its health check in 5 s; loading MLflow
        # takes longer than that on a busy machine, and the supervisor would restart it forever.
        "--uvicorn-opts",
        "--timeout-worker-healthcheck 180",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        str(folder / "artifacts"),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: uvicorn's workers stop with it
        )
    try:
        deadline = time.monotonic() + startup_deadline
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
        for user, password in PASSWORDS.items() if users else ():
            response = requests.post(
                f"{url}/api/2.0/mlflow/users/create",
                json={"username": user, "password": password},
                auth=ADMIN,
                timeout=30,
            )
            assert response.status_code == 200, response.text
        yield RegistryServer(url, folder, policy, log)
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="session")
def registry_server() -> Iterator[RegistryServer]:
    folder = Path(tempfile.mkdtemp(prefix="envguard-registry-"))
    try:
        with running_server(folder, f"sqlite:///{folder / 'mlflow.db'}") as server:
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def workers_server(postgres: PostgresServer) -> Iterator[RegistryServer]:
    """The app under uvicorn with four worker processes, MLflow's backend store, its auth store
    and envguard's lineage store all on PostgreSQL (started once per session)."""
    folder = Path(tempfile.mkdtemp(prefix="envguard-registry-pg-"))
    try:
        with running_server(
            folder,
            postgres.create_database("reg_mlflow"),
            workers=4,
            lineage_url=postgres.create_database("reg_lineage"),
            auth_db_uri=postgres.create_database("reg_auth"),
            startup_deadline=3 * STARTUP_DEADLINE,  # four workers load MLflow at once
        ) as server:
            yield server
    finally:
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
