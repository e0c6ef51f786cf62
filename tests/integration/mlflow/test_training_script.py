"""An unmodified training script, run as a user runs it, against both back ends."""

from __future__ import annotations

import getpass
import hashlib
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from envguard.lineage.events import Event
from envguard.policy import load_policy
from tests.integration.mlflow.conftest import Site, clean_environ

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("train.py")
# An MLflow knob, not envguard's: the two log_model calls otherwise spend ~25 s inferring pip
# requirements in a subprocess each; with a short timeout MLflow falls back to its defaults.
FAST = {"MLFLOW_REQUIREMENTS_INFERENCE_TIMEOUT": "1"}


@dataclass
class ScriptRun:
    workdir: Path
    tracking_uri: str
    returncode: int
    stdout: str
    stderr: str
    commit: str | None = None

    @property
    def run_id(self) -> str:
        assert self.returncode == 0, self.stderr[-3000:]
        return self.stdout.strip().splitlines()[-1]

    def recorded(self) -> list[Event]:
        """The events the script's process recorded in its lineage log."""
        from envguard.lineage.sql import SqlLineageStore

        store = SqlLineageStore(f"sqlite:///{self.workdir / '.envguard' / 'lineage.db'}")
        try:
            return list(store.events())
        finally:
            store.close()


def _workdir(site: Site, name: str, git: bool) -> tuple[Path, str | None]:
    """A folder holding the script and a copy of the policy (found by walking up the cwd)."""
    workdir = site.root / name
    workdir.mkdir()
    shutil.copy(SCRIPT, workdir / "train.py")
    shutil.copy(site.policy, workdir / "envguard.toml")
    if not git:
        return workdir, None
    ident = ["-c", "user.name=ada", "-c", "user.email=ada@example.com"]
    for args in (["init", "-q"], ["add", "train.py"], [*ident, "commit", "-qm", "train"]):
        subprocess.run(["git", *args], cwd=workdir, check=True, capture_output=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=workdir, check=True, capture_output=True, text=True
    )
    return workdir, head.stdout.strip()


def _start(workdir: Path, uri: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "train.py"],
        cwd=workdir,
        env=clean_environ(ENVGUARD_ENV="train", MLFLOW_TRACKING_URI=uri, **FAST),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="session")
def script_runs(site: Site, request: pytest.FixtureRequest) -> dict[str, ScriptRun]:
    """The script on sqlite (in a git repo) and, concurrently, over HTTP to the real server."""
    started = {}
    workdir, commit = _workdir(site, "script-sqlite", git=True)
    started["sqlite"] = (workdir, site.train_uri, commit, _start(workdir, site.train_uri))
    server = str(request.getfixturevalue("mlflow_server"))  # starts while the first one runs
    workdir, commit = _workdir(site, "script-http", git=False)
    started["http"] = (workdir, server, commit, _start(workdir, server))
    runs = {}
    for name, (workdir, uri, commit, proc) in started.items():
        out, err = proc.communicate(timeout=480)
        runs[name] = ScriptRun(workdir, uri, proc.returncode, out, err, commit)
    return runs


@pytest.mark.parametrize("backend", ["sqlite", "http"])
def test_run_models_and_datasets_carry_the_environment(
    script_runs: dict[str, ScriptRun], guarded: Site, backend: str
) -> None:
    from mlflow import MlflowClient

    done = script_runs[backend]
    client = MlflowClient(done.tracking_uri)
    run = client.get_run(done.run_id)
    expected = {
        "envguard.env": "train",
        "envguard.tier": "non-prod",
        "envguard.policy_sha256": load_policy(guarded.policy).sha256,
        "envguard.actor": getpass.getuser(),
        "envguard.host": socket.gethostname(),
    }
    tags = run.data.tags
    assert {k: tags.get(k) for k in expected} == expected
    if done.commit:
        assert tags["envguard.git_commit"] == done.commit
    else:
        assert "envguard.git_commit" not in tags

    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert "diabetes-train" in inputs, sorted(inputs)
    for dataset_input in inputs.values():
        input_tags = {t.key: t.value for t in dataset_input.tags}
        assert input_tags["envguard.env"] == "train"
        assert input_tags["envguard.tier"] == "non-prod"
        assert input_tags["envguard.policy_sha256"] == expected["envguard.policy_sha256"]
        assert "envguard.mlflow_digest" not in input_tags  # MLflow's digest: dataset.digest
        # autolog's own training-set input too: envguard's full digest of the data fit() got
        assert input_tags["envguard.sha256_of"] == "data", (dataset_input.dataset.name, input_tags)
        assert len(input_tags["envguard.sha256"]) == 64
    assert len(inputs) >= 2, "autolog logged no training dataset"
    mine = {t.key: t.value for t in inputs["diabetes-train"].tags}
    assert mine["envguard.sha256_of"] == "data"
    assert len(mine["envguard.sha256"]) == 64
    assert mine["mlflow.data.context"] == "training"

    models = client.search_logged_models(experiment_ids=[run.info.experiment_id])
    made_here = [m for m in models if m.source_run_id == done.run_id]
    assert made_here, "log_model made no LoggedModel"
    for model in made_here:
        assert {k: model.tags.get(k) for k in expected} == expected


@pytest.mark.parametrize("backend", ["sqlite", "http"])
def test_artifacts_and_uses_are_recorded_with_their_digest(
    script_runs: dict[str, ScriptRun], backend: str
) -> None:
    done = script_runs[backend]
    events = done.recorded()
    artifacts = [e for e in events if e.kind == "artifact.logged"]
    notes = [e for e in artifacts if e.payload["path"] == "notes.txt"]
    assert len(notes) == 1, [e.payload for e in artifacts]
    want = hashlib.sha256((done.workdir / "notes.txt").read_bytes()).hexdigest()
    assert notes[0].payload["sha256"] == want
    assert notes[0].environment == "train"
    assert f"sha256:{want}" in notes[0].entities
    assert any(str(e.payload["path"]).endswith("MLmodel") for e in artifacts)
    used = [e for e in events if e.kind == "dataset.used"]
    assert used
    assert all(f"run:{done.run_id}" in e.entities + [link.dst for link in e.links] for e in used)


def test_an_undeclared_environment_stops_the_first_call_before_anything_is_written(
    guarded: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from envguard import runtime
    from envguard.errors import EnvironmentUnknown

    monkeypatch.setenv("ENVGUARD_ENV", "staging")
    runtime.reset()
    never = f"sqlite:///{guarded.root}/never.db"
    with pytest.raises(EnvironmentUnknown) as caught:
        MlflowClient(never).create_run("0")
    assert str(caught.value) == (
        "unknown environment 'staging' (from ENVGUARD_ENV); the policy declares: "
        "train, test, prod. Set ENVGUARD_ENV to one of them."
    )
    assert not (guarded.root / "never.db").exists()
