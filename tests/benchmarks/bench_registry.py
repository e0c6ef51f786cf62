"""What envguard's registry gate costs: setting an alias through ``mlflow server --app-name
envguard`` vs a plain ``mlflow server --app-name basic-auth``, on the same database.

Both servers run at once (one uvicorn worker each, MLflow's job runners off) on the same SQLite
backend store, the same auth database and the same artifact folder. One model version is
registered from a run whose dataset has 1,000 ancestors in the lineage store (20 derivation
chains of 50 steps, every step a registered, non-production dataset), so the gate walks the
whole graph. The timed request is ``POST /api/2.0/mlflow/registered-models/alias`` setting
``@staging`` (environment ``test``: the gate gathers every fact and records two chained events)
on that version, as the same basic-auth user, alternating between the two servers after a warm
up. The figure is the ratio of the medians.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from tests.servers import stop_process_group

NAME = "registry"
ROOT = Path(__file__).resolve().parents[2]
CHAINS, STEPS = 20, 50  # 1,000 ancestors
REQUESTS = 60  # per server
WARMUP = 5
ADMIN = ("admin", "Admin-Password-1234")
USER = ("ada", "Ada-Password-1234")


def _start(folder: Path, app: str) -> tuple[subprocess.Popen[bytes], str]:
    from tests.servers import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVGUARD_", "MLFLOW_"))}
    env.update(
        ENVGUARD_CONFIG=str(folder / "envguard.toml"),
        MLFLOW_FLASK_SERVER_SECRET_KEY="bench",
        MLFLOW_AUTH_ADMIN_PASSWORD=ADMIN[1],
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        MLFLOW_ENABLE_ARTIFACTS_DESTINATION_LOGGING="false",
    )
    argv = [
        *(sys.executable, "-m", "mlflow", "server", "--app-name", app),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--uvicorn-opts", "--timeout-worker-healthcheck 180"),
        *("--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"),
        *("--artifacts-destination", str(folder / "artifacts")),
    ]
    with (folder / f"{app}.log").open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((folder / f"{app}.log").read_text()[-3000:])
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"mlflow server --app-name {app} did not start")


def _seed_lineage(folder: Path, digest: str) -> int:
    """1,000 non-production ancestors of the dataset ``digest``; returns their number."""
    from envguard.lineage import dataset_entity, open_store
    from envguard.lineage.events import EventDraft, Link
    from envguard.policy import load_policy

    policy = load_policy(folder / "envguard.toml")
    target = dataset_entity(digest)
    drafts = [
        EventDraft(
            "dataset.registered",
            entities=[target],
            payload={"origin": "train"},
            actor="bench",
            environment="train",
        )
    ]
    ancestors = 0
    for chain in range(CHAINS):
        child = target
        for step in range(STEPS):
            node = dataset_entity(f"{chain:04d}{step:04d}".ljust(64, "a"))
            drafts.append(
                EventDraft(
                    "dataset.registered",
                    entities=[node],
                    payload={"origin": "train"},
                    actor="bench",
                    environment="train",
                )
            )
            drafts.append(
                EventDraft(
                    "dataset.derived",
                    entities=[node, child],
                    links=[Link(node, child, "derived")],
                    actor="bench",
                    environment="train",
                )
            )
            ancestors += 1
            child = node
    with open_store(policy) as store:
        store.append_many(drafts)
        assert len(store.ancestors(target)) >= ancestors
    return ancestors


def _register(url: str, digest: str) -> tuple[str, str]:
    """A run in ``train`` that used the dataset, and a model version registered from it."""
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = USER
    from mlflow import MlflowClient
    from mlflow.entities import Dataset, DatasetInput, InputTag

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    experiment = client.create_experiment("bench")
    run = client.create_run(experiment, tags={"envguard.env": "train", "envguard.actor": "ada"})
    dataset = Dataset("bench-data", digest[:8], "local", "/data/train.csv")
    client.log_inputs(
        run.info.run_id, datasets=[DatasetInput(dataset, [InputTag("envguard.sha256", digest)])]
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "weights.bin").write_bytes(os.urandom(1 << 20))
        client.log_artifact(run.info.run_id, str(Path(tmp) / "weights.bin"), "model")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("bench-model")
    mv = client.create_model_version(
        "bench-model", f"runs:/{run.info.run_id}/model", run.info.run_id
    )
    return "bench-model", str(mv.version)


def run() -> dict[str, Any]:
    from tests.servers import free_port  # noqa: F401 - fails early outside the repo

    folder = Path(tempfile.mkdtemp(prefix="envguard-bench-registry-"))
    shutil.copy(ROOT / "examples" / "envguard.toml", folder / "envguard.toml")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        guarded, guarded_url = _start(folder, "envguard")
        procs.append(guarded)
        plain, plain_url = _start(folder, "basic-auth")  # after: the admin exists
        procs.append(plain)
        created = requests.post(
            f"{guarded_url}/api/2.0/mlflow/users/create",
            json={"username": USER[0], "password": USER[1]},
            auth=ADMIN,
            timeout=60,
        )
        created.raise_for_status()
        digest = "b" * 64
        ancestors = _seed_lineage(folder, digest)
        name, version = _register(guarded_url, digest)
        session = requests.Session()
        session.auth = USER
        body = {"name": name, "alias": "staging", "version": version}

        def once(url: str) -> float:
            start = time.perf_counter()
            answer = session.post(
                f"{url}/api/2.0/mlflow/registered-models/alias", json=body, timeout=120
            )
            elapsed = time.perf_counter() - start
            if answer.status_code != 200:
                raise RuntimeError(f"{url}: {answer.status_code} {answer.text}")
            return elapsed

        for _ in range(WARMUP):
            once(guarded_url)
            once(plain_url)
        times: dict[str, list[float]] = {"plain": [], "envguard": []}
        for i in range(REQUESTS):
            order = (("plain", plain_url), ("envguard", guarded_url))
            for label, url in order if i % 2 else order[::-1]:
                times[label].append(once(url))
    finally:
        for proc in procs:
            stop_process_group(proc)
        shutil.rmtree(folder, ignore_errors=True)
    plain_ms = statistics.median(times["plain"]) * 1000
    guarded_ms = statistics.median(times["envguard"]) * 1000
    ratio = guarded_ms / plain_ms
    return {
        "name": NAME,
        "command": (
            f"POST registered-models/alias (@staging) through mlflow server --app-name envguard, "
            f"{REQUESTS} requests after {WARMUP} warm-up, model version whose dataset has "
            f"{ancestors} ancestors in the lineage store (median)"
        ),
        "baseline": (
            "the same request through mlflow server --app-name basic-auth on the same SQLite "
            "backend and auth database, interleaved in the same run (median)"
        ),
        "results": {
            "ancestors": ancestors,
            "plain_median_ms": round(plain_ms, 2),
            "envguard_median_ms": round(guarded_ms, 2),
            "ratio": round(ratio, 3),
            "plain_p90_ms": round(statistics.quantiles(times["plain"], n=10)[-1] * 1000, 2),
            "envguard_p90_ms": round(statistics.quantiles(times["envguard"], n=10)[-1] * 1000, 2),
        },
        "goals": {"ratio": "<= 1.2"},
        "met": ratio <= 1.2,
    }
