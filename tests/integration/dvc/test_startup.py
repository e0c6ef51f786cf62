"""What `envguard data check` loads on a DVC-tracked file: a warm start (the policy validated and
the plugins found before) imports none of pydantic, cryptography, SQLAlchemy and
importlib.metadata, and decides the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.dvc.conftest import Repo, write

# Runs the command as the `envguard` script does, then writes the names of the loaded modules.
WRAPPER = """\
import json, sys
out = sys.argv[1]
sys.argv = ["envguard", *sys.argv[2:]]
try:
    from envguard.cli import main
    main()
finally:
    with open(out, "w") as handle:
        json.dump(sorted(sys.modules), handle)
"""
HEAVY = ("pydantic", "cryptography", "sqlalchemy")


def _check(repo: Repo, tmp_path: Path, *paths: str) -> tuple[int, str, set[str]]:
    # The wrapper's folder is sys.path[0], part of the plugin index's key: nothing else goes there.
    wrapper = write(tmp_path / "bin" / "wrapper.py", WRAPPER)
    loaded = tmp_path / "modules.json"
    env = {**repo.env, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, str(wrapper), str(loaded), "data", "check", *paths],
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    modules = json.loads(loaded.read_text())
    heavy = {m for m in modules if m.split(".")[0] in HEAVY or m == "importlib.metadata"}
    return done.returncode, done.stdout, heavy


def test_a_warm_data_check_imports_no_validation_or_crypto(repo: Repo, tmp_path: Path) -> None:
    write(repo.root / "big.csv", "id\n" + "1\n" * 1000)
    repo.dvc("add", "-q", "big.csv")
    cold = _check(repo, tmp_path, "big.csv")
    assert cold[0] == 0
    assert cold[1].startswith("ALLOW big.csv in train")
    # The first run validates the policy and finds the plugins (and keeps both).
    assert {"pydantic", "importlib.metadata"} <= cold[2]
    warm = _check(repo, tmp_path, "big.csv")
    assert warm[:2] == cold[:2]
    assert warm[2] == set()
