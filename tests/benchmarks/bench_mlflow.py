"""What envguard's MLflow plugin costs: per run against a sqlite store, and at ``import mlflow``.

Runs: 200 runs, each with 10 params, 10 metrics, one dataset input (a pandas dataset) and one
small artifact, against one sqlite file, with envguard active (``ENVGUARD_ENV=train``) and with
``ENVGUARD_DISABLE=1``, in one process that rotates blocks of 10 runs between three modes. MLflow
caches one store per URI, so the baseline uses another spelling of the same file, whose store is
built while envguard is disabled and so stays MLflow's own class. After each switch one untimed
run resolves what envguard caches per process (policy, git commit, host). Each envguard block
ends by writing the observational records still waiting (``flush_all``), inside its time, so
that no block pays for another's. The third mode, "tags", is plain MLflow (envguard disabled)
given the very tags envguard adds to a run and to its dataset input (copied from a guarded
run): what MLflow's store takes to write them, apart from any envguard code. The workload is
repeated in REPEATS fresh processes; the overhead is the median over repetitions of (total time
with envguard / total time without - 1), reported with its spread (min, max), beside the
median ratio of each envguard block to the baseline block after it, and beside the same ratio
for the "tags" mode. The same ratios of CPU time (``time.process_time``: every thread of the
process, so envguard's writer thread too) are reported beside them: other processes on a shared
machine move them less than wall time.

Import: ``python -X importtime -c "import mlflow"`` in fresh interpreters, alternating with a
baseline interpreter in which envguard's ``mlflow.*`` entry points are hidden from
``importlib.metadata`` (as if the plugin were absent). What the plugin adds is the cumulative
import time of the envguard modules that MLflow's import loads (the outermost ``envguard*``
entries of the importtime tree), a figure that a shared machine's noise on a multi-second
``import mlflow`` would drown in a plain difference of totals.
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
REPEATS = 5
IMPORT_REPEATS = 5
ROOT = Path(__file__).resolve().parents[2]

WORKLOAD = """
import json, os, sys, time
import mlflow
import pandas as pd
from envguard import runtime
from envguard_mlflow.observations import flush_all

db, runs, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# Two spellings of the same sqlite file: MLflow caches one store per URI, so the plain one is
# built (and stays) MLflow's own class, the other envguard's guarded subclass.
uris = {"plain": f"sqlite:///{os.path.relpath(db)}", "envguard": f"sqlite:///{db}"}
uris["tags"] = uris["plain"]
frame = pd.DataFrame({"x": range(100), "y": [i * 0.5 for i in range(100)]})
with open("artifact.txt", "w") as handle:
    handle.write("small artifact\\n")
# "tags": plain MLflow storing the tags envguard adds (copied from a guarded run), envguard off:
# what MLflow's store takes to write them, apart from envguard's own code.
extra = {"run": {}, "input": {}}

def one_run(i, mode):
    with mlflow.start_run(tags=extra["run"] if mode == "tags" else None) as run:
        mlflow.log_params({f"p{k}": k * i for k in range(10)})
        mlflow.log_metrics({f"m{k}": k * 0.1 + i for k in range(10)})
        mlflow.log_input(
            mlflow.data.from_pandas(frame, name="bench-data"),
            context="training",
            tags=extra["input"] if mode == "tags" else None,
        )
        mlflow.log_artifact("artifact.txt")
    return run.info.run_id

def switch(mode):
    if mode == "envguard":
        os.environ.pop("ENVGUARD_DISABLE", None)
    else:
        os.environ["ENVGUARD_DISABLE"] = "1"
    runtime.reset()
    mlflow.set_tracking_uri(uris[mode])
    mlflow.set_experiment("bench")
    run_id = one_run(-1, mode)  # untimed: per-process facts (policy, host...) resolve here, once
    if mode == "envguard" and not extra["run"]:
        run = mlflow.MlflowClient(uris["plain"]).get_run(run_id)
        extra["run"] = {k: v for k, v in run.data.tags.items() if k.startswith("envguard.")}
        (given,) = run.inputs.dataset_inputs
        extra["input"] = {t.key: t.value for t in given.tags if t.key.startswith("envguard.")}

