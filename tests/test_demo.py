"""``envguard demo`` plays the whole story and every decision is the expected one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("ENVGUARD_ENV", None)
    result = subprocess.run(
        [sys.executable, "-m", "envguard", "demo", "--workdir", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "UNEXPECTED" not in out
    assert "DENY prod/customers.csv in train (non-prod)" in out
    assert "DENY dev/customers_export.csv in train (non-prod)" in out
    assert ": intact" in out
    assert "every decision was as expected" in out
    assert (tmp_path / "ws" / ".envguard" / "lineage.db").exists()
