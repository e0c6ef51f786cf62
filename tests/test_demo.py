"""``envguard demo`` plays the whole story and every decision is the expected one.

One run (it starts its own ``mlflow server --app-name envguard`` and stops it); the assertions
read the decisions from its output and the state it leaves behind.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workspace = tmp_path_factory.mktemp("demo") / "ws"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    for key in [k for k in env if k.startswith(("ENVGUARD_", "MLFLOW_"))]:
        env.pop(key)
    result = subprocess.run(
        [sys.executable, "-m", "envguard", "demo", "--workdir", str(workspace)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return workspace, result.stdout


def test_every_decision_is_the_expected_one(demo: tuple[Path, str]) -> None:
    _, out = demo
    assert "UNEXPECTED" not in out
    assert "every decision was as expected" in out
    assert "DENY data/customers.csv in train (non-prod)" in out
    assert "DENY remotes/dev-data/files/md5/" in out  # the smuggled copy, in the dev remote
    assert "has production lineage from 'prod'" in out  # the training script's refusal
    assert "envguard.env = train" in out  # the allowed run's tags, printed by the script
    assert "needs 2 approval(s)" in out
    assert "separation-of-duties" in out
    assert "registry-bypass" in out  # the database edit, found by the scan
    assert ": intact" in out


def test_production_promoted_then_edited_in_the_database(demo: tuple[Path, str]) -> None:
    workspace, out = demo
    with sqlite3.connect(workspace / "mlflow" / "mlflow.db") as db:
        aliases = dict(db.execute("SELECT alias, version FROM registered_model_aliases"))
    # The server promoted version 1; the demo's database edit then moved @production to 2.
    assert aliases == {"staging": 1, "production": 2}
    url = next(
        line.split("=", 1)[1].split()[0]
        for line in out.splitlines()
        if "export MLFLOW_TRACKING_URI=" in line
    )
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the demo's server still answers"
    assert (workspace / ".envguard" / "lineage.db").exists()
    assert (workspace / "report.html").exists()