modes = ("envguard", "plain", "tags")  # envguard first: the tags mode copies its tags
times = {mode: [] for mode in modes}
cpu_times = {mode: [] for mode in modes}  # all threads of the process, less sensitive to others
for b in range(len(modes) * runs // block):
    mode = modes[b % len(modes)]
    switch(mode)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(block):
        one_run(i, mode)
    if mode == "envguard":  # charge the block its own waiting records, not the next block
        flush_all()
    times[mode].append(time.perf_counter() - start)
    cpu_times[mode].append(time.process_time() - cpu)
tag_counts = [len(extra["run"]), len(extra["input"])]
print(json.dumps({**times, "cpu": cpu_times, "extra_tags": tag_counts}))
"""

IMPORT = "import mlflow, mlflow.tracking._model_registry.utils, mlflow.tracking.context.registry"
# MLflow 3 loads most plugin registries at first use, not at import: build a tracking store (a
# REST store makes no request until used) and resolve the run-context tags.
FIRST_USE = (
    f"{IMPORT}; mlflow.MlflowClient('http://127.0.0.1:9'); "
    "mlflow.tracking.context.registry.resolve_tags()"
)
HIDE = """
import importlib.metadata as md
original = md.entry_points
def hidden(**params):
    return [ep for ep in original(**params) if not ep.value.startswith("envguard")]
md.entry_points = hidden  # this probe only: MLflow then imports as if envguard were absent
"""


def envguard_import_us(importtime: str) -> tuple[int, int]:
    """(cumulative us of the outermost ``envguard*`` modules, cumulative us of ``mlflow``) in
    ``-X importtime`` output (children are printed before their parent, indented deeper)."""
    rows = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, total, name = line[len("import time:") :].split("|", 2)
        if not total.strip().isdigit():
            continue  # the header
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((depth, int(total), name.strip()))
    added, top, inside = 0, 0, 10**9  # inside: depth of the envguard module being summed
    for depth, cumulative, name in reversed(rows):  # parents first
        if depth <= inside:
            inside = 10**9
        if name.startswith("envguard") and inside == 10**9:
            added += cumulative
            inside = depth
        if name == "mlflow":
            top = cumulative
    return added, top


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVGUARD_", "MLFLOW_"))}
    env.update(DVC_NO_ANALYTICS="1", **extra)
    return env


def _workload(workdir: Path, db: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", WORKLOAD, str(db), str(RUNS), str(BLOCK)],
        cwd=workdir,
        env=_env(ENVGUARD_ENV="train"),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _importtime(code: str, hide: bool = False) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", (HIDE if hide else "") + code],
        env=_env(ENVGUARD_DISABLE="1"),  # the plugin present but off: its loading cost alone
        capture_output=True,
        text=True,
        check=True,
    )
    return envguard_import_us(out.stderr)


def run() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="envguard-bench-mlflow-"))
    totals: list[float] = []
    tags_only: list[float] = []
    cpu_totals: list[float] = []
    cpu_tags_only: list[float] = []
    blocks: list[float] = []
    per_run: dict[str, list[float]] = {"envguard": [], "plain": [], "tags": []}
    extra_tags: list[int] = []
    try:
        shutil.copy(ROOT / "examples" / "envguard.toml", workdir / "envguard.toml")
        for rep in range(REPEATS):
            times = _workload(workdir, workdir / f"bench-{rep}.db")
            active, plain, tagged = times["envguard"], times["plain"], times["tags"]
            extra_tags = times["extra_tags"]
            totals.append(sum(active) / sum(plain) - 1)
            tags_only.append(sum(tagged) / sum(plain) - 1)
            cpu = times["cpu"]
            cpu_totals.append(sum(cpu["envguard"]) / sum(cpu["plain"]) - 1)
            cpu_tags_only.append(sum(cpu["tags"]) / sum(cpu["plain"]) - 1)
            blocks += [a / p - 1 for a, p in zip(active, plain, strict=True)]
            for mode, figures in per_run.items():
                figures.append(sum(times[mode]) / RUNS * 1000)
            print(
                f"  repetition {rep + 1}: overhead {totals[-1] * 100:.2f}% "
                f"(MLflow storing envguard's tags alone: {tags_only[-1] * 100:.2f}%); CPU time: "
                f"{cpu_totals[-1] * 100:.2f}% ({cpu_tags_only[-1] * 100:.2f}%)",
                file=sys.stderr,
            )
        added, loaded, present, absent = [], [], [], []
        for _ in range(IMPORT_REPEATS):  # alternate: present, absent
            mine, total = _importtime(IMPORT)
            added.append(mine / 1000)
            present.append(total / 1000)
            absent.append(_importtime(IMPORT, hide=True)[1] / 1000)
            loaded.append(_importtime(FIRST_USE)[0] / 1000)
            print(f"  import: +{added[-1]:.2f} ms, first use +{loaded[-1]:.2f} ms", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    overhead = statistics.median(totals)
    added_ms = statistics.median(added)
    return {
        "name": NAME,
        "command": f"{REPEATS} x {RUNS} runs x (10 params, 10 metrics, 1 pandas dataset input, "
        f"1 artifact) on one sqlite store, ENVGUARD_ENV=train, in blocks of {BLOCK} rotating "
        "with the baseline and a tags-only mode in one process; overhead = median over "
        "repetitions of total time ratio - 1; tags-only: plain MLflow given envguard's run and "
        "input tags, same ratio; import: python -X importtime -c 'import mlflow' (median of "
        f"{IMPORT_REPEATS}), cumulative time of the envguard modules it loads; first use: the "
        "same after building a store and resolving run-context tags, ENVGUARD_DISABLE=1",
        "baseline": "the same runs with ENVGUARD_DISABLE=1 (plain MLflow stores) on the same "
        "sqlite file, in the same process; import: the same command with envguard's entry "
        "points hidden, alternating with it",
        "results": {
            "envguard_ms_per_run": round(statistics.median(per_run["envguard"]), 3),
            "plain_ms_per_run": round(statistics.median(per_run["plain"]), 3),
            "tags_only_ms_per_run": round(statistics.median(per_run["tags"]), 3),
            "tags_only_overhead_pct": round(statistics.median(tags_only) * 100, 2),
            "cpu_overhead_pct": round(statistics.median(cpu_totals) * 100, 2),
            "cpu_overhead_pct_min": round(min(cpu_totals) * 100, 2),
            "cpu_overhead_pct_max": round(max(cpu_totals) * 100, 2),
            "cpu_tags_only_overhead_pct": round(statistics.median(cpu_tags_only) * 100, 2),
            "envguard_run_tags": extra_tags[0] if extra_tags else 0,
            "envguard_input_tags": extra_tags[1] if extra_tags else 0,
            "overhead_pct": round(overhead * 100, 2),
            "overhead_pct_min": round(min(totals) * 100, 2),
            "overhead_pct_max": round(max(totals) * 100, 2),
            "block_pair_median_pct": round(statistics.median(blocks) * 100, 2),
            "import_added_ms": round(added_ms, 2),
            "first_use_added_ms": round(statistics.median(loaded), 2),
            "import_mlflow_ms": round(statistics.median(present), 1),
            "import_mlflow_without_plugin_ms": round(statistics.median(absent), 1),
        },
        "goals": {"overhead_pct": "<= 3", "import_added_ms": "< 20", "first_use_added_ms": "< 20"},
        "met": overhead <= 0.03 and added_ms < 20 and statistics.median(loaded) < 20,
    }
