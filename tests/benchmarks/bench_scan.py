"""``envguard audit scan`` of 1,000 model versions and 10,000 objects vs the bare listing calls
the scan must make, on the same servers in the same run: a plain ``mlflow server`` (SQLite) and
moto's S3 server, both on 127.0.0.1.

The baseline makes exactly the calls the scan makes, without envguard: ``search_registered_models``,
``search_model_versions``, ``search_experiments`` and ``search_runs`` (paginated as the scan does),
``list_objects_v2`` of the bucket and one ``get_object_tagging`` per object, 16 at a time as the
scan does. The scan adds the lineage log's checks, its lookups and the recording. Goal: at most
1.5x. Five of the versions are in @production with no allow decision (the scan finds five
``registry-bypass``), so its check of the log is exercised, but no artifact is downloaded.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

NAME = "scan"
MODELS = 10
VERSIONS_PER_MODEL = 100
RUNS_LOGGED = 100
OBJECTS = 10_000
REPEATS = 3
JOBS = 16
BUCKET = "bench-dev"

POLICY = """\
version = 1
default_env = "train"
[environments.train]
tier = "non-prod"
s3 = ["{bucket}"]
[environments.prod]
tier = "prod"
mlflow_tracking_uris = ["{url}"]
[registry.aliases]
production = "prod"
"""


def _populate(url: str, s3: Any) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    experiment = client.create_experiment("bench")
    runs = [
        client.create_run(experiment, tags={"envguard.env": "train"}).info.run_id
        for _ in range(RUNS_LOGGED)
    ]
    for m in range(MODELS):
        client.create_registered_model(f"model-{m}")

    def version(i: int) -> None:
        m = i % MODELS
        run = runs[i % RUNS_LOGGED]
        client.create_model_version(f"model-{m}", f"runs:/{run}/model", run)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(version, range(MODELS * VERSIONS_PER_MODEL)))
    for m in range(5):
        client.set_registered_model_alias(f"model-{m}", "production", "1")
    s3.create_bucket(Bucket=BUCKET)

    def put(i: int) -> None:
        s3.put_object(
            Bucket=BUCKET, Key=f"data/{i:05d}.csv", Body=b"x", Tagging="envguard.env=train"
        )

    with ThreadPoolExecutor(JOBS) as pool:
        list(pool.map(put, range(OBJECTS)))


def _pages(call: Any, **kwargs: Any) -> int:
    count, token = 0, None
    while True:
        page = call(**kwargs, page_token=token)
        count += len(page)
        token = page.token
        if not token:
            return count


def _bare(url: str) -> dict[str, int]:
    """The listing calls of the scan, without envguard."""
    import boto3
    from botocore.config import Config
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    models = _pages(client.search_registered_models, max_results=1000)
    versions = _pages(client.search_model_versions, max_results=1000)
    experiments = [
        e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL, max_results=1000)
    ]
    runs = _pages(
        client.search_runs, experiment_ids=experiments, run_view_type=ViewType.ALL, max_results=1000
    )
    s3 = boto3.session.Session().client("s3", config=Config(max_pool_connections=JOBS))
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="")
        for item in page.get("Contents", ())
    ]
    with ThreadPoolExecutor(JOBS) as pool:
        tags = list(pool.map(lambda k: s3.get_object_tagging(Bucket=BUCKET, Key=k), keys))
    return {"models": models, "versions": versions, "runs": runs, "objects": len(tags)}


def _scan() -> dict[str, Any]:
    from envguard import runtime
    from envguard.scan.sweep import scan

    os.environ.pop("ENVGUARD_DISABLE", None)  # the scan does not depend on it; set for _bare
    runtime.reset()
    try:
        report = scan(runtime.current())
    finally:
        os.environ["ENVGUARD_DISABLE"] = "1"
        runtime.reset()
    return {"findings": len(report.findings), "swept": report.swept}


def run() -> dict[str, Any]:
    from tests.servers import MlflowServer, MotoServer

    root = Path(tempfile.mkdtemp(prefix="envguard-bench-scan-"))
    saved = dict(os.environ)
    moto = MotoServer().start()
    # MLflow's job runner (seven huey consumers) is not what is measured, and slows both alike.
    server = MlflowServer(root, env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    server.start(timeout=900)
    try:
        os.environ.update(MotoServer.ENV)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": moto.url,
                "ENVGUARD_DISABLE": "1",  # populating, and the bare calls: plain MLflow
                "MLFLOW_ENABLE_ARTIFACTS_DESTINATION_LOGGING": "false",
            }
        )
        _populate(server.url, moto.client())
        os.environ.update(
            {
                "ENVGUARD_CONFIG": str(root / "envguard.toml"),
                "ENVGUARD_ENV": "train",
                "ENVGUARD_DISABLED_PLUGINS": "dvc,gx",
            }
        )
        (root / "envguard.toml").write_text(POLICY.format(bucket=BUCKET, url=server.url))
        bare: list[float] = []
        scanned: list[float] = []
        counts: dict[str, Any] = {}
        found: dict[str, Any] = {}
        for _ in range(REPEATS):  # interleaved, so that load on the machine hits both alike
            start = time.perf_counter()
            counts = _bare(server.url)
            bare.append(time.perf_counter() - start)
            start = time.perf_counter()
            found = _scan()
            scanned.append(time.perf_counter() - start)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
        moto.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert counts["versions"] == MODELS * VERSIONS_PER_MODEL
    assert counts["objects"] == OBJECTS
    assert found["findings"] == 5, found  # the five versions @production without a decision
    ratio = statistics.median(scanned) / statistics.median(bare)
    return {
        "name": NAME,
        "command": f"envguard audit scan (in process) of {MODELS * VERSIONS_PER_MODEL} model "
        f"versions, {RUNS_LOGGED} runs and {OBJECTS} S3 objects (median of {REPEATS})",
        "baseline": "the same listing calls without envguard (search_registered_models, "
        "search_model_versions, search_experiments, search_runs, list_objects_v2, "
        f"get_object_tagging x{OBJECTS}, {JOBS} at a time), interleaved in the same run",
        "results": {
            "bare_listing_s": round(statistics.median(bare), 2),
            "scan_s": round(statistics.median(scanned), 2),
            "ratio": round(ratio, 3),
            "bare_runs_s": [round(x, 2) for x in bare],
            "scan_runs_s": [round(x, 2) for x in scanned],
            "swept": found["swept"],
        },
        "goals": {"ratio": "<= 1.5"},
        "met": ratio <= 1.5,
    }
