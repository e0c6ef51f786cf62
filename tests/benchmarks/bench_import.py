"""What ``import envguard`` costs, against ``import mlflow`` measured in the same run."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from typing import Any

NAME = "import"
RUNS = 7


def _cumulative_us(module: str) -> int:
    """Cumulative import time of ``module`` in a fresh interpreter (``-X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    pattern = re.compile(rf"^import time:\s+\d+ \|\s+(\d+) \|\s*{re.escape(module)}$")
    for line in result.stderr.splitlines():
        match = pattern.match(line)
        if match:
            return int(match.group(1))
    raise RuntimeError(f"no importtime line for {module}")


def run() -> dict[str, Any]:
    _cumulative_us("envguard"), _cumulative_us("mlflow")  # warm the file-system cache
    envguard = [_cumulative_us("envguard") for _ in range(RUNS)]
    mlflow = [_cumulative_us("mlflow") for _ in range(RUNS)]
    eg_ms = statistics.median(envguard) / 1000
    ml_ms = statistics.median(mlflow) / 1000
    return {
        "name": NAME,
        "command": 'python -X importtime -c "import envguard"  (median of 7, cumulative)',
        "baseline": 'python -X importtime -c "import mlflow"  (same run)',
        "results": {
            "envguard_ms": round(eg_ms, 2),
            "mlflow_ms": round(ml_ms, 2),
            "ratio_to_mlflow": round(eg_ms / ml_ms, 4),
        },
        "goals": {"envguard_ms": "< 100", "ratio_to_mlflow": "< 0.1"},
        "met": eg_ms < 100 and eg_ms / ml_ms < 0.1,
    }
