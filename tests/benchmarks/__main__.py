"""Run benchmarks, write docs/benchmarks/NAME.json and regenerate docs/benchmarks.md.

Usage: ``python -m tests.benchmarks [NAME ...]`` (all when no name is given).
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "benchmarks"
MODULES = [
    "bench_import",
    "bench_lineage",
    "bench_dvc",
    "bench_masking",
    "bench_mlflow",
    "bench_audit_lineage",
    "bench_registry",
    "bench_scan",
]


def machine() -> dict[str, Any]:
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
    }


def render(results: list[dict[str, Any]]) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Produced by `nox -s bench`, which runs each benchmark against the plain tool in the same",
        "run and writes the JSON files in `docs/benchmarks/`. Figures are from the machine below;",
        "rerun the session to measure yours.",
        "",
    ]
    for result in results:
        lines += [
            f"## {result['name']}",
            "",
            f"- measured: `{result['command']}`",
            f"- baseline: `{result['baseline']}`",
            f"- machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, "
            f"Python {result['machine']['python']}, {result['machine']['date']}",
            f"- goals met: **{'yes' if result['met'] else 'no'}**",
            "",
            "| figure | value | goal |",
            "|---|---|---|",
        ]
        for key, value in result["results"].items():
            lines.append(f"| {key} | {value} | {result['goals'].get(key, '')} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    wanted = set(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    for module_name in MODULES:
        module = importlib.import_module(f"tests.benchmarks.{module_name}")
        if wanted and module.NAME not in wanted:
            continue
        print(f"bench {module.NAME} ...", flush=True)
        result = module.run()
        result["machine"] = machine()
        (OUT / f"{module.NAME}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["results"]), "met" if result["met"] else "NOT MET", flush=True)
    results = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    (ROOT / "docs" / "benchmarks.md").write_text(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
