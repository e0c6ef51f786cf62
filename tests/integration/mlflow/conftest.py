"""Fixtures for the MLflow plugin: a policy, a local sqlite store, and a real ``mlflow server``
over HTTP on 127.0.0.1, started once per test session and stopped at its end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import stop_process_group

# Healthy in ~10 s on an idle 2-CPU machine; a shared, loaded one has needed 110 s.
SERVER_DEADLINE_S = 240.0


@dataclass(frozen=True)
class Site:
    """Where everything of one test session lives, and the policy that assigns it."""

    root: Path
    policy: Path
    server_url: str
    train_uri: str  # sqlite store of `train`
    test_uri: str  # sqlite store of `test` (same tier as train)
    prod_uri: str  # sqlite store of `prod`
    prod_registry_uri: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


POLICY = """\
version = 1
mode = "{mode}"
strict_uris = {strict}

[environments.train]
tier = "non-prod"
mlflow_tracking_uris = ["{train}", "{server}"]
artifact_locations = ["s3://acme-ml-dev/mlflow"]
s3 = ["acme-ml-dev"]

[environments.test]
tier = "non-prod"
mlflow_tracking_uris = ["{test}"]

[environments.prod]
tier = "prod"
mlflow_tracking_uris = ["{prod}"]
mlflow_registry_uris = ["{prod_registry}"]
artifact_locations = ["s3://acme-ml-prod/mlflow"]
s3 = ["acme-ml-prod"]
"""


def write_policy(site: Site, path: Path, mode: str = "enforce", strict: bool = False) -> Path:
    path.write_text(
        POLICY.format(
            mode=mode,
            strict=str(strict).lower(),
            train=site.train_uri,
            server=site.server_url,
            test=site.test_uri,
            prod=site.prod_uri,
            prod_registry=site.prod_registry_uri,
        )
    )
    return path


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("mlflow-site")
    made = Site(
        root=root,
        policy=root / "envguard.toml",
        server_url=f"http://127.0.0.1:{_free_port()}",
        train_uri=f"sqlite:///{root}/train.db",
        test_uri=f"sqlite:///{root}/test.db",
        prod_uri=f"sqlite:///{root}/prod.db",
        prod_registry_uri=f"sqlite:///{root}/prod-registry.db",
    )
    write_policy(made, made.policy)
    return made


def clean_environ(**extra: str) -> dict[str, str]:
    """The test process's environment without any ENVGUARD_* or MLFLOW_* setting, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENVGUARD_", "MLFLOW_", "_MLFLOW_"))
    }
    env.update(DVC_NO_ANALYTICS="1", **extra)
    return env


@pytest.fixture(scope="session")
def mlflow_server(site: Site) -> Iterator[str]:
    """A real ``mlflow server`` (sqlite backend, proxied artifacts), with envguard installed."""
    port = site.server_url.rsplit(":", 1)[1]
    log = (site.root / "server.log").open("w")
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", port]
    command += ["--backend-store-uri", f"sqlite:///{site.root}/server.db", "--workers", "1"]
    command += ["--artifacts-destination", str(site.root / "server-artifacts")]
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=clean_environ(
            MLFLOW_ENABLE_ARTIFACTS_DESTINATION_LOGGING="false",
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        ),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SERVER_DEADLINE_S
        while True:
            try:
                # S310: the URL is http://127.0.0.1:PORT, built above
                with urllib.request.urlopen(f"{site.server_url}/health", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after {SERVER_DEADLINE_S}s; see {log.name}")
            try:  # wait a little for the server to exit, which it must not: not a sleep
                proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"mlflow server exited with {proc.returncode}; see {log.name}")
        yield site.server_url
    finally:
        stop_process_group(proc, timeout=5)
        log.close()


@pytest.fixture(params=["sqlite", "http"])
def tracking_uri(request: pytest.FixtureRequest, site: Site) -> str:
    """Each back end in turn: the local sqlite store, then the real server over HTTP."""
    if request.param == "http":
        return str(request.getfixturevalue("mlflow_server"))
    return site.train_uri


@pytest.fixture
def guarded(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """This process runs in `train` under the site's policy, in the site's folder; MLflow's fluent
    state is reset afterwards."""
    import mlflow

    from envguard import runtime

    monkeypatch.setenv("ENVGUARD_CONFIG", str(site.policy))
    monkeypatch.setenv("ENVGUARD_ENV", "train")
    monkeypatch.chdir(site.root)  # MLflow's default artifact root is ./mlruns
    runtime.reset()
    yield site
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    runtime.reset()
