"""The DVC plugin's sweep of a local remote: its objects and its manifest, as ``envguard dvc tag``
writes it, read from the real folder."""

from __future__ import annotations

import json
from pathlib import Path

import envguard_dvc
import pytest

from envguard.plugins import PluginManager
from envguard.runtime import Runtime
from envguard.scan.sweep import scan

POLICY = """\
version = 1
default_env = "train"
[environments.train]
tier = "non-prod"
dvc_remotes = ["{dev}"]
[environments.prod]
tier = "prod"
dvc_remotes = ["{prod}"]
"""


def _object(root: Path, md5: str, body: bytes) -> str:
    key = f"files/md5/{md5[:2]}/{md5[2:]}"
    (root / key).parent.mkdir(parents=True, exist_ok=True)
    (root / key).write_bytes(body)
    return key


def test_local_remotes_untagged_and_production_objects(tmp_path: Path) -> None:
    dev, prod = tmp_path / "dev-remote", tmp_path / "prod-remote"
    prod.mkdir()
    tagged = _object(dev, "a" * 32, b"a")
    copied = _object(dev, "b" * 32, b"b")
    untagged = _object(dev, "c" * 32, b"c")
    manifest = {
        tagged: {"envguard.env": "train", "envguard.origin": "train"},
        copied: {"envguard.env": "train", "envguard.origin": "prod"},
    }
    (dev / "envguard-manifest.json").write_text(json.dumps({"version": 1, "objects": manifest}))
    (tmp_path / "envguard.toml").write_text(POLICY.format(dev=dev, prod=prod))
    environ = {"ENVGUARD_ENV": "train"}
    manager = PluginManager(environ)
    manager.loaded = True
    manager.register(envguard_dvc, "dvc")
    report = scan(Runtime(tmp_path / "envguard.toml", environ, plugins=manager), record=False)
    assert {(f.rule, f.evidence.get("key")) for f in report.findings} == {
        ("object-untagged", untagged),
        ("object-prod-in-non-prod", copied),
    }
    assert report.swept[f"objects in DVC remote {dev}"] == 3
    assert report.exit_code == 1


def test_a_remote_named_but_not_configured_here_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "envguard.toml").write_text(POLICY.format(dev="dev-data", prod="prod-data"))
    environ = {"ENVGUARD_ENV": "train"}
    manager = PluginManager(environ)
    manager.loaded = True
    manager.register(envguard_dvc, "dvc")
    monkeypatch.chdir(tmp_path)
    report = scan(Runtime(tmp_path / "envguard.toml", environ, plugins=manager), record=False)
    assert {(f.rule, f.entity) for f in report.findings} == {
        ("scan-unreachable", "dvc-remote:dev-data"),
        ("scan-unreachable", "dvc-remote:prod-data"),
    }
    assert report.exit_code == 2
