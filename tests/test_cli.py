"""The command line as a user meets it: help, version, exit codes, no tracebacks, light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

HEAVY = (
    "mlflow",
    "dvc",
    "boto3",
    "botocore",
    "great_expectations",
    "pandas",
    "pyarrow",
    "sqlalchemy",
)


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    full_env.pop("ENVGUARD_ENV", None)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=full_env, check=False
    )


@pytest.mark.parametrize(
    "code",
    [
        "import envguard",
        "import envguard, envguard.hookspecs, envguard.errors",
        "from envguard.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "from envguard.cli import main\ntry:\n    main(['mask', '--help'])\n"
        "except SystemExit:\n    pass",
        "from envguard.cli import main\ntry:\n    main(['proof', 'verify', '--help'])\n"
        "except SystemExit:\n    pass",
    ],
)
def test_light_imports(code: str) -> None:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules)))"
    result = run("-c", probe)
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    loaded = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    assert loaded == [], f"{code!r} imported {loaded}"


def test_version_and_help_on_every_command() -> None:
    version = run("-m", "envguard", "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("envguard, version ")
    for command in (
        ["env"],
        ["policy"],
        ["policy", "validate"],
        ["policy", "show"],
        ["policy", "init"],
        ["plugins"],
        ["mask"],
        ["proof"],
        ["proof", "verify"],
    ):
        result = run("-m", "envguard", *command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "Usage: envguard" in result.stdout


def test_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    result = run("-m", "envguard", "no-such-command")
    assert result.returncode == 2
    assert "No such command 'no-such-command'" in result.stderr
    result = run("-m", "envguard", "env", "--jsn")
    assert result.returncode == 2
    assert "Did you mean '--json'?" in result.stderr
    result = run("-m", "envguard", "env", cwd=tmp_path)
    assert result.returncode == 2
    assert "no policy found" in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = run("-m", "envguard", "--debug", "env", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert "no policy found" in result.stderr


def test_json_errors_are_json(tmp_path: Path) -> None:
    (tmp_path / "envguard.toml").write_text("[environments.x]\ntier = 'qa'\n")
    result = run("-m", "envguard", "policy", "validate", "--json", cwd=tmp_path)
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["error"] == "PolicyError"
    assert data["problems"][0]["field"] == "environments.x.tier"


def test_an_empty_data_folder_is_named_not_a_traceback(tmp_path: Path) -> None:
    """`data register` / `data check` of a folder without files: exit 2 naming the folder (it
    once reached the store with no events and printed a driver error)."""
    (tmp_path / "envguard.toml").write_text((ROOT / "examples" / "envguard.toml").read_text())
    (tmp_path / "empty").mkdir()
    for command in (["register", "empty", "--env", "prod"], ["check", "empty"]):
        result = run("-m", "envguard", "data", *command, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "empty: folder holds no files; name files or a data folder" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / ".envguard" / "lineage.db").exists()  # nothing was written
