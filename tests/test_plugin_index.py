"""The plugin index: the plugins found are the same with or without it, and installing,
upgrading or removing a distribution is seen at the next command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from envguard.plugin_index import index_folder
from envguard.plugins import PluginManager
from tests.conftest import ROOT
from tests.test_plugins import make_distribution

PLUGIN = """
    from envguard import hookimpl
    @hookimpl
    def envguard_identity(policy):
        return "{who}"
"""


# What a command's plugin manager loads, in a fresh interpreter (`envguard plugins` would also
# import MLflow, for the entry points of other tools: seconds per run).
LIST = """
import json
from envguard.plugins import PluginManager
print(json.dumps([vars(i) for i in PluginManager().load_entry_points().infos.values()]))
"""


def _run_plugins(site: Path, home: Path, cwd: Path) -> dict[str, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "XDG_CACHE_HOME": str(home)}
    out = subprocess.run(
        [sys.executable, "-c", LIST],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return {p["name"]: p for p in json.loads(out.stdout)}


def _index_files(home: Path) -> list[Path]:
    return sorted((home / "envguard" / "plugins").glob("*.json"))


def test_installing_upgrading_and_removing_a_plugin_is_seen(tmp_path: Path) -> None:
    # (Names without "-": importlib.metadata takes a distribution's name from its folder's.)
    site, home, cwd = tmp_path / "site", tmp_path / "cache", tmp_path / "cwd"
    cwd.mkdir()
    make_distribution(site, "acmeone", {"one": "acme_one"}, {}, {"acme_one": PLUGIN})
    first = _run_plugins(site, home, cwd)
    assert first["one"]["status"] == "active"
    # The first import of a plugin may write its bytecode into a folder of sys.path (a new
    # __pycache__ there), which changes that folder's time: the index is written once more.
    assert _run_plugins(site, home, cwd) == first
    [index] = _index_files(home)
    written = index.stat().st_mtime_ns
    assert _run_plugins(site, home, cwd) == first  # from the index ...
    assert index.stat().st_mtime_ns == written  # ... which was not written again
    # Installed: a new distribution in a folder of sys.path.
    make_distribution(site, "acmetwo", {"two": "acme_two"}, {}, {"acme_two": PLUGIN})
    second = _run_plugins(site, home, cwd)
    assert second["two"]["status"] == "active"
    assert second["two"]["hooks"] == ["envguard_identity"]
    # Upgraded: the dist-info folder is replaced by one with another version.
    (site / "acmetwo-1.0.dist-info").rename(site / "acmetwo-2.0.dist-info")
    meta = site / "acmetwo-2.0.dist-info" / "METADATA"
    meta.write_text(meta.read_text().replace("Version: 1.0", "Version: 2.0"))
    assert _run_plugins(site, home, cwd)["two"]["version"] == "2.0"
    # Removed.
    shutil.rmtree(site / "acmeone-1.0.dist-info")
    assert "one" not in _run_plugins(site, home, cwd)
    assert len(_index_files(home)) == 1  # one file per sys.path, rewritten


def _infos() -> list[dict[str, Any]]:
    manager = PluginManager({}).load_entry_points()
    return [vars(info) for info in manager.infos.values()]


@pytest.mark.parametrize("damage", ["none", "corrupt", "stale stamp", "writable by others"])
def test_the_index_answers_as_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    found = _infos()  # through importlib.metadata; the index is written
    assert {i["name"] for i in found} >= {"alerts", "dvc", "mlflow", "s3"}
    folder = index_folder()
    assert folder is not None
    [index] = list(folder.glob("*.json"))
    original = json.loads(index.read_text())
    entry = json.loads(index.read_text())
    if damage == "corrupt":
        index.write_text(index.read_text()[:50])
    elif damage == "stale stamp":
        entry["stamp"][0][2] = 1
        entry["plugins"] = []  # were it read, no plugin would load
        index.write_text(json.dumps(entry))
    elif damage == "writable by others":
        entry["plugins"] = []
        index.write_text(json.dumps(entry))
        index.chmod(0o666)
    assert _infos() == found
    assert json.loads(index.read_text()) == original  # ignored, and rewritten when damaged
    assert index.stat().st_mode & 0o777 == 0o600
