"""A run that reads a DVC-tracked production file is stopped at the read, by DVC's own md5.

A real git repository, the real ``dvc`` command (``dvc add``), the real ``envguard`` commands
that give the file its production origin (``envguard data register``, ``envguard dvc sync``), and
an unmodified script that reads the files with pandas inside ``mlflow.start_run()``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from envguard.lineage.sql import SqlLineageStore
from tests.integration.dvc.conftest import DVC
from tests.integration.mlflow.conftest import clean_environ

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("read_dvc.py")
BIN = Path(sys.executable).parent
POLICY = """\
version = 1
mode = "{mode}"

[environments.train]
tier = "non-prod"

[environments.prod]
tier = "prod"
"""


@dataclass(frozen=True)
class DvcRepo:
    root: Path
    md5: dict[str, str]  # file -> md5 DVC recorded

    def run(self, *files: str, config: str = "envguard.toml") -> subprocess.CompletedProcess[str]:
        env = clean_environ(
            ENVGUARD_ENV="train",
            ENVGUARD_CONFIG=str(self.root / config),
            MLFLOW_TRACKING_URI=f"sqlite:///{self.root / 'mlflow.db'}",
        )
        return subprocess.run(
            [sys.executable, "read_dvc.py", *files],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def events(self) -> list:  # type: ignore[type-arg]
        store = SqlLineageStore(f"sqlite:///{self.root / '.envguard' / 'lineage.db'}")
        try:
            return list(store.events())
        finally:
            store.close()


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> DvcRepo:
    root = tmp_path_factory.mktemp("dvc-reads")
    (root / "envguard.toml").write_text(POLICY.format(mode="enforce"))
    (root / "warn.toml").write_text(POLICY.format(mode="warn"))
    (root / "customers.csv").write_text("id,email\n1,ada@example.com\n2,grace@example.com\n")
    (root / "synthetic.csv").write_text("id,email\n1,u1@example.org\n")
    (root / "read_dvc.py").write_text(SCRIPT.read_text())
    env = clean_environ(ENVGUARD_ENV="train")

    def sh(*command: str) -> None:
        done = subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"

    sh("git", "init", "-q")
    sh(DVC, "init", "-q")
    sh(DVC, "add", "-q", "customers.csv", "synthetic.csv")
    sh(str(BIN / "envguard"), "data", "register", "customers.csv", "--env", "prod")
    sh(str(BIN / "envguard"), "dvc", "sync")
    from ruamel.yaml import YAML

    md5 = {
        name: YAML(typ="safe", pure=True).load((root / f"{name}.dvc").read_text())["outs"][0]["md5"]
        for name in ("customers.csv", "synthetic.csv")
    }
    return DvcRepo(root, md5)


def test_a_production_file_read_in_a_run_is_refused_and_every_read_recorded(
    dvc_repo: DvcRepo,
) -> None:
    done = dvc_repo.run("synthetic.csv", "customers.csv")
    assert done.returncode == 1, done.stderr[-3000:]
    run_id = done.stdout.split()[0]
    assert "EnvGuardDenied" in done.stderr or "Denied" in done.stderr, done.stderr[-3000:]
    tail = done.stderr[done.stderr.rindex("Denied") :]
    assert str(dvc_repo.root / "customers.csv") in tail
    assert "has production lineage from 'prod'" in tail
    assert "envguard mask" in tail

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{dvc_repo.root / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.metrics == {"rows_synthetic": 1.0}  # what the run did before is kept
    assert run.data.tags["envguard.env"] == "train"

    events = dvc_repo.events()
    synthetic = f"dvc-md5:{dvc_repo.md5['synthetic.csv']}"
    customers = f"dvc-md5:{dvc_repo.md5['customers.csv']}"
    used = [e for e in events if e.kind == "dataset.used" and synthetic in e.entities]
    assert [(link.src, link.dst) for link in used[0].links] == [(synthetic, f"run:{run_id}")]
    refused = [e for e in events if e.kind == "decision" and customers in e.entities]
    assert refused[0].payload["decision"]["outcome"] == "deny"
    assert f"run:{run_id}" in refused[0].entities
    assert refused[0].links == []


def test_warn_mode_lets_the_read_through_with_a_warning_and_records_it(
    dvc_repo: DvcRepo,
) -> None:
    done = dvc_repo.run("customers.csv", config="warn.toml")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "has production lineage from 'prod'" in done.stderr
    run_id = done.stdout.split()[0]
    customers = f"dvc-md5:{dvc_repo.md5['customers.csv']}"
    used = [
        e
        for e in dvc_repo.events()
        if e.kind == "dataset.used" and customers in e.entities and e.links
    ]
    assert used[-1].links[0].dst == f"run:{run_id}"
    assert used[-1].payload["decision"]["outcome"] == "warn"
    assert used[-1].payload["origin"] == "prod"


def test_tracked_files_come_from_the_dvc_files_without_hashing(dvc_repo: DvcRepo) -> None:
    """The DVC plugin's envguard_tracked_files, through the core's plugin manager."""
    from envguard_dvc.tracked import tracked_files

    from envguard.plugins import PluginManager
    from envguard.policy import load_policy

    manager = PluginManager({}).load_entry_points()
    policy = load_policy(dvc_repo.root / "envguard.toml")
    assert manager.tracked_files(str(dvc_repo.root), policy) == tracked_files(dvc_repo.root)

    found = tracked_files(dvc_repo.root)
    resolved = os.path.realpath(dvc_repo.root)
    assert found == {
        f"{resolved}/customers.csv": f"dvc-md5:{dvc_repo.md5['customers.csv']}",
        f"{resolved}/synthetic.csv": f"dvc-md5:{dvc_repo.md5['synthetic.csv']}",
    }
    assert tracked_files(dvc_repo.root.parent) == {}
