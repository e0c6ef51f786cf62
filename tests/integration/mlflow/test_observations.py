"""When the observational records of runs (allowed uses of data without production lineage,
logged artifacts) reach the lineage store: batched across short runs, never lost, and at once
where this process's next gate could need them (envguard_mlflow.observations)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.mlflow.conftest import Site, clean_environ, write_policy


def _used_by(run_id: str) -> list[str]:
    from envguard.runtime import current

    return [e.kind for e in current().store.events(entity=f"run:{run_id}")]


def _one_run(frame: object, tmp_path: Path) -> str:
    import mlflow

    (tmp_path / "weights.txt").write_text("w")
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(frame, name="clean"), context="training")
        mlflow.log_artifact(str(tmp_path / "weights.txt"))
    return str(run.info.run_id)


def test_short_runs_wait_together_and_the_timer_writes_them(guarded: Site, tmp_path: Path) -> None:
    """Two short runs: their records wait (one transaction for both), and with no further run
    the timer thread writes them within twice FLUSH_AFTER, without any call from the user."""
    import mlflow
    import pandas as pd
    from envguard_mlflow.observations import FLUSH_AFTER

    mlflow.set_tracking_uri(guarded.train_uri)
    frame = pd.DataFrame({"timer": [21, 22, 23]})
    first, second = _one_run(frame, tmp_path), _one_run(frame, tmp_path)
    deadline = time.monotonic() + 2 * FLUSH_AFTER + 5
    while time.monotonic() < deadline and not (_used_by(first) and _used_by(second)):
        time.sleep(0.1)
    for run_id in (first, second):
        assert sorted(_used_by(run_id)) == ["artifact.logged", "dataset.used"]


def test_after_a_use_with_production_lineage_every_run_end_writes(
    guarded: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In warn mode a run uses production data and logs a file derived from it. What the
    process logs from then on may derive from production data, so each run's records are in
    the store when the run ends: the next run's use of the derived file finds its production
    lineage (dataset -> run -> artifact) at once."""
    import mlflow
    import pandas as pd
    from envguard_mlflow.datasets import data_sha256

    from envguard import runtime

    policy = write_policy(guarded, tmp_path / "warn.toml", "warn")
    monkeypatch.setenv("ENVGUARD_CONFIG", str(policy))
    runtime.reset()
    prod = pd.DataFrame({"customer": [7, 8, 9]})
    sha = data_sha256(mlflow.data.from_pandas(prod))
    runtime.current().store.append(
        runtime.current().draft(
            "dataset.registered", entities=[f"sha256:{sha}"], payload={"origin": "prod"}
        )
    )
    derived = tmp_path / "derived.csv"
    prod.assign(score=1.0).to_csv(derived, index=False)
    mlflow.set_tracking_uri(guarded.train_uri)
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_pandas(prod, name="customers"), context="training")
        mlflow.log_artifact(str(derived))
    assert sorted(_used_by(run.info.run_id)) == ["artifact.logged", "dataset.used"]
    with mlflow.start_run() as later:
        frame = pd.read_csv(derived)
        mlflow.log_input(mlflow.data.from_pandas(frame, source=str(derived), name="derived"))
    (use,) = runtime.current().store.events(entity=f"run:{later.info.run_id}")
    assert use.kind == "dataset.used"
    assert use.payload["origin"] == "prod"  # found through the first run, a moment old
    assert use.payload["decision"]["outcome"] == "warn"
    assert use.payload["chain"][1:] == [
        f"used-by -> run:{run.info.run_id}",
        f"logged -> sha256:{hashlib.sha256(derived.read_bytes()).hexdigest()[:12]}…",
    ]


SCRIPT = """
import os, sys
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
frame = pd.DataFrame({"observed": [11, 12, 13]})
with mlflow.start_run() as run:
    mlflow.log_input(mlflow.data.from_pandas(frame, name="clean"), context="training")
print(run.info.run_id, os.getpid(), flush=True)
pid = os.fork()
if pid == 0:  # a forked child (multiprocessing) logs its own run; the parent's records are not its
    with mlflow.start_run() as child:
        mlflow.log_input(mlflow.data.from_pandas(frame, name="child"), context="training")
    print(child.info.run_id, os.getpid(), flush=True)
    os._exit(0) if sys.argv[2] == "kill" else sys.exit(0)
os.waitpid(pid, 0)
"""


@pytest.mark.parametrize("child_exit", ["exit", "kill"])
def test_a_process_that_exits_or_forks_writes_each_record_once(
    guarded: Site, tmp_path: Path, child_exit: str
) -> None:
    """A script whose run is shorter than FLUSH_AFTER: its records are written at exit. A forked
    child writes its own records, not its parent's; one that dies without its exit handlers
    leaves them in its journal, and the next write to the store replays them."""
    from envguard.runtime import current

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, guarded.train_uri, child_exit],
        cwd=guarded.root,
        env=clean_environ(ENVGUARD_CONFIG=str(guarded.policy), ENVGUARD_ENV="train"),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    parent, parent_pid, child, child_pid = done.stdout.split()
    store = current().store
    if child_exit == "kill":  # the next write replays the dead child's journal
        store.append(current().draft("dataset.registered", entities=["sha256:" + "0" * 64]))
    assert _used_by(parent) == ["dataset.used"]
    assert _used_by(child) == ["dataset.used"]
    spool = current().store.spool.folder
    for pid in (parent_pid, child_pid):
        assert not list(spool.glob(f".journal-{pid}-*"))  # written, so removed
