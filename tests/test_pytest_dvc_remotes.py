"""envguard_pytest.dvc_remotes: remote names to URLs, as DVC resolves them (DVC's config API), and
the INI reading used without DVC, which must agree with it on a repository's two files."""

from __future__ import annotations

from pathlib import Path

import pytest
from envguard_pytest.dvc_remotes import _from_ini, find_dvc_dir, remote_urls

from envguard.errors import InputError

CONFIG = """\
[core]
    remote = prod-data
['remote "prod-data"']
    url = s3://acme-dvc/store
    endpointurl = http://127.0.0.1:9000
['remote "shared"']
    url = ../../shared-store
"""
LOCAL = """\
['remote "shared"']
    url = /mnt/prod-share
['remote "mine"']
    url = ../my-store
"""


def test_both_readers_resolve_local_over_repo_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(tmp_path / "global"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(tmp_path / "system"))
    dvc_dir = tmp_path / "repo" / ".dvc"
    dvc_dir.mkdir(parents=True)
    (dvc_dir / "config").write_text(CONFIG)
    (dvc_dir / "config.local").write_text(LOCAL)
    nested = tmp_path / "repo" / "tests" / "unit"
    nested.mkdir(parents=True)
    assert find_dvc_dir(nested) == dvc_dir

    expected = {
        "prod-data": "s3://acme-dvc/store",
        "shared": "/mnt/prod-share",  # config.local shadows .dvc/config
        "mine": str(tmp_path / "repo" / "my-store"),  # relative to the .dvc folder
    }
    assert remote_urls(dvc_dir) == expected
    assert _from_ini(dvc_dir) == expected


def test_an_unreadable_config_is_an_input_error(tmp_path: Path) -> None:
    dvc_dir = tmp_path / ".dvc"
    dvc_dir.mkdir()
    (dvc_dir / "config").write_text("['remote \"x\"'\n    url = s3://b\n")
    with pytest.raises(InputError, match=r"\.dvc"):
        remote_urls(dvc_dir)
    with pytest.raises(InputError, match="config"):
        _from_ini(dvc_dir)
