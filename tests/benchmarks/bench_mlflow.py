"""What envguard's MLflow plugin costs: per run against a sqlite store, and at ``import mlflow``.

Runs: 200 runs, each with 10 params, 10 metrics, one dataset input (a pandas dataset) and one
small artifact, against one sqlite store, in fresh processes that alternate between envguard
active (``ENVGUARD_ENV=train``) and ``ENVGUARD_DISABLE=1`` (plain MLflow: the stores are MLflow's
own classes), in the same benchmark run. Each process warms up with one run first (store
creation, policy, git commit, host: what envguard caches once per process); the figure is the
median over the repetitions of each mode.

Import: what loading envguard's ``mlflow.*`` entry points adds to ``import mlflow``. A fresh
interpreter hides them from ``importlib.metadata`` (in this harness only), imports MLflow, then
times loading them, as MLflow would have during its import: only what envguard adds is timed.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

NAME = "mlflow"
RUNS = 200
REPEATS = 3
IMPORT_REPEATS = 7
ROOT = Path(__file__).resolve().parents[2]

WORKLOAD = """
import json, sys, time
import mlflow
import pandas as pd

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("bench")
frame = pd.DataFrame({"x": range(100), "y": [i * 0.5 for i in range(100)]})
with open("artifact.txt", "w") as handle:
    handle.write("small artifact\\n")

def one_run(i):
    with mlflow.start_run():
        mlflow.log_params({f"p{k}": k * i for k in range(10)})
        mlflow.log_metrics({f"m{k}": k * 0.1 + i for k in range(10)})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="bench-data"), context="training")
        mlflow.log_artifact("artifact.txt")

one_run(-1)  # warm-up: store, policy, git commit, host are resolved once per process
start = time.perf_counter()
for i in range(int(sys.argv[2])):
    one_run(i)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

IMPORT_PROBE = """
import importlib.metadata as md, json, time
original = md.entry_points
def hidden(**params):
    found = original(**params)
    return [ep for ep in found if not ep.value.startswith("envguard")]
md.entry_points = hidden  # this probe only: MLflow then imports as if envguard were absent
start = time.perf_counter()
import mlflow
import mlflow.tracking._model_registry.utils
mlflow_s = time.perf_counter() - start
md.entry_points = original
mine = {(ep.group, ep.name): ep for dist in md.distributions() for ep in dist.entry_points
        if ep.group.startswith("mlflow.") and ep.value.startswith("envguard")}.values()
start = time.perf_counter()
for ep in mine:
    ep.load()
print(json.dumps({"mlflow_s": mlflow_s, "envguard_s": time.perf_counter() - start,
                  "entry_points": len(mine)}))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVGUARD_", "MLFLOW_"))}
    env.update(DVC_NO_ANALYTICS="1", **extra)
    return env


def _workload(workdir: Path, uri: str, disabled: bool) -> float:
    extra = {"ENVGUARD_DISABLE": "1"} if disabled else {}
    out = subprocess.run(
        [sys.executable, "-c", WORKLOAD, uri, str(RUNS)],
        cwd=workdir,
        env=_env(ENVGUARD_ENV="train", **extra),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def _import_probe() -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], env=_env(), capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="envguard-bench-mlflow-"))
    try:
        shutil.copy(ROOT / "examples" / "envguard.toml", workdir / "envguard.toml")
        uri = f"sqlite:///{workdir}/bench.db"
        _workload(workdir, uri, disabled=True)  # creates the database once, outside the figures
        active: list[float] = []
        plain: list[float] = []
        for _ in range(REPEATS):
            plain.append(_workload(workdir, uri, disabled=True))
            active.append(_workload(workdir, uri, disabled=False))
        probes = [_import_probe() for _ in range(IMPORT_REPEATS)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    active_s, plain_s = statistics.median(active), statistics.median(plain)
    overhead = active_s / plain_s - 1
    added_ms = statistics.median(p["envguard_s"] for p in probes) * 1000
    mlflow_ms = statistics.median(p["mlflow_s"] for p in probes) * 1000
    return {
        "name": NAME,
        "command": f"{RUNS} runs x (10 params, 10 metrics, 1 pandas dataset input, 1 artifact) "
        f"on sqlite, ENVGUARD_ENV=train; median of {REPEATS} processes, each warmed up by 1 run",
        "baseline": "the same workload with ENVGUARD_DISABLE=1 (plain MLflow), alternating "
        "in the same run; import: `import mlflow` with envguard's entry points hidden",
        "results": {
            "envguard_ms_per_run": round(active_s / RUNS * 1000, 3),
            "plain_ms_per_run": round(plain_s / RUNS * 1000, 3),
            "overhead_pct": round(overhead * 100, 2),
            "all_envguard_s": [round(s, 3) for s in active],
            "all_plain_s": [round(s, 3) for s in plain],
            "import_added_ms": round(added_ms, 2),
            "import_mlflow_ms": round(mlflow_ms, 1),
        },
        "goals": {"overhead_pct": "<= 3", "import_added_ms": "< 20"},
        "met": overhead <= 0.03 and added_ms < 20,
    }
