"""examples/churn runs as a team would run it: ``dvc repro`` (the real dvc, in a new git
repository) against a real ``mlflow server --app-name envguard`` started with the example's own
policy, then its CI promotion script: refused without approvals, promoted with two."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from envguard.demo.server import DemoServer
from envguard.demo.story import SERVER_DEADLINE_S
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "churn"
BIN = str(Path(sys.executable).parent)


@dataclass
class Project:
    folder: Path
    server: DemoServer

    def run(self, user: str, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ENVGUARD_", "MLFLOW_", "_MLFLOW"))
        }
        env.update(self.server.credentials(user))
        env.update(
            ENVGUARD_ENV="train",
            ENVGUARD_ACTOR=user,
            DVC_NO_ANALYTICS="1",
            MLFLOW_DISABLE_TELEMETRY="true",
            NO_COLOR="1",
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        )
        return subprocess.run(
            list(argv),
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    folder = tmp_path_factory.mktemp("example") / "churn"
    shutil.copytree(EXAMPLE, folder)
    server = DemoServer(folder, folder / "envguard.toml", ("ada", "grace", "linus"))
    server.start()
    try:
        for argv in (["git", "init", "-q"], [f"{BIN}/dvc", "init", "-q"]):
            subprocess.run(argv, cwd=folder, check=True, capture_output=True)
        server.ready(timeout=SERVER_DEADLINE_S)
        yield Project(folder, server)
    finally:
        server.stop()


def test_the_stage_scripts_use_plain_mlflow() -> None:
    for script in (EXAMPLE / "src").glob("*.py"):
        assert not re.search(r"^\s*(import|from) envguard", script.read_text(), re.M), script


def test_pipeline_then_promotion_refused_then_approved(project: Project) -> None:
    repro = project.run("ada", "dvc", "repro")
    assert repro.returncode == 0, repro.stdout[-4000:] + repro.stderr[-4000:]
    folder = project.folder
    assert (folder / "data/masked/customers.csv.envguard-proof.json").exists()
    model = (folder / "outputs/model.txt").read_text().strip()
    assert model == "models:/churn/1"

    early = project.run("ada", "bash", "ci/promote.sh")
    assert early.returncode == 1, early.stdout + early.stderr
    assert "moved models:/churn/1 to @staging" in early.stdout
    assert "needs 2 approval(s)" in early.stdout
    assert "not ready for production" in early.stderr

    own = project.run("ada", "envguard", "approve", model, "--to", "prod")
    assert own.returncode == 1
    assert "separation-of-duties" in own.stderr
    for user in ("grace", "linus"):
        approved = project.run(user, "envguard", "approve", model, "--to", "prod")
        assert approved.returncode == 0, approved.stderr

    done = project.run("ada", "bash", "ci/promote.sh")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "moved models:/churn/1 to @production" in done.stdout
    with sqlite3.connect(project.server.database) as db:
        aliases = dict(db.execute("SELECT alias, version FROM registered_model_aliases"))
    assert aliases == {"staging": 1, "production": 1}
