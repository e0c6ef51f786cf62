"""What envguard's MLflow plugin costs: per run against a sqlite store, and at ``import mlflow``.

Runs: 200 runs, each with 10 params, 10 metrics, one dataset input (a pandas dataset) and one
small artifact, against one sqlite file, in one process that alternates blocks of 10 runs between
envguard active (``ENVGUARD_ENV=train``) and ``ENVGUARD_DISABLE=1``. MLflow caches one store per
URI, so the baseline uses another spelling of the same file, whose store is built while envguard
is disabled and so stays MLflow's own class. After each switch one untimed run resolves what
envguard caches per process (policy, git commit, host). The overhead is the median ratio of each
envguard block to the baseline block just before it, which resists a shared machine's load spikes.

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
BLOCK = 10
IMPORT_REPEATS = 7
ROOT = Path(__file__).resolve().parents[2]

WORKLOAD = """
import json, os, sys, time
import mlflow
import pandas as pd
from envguard import runtime

db, runs, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# Two spellings of the same sqlite file: MLflow caches one store per URI, so the plain one is
# built (and stays) MLflow's own class, the other envguard's guarded subclass.
uris = {"plain": f"sqlite:///{os.path.relpath(db)}", "envguard": f"sqlite:///{db}"}
frame = pd.DataFrame({"x": range(100), "y": [i * 0.5 for i in range(100)]})
with open("artifact.txt", "w") as handle:
    handle.write("small artifact\\n")

def one_run(i):
    with mlflow.start_run():
        mlflow.log_params({f"p{k}": k * i for k in range(10)})
        mlflow.log_metrics({f"m{k}": k * 0.1 + i for k in range(10)})
        mlflow.log_input(mlflow.data.from_pandas(frame, name="bench-data"), context="training")
        mlflow.log_artifact("artifact.txt")

def switch(mode):
    if mode == "plain":
        os.environ["ENVGUARD_DISABLE"] = "1"
    else:
        os.environ.pop("ENVGUARD_DISABLE", None)
    runtime.reset()
    mlflow.set_tracking_uri(uris[mode])
    mlflow.set_experiment("bench")
    one_run(-1)  # untimed: per-process facts (policy, git commit, host) resolve here, once

times = {"plain": [], "envguard": []}
for b in range(2 * runs // block):
    mode = ("plain", "envguard")[b % 2]
    switch(mode)
    start = time.perf_counter()
    for i in range(block):
        one_run(i)
    times[mode].append(time.perf_counter() - start)
print(json.dumps(times))
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


def _workload(workdir: Path, db: Path) -> dict[str, list[float]]:
    out = subprocess.run(
        [sys.executable, "-c", WORKLOAD, str(db), str(RUNS), str(BLOCK)],
        cwd=workdir,
        env=_env(ENVGUARD_ENV="train"),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _import_probe() -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], env=_env(), capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="envguard-bench-mlflow-"))
    try:
        shutil.copy(ROOT / "examples" / "envguard.toml", workdir / "envguard.toml")
        times = _workload(workdir, workdir / "bench.db")
        probes = [_import_probe() for _ in range(IMPORT_REPEATS)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    active, plain = times["envguard"], times["plain"]
    # Blocks alternate, so each envguard block is compared with the plain block just before it;
    # the median of those ratios resists the load spikes of a shared machine.
    overhead = statistics.median(a / p for a, p in zip(active, plain, strict=True)) - 1
    added_ms = statistics.median(p["envguard_s"] for p in probes) * 1000
    mlflow_ms = statistics.median(p["mlflow_s"] for p in probes) * 1000
    return {
        "name": NAME,
        "command": f"{RUNS} runs x (10 params, 10 metrics, 1 pandas dataset input, 1 artifact) "
        f"on one sqlite store, ENVGUARD_ENV=train, in blocks of {BLOCK} alternating with the "
        "baseline in one process; overhead = median of block-pair ratios - 1",
        "baseline": "the same runs with ENVGUARD_DISABLE=1 (plain MLflow stores) on the same "
        "sqlite file, in the same process; import: `import mlflow` with envguard's entry "
        "points hidden",
        "results": {
            "envguard_ms_per_run": round(sum(active) / RUNS * 1000, 3),
            "plain_ms_per_run": round(sum(plain) / RUNS * 1000, 3),
            "overhead_pct": round(overhead * 100, 2),
            "import_added_ms": round(added_ms, 2),
            "import_mlflow_ms": round(mlflow_ms, 1),
        },
        "goals": {"overhead_pct": "<= 3", "import_added_ms": "< 20"},
        "met": overhead <= 0.03 and added_ms < 20,
    }
