"""The server app fails closed: without its policy or its lineage store it does not start."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_POLICY, CliResult


def test_the_app_factory_refuses_a_broken_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envguard_mlflow.server import create_app

    from envguard.errors import PolicyError

    policy = tmp_path / "envguard.toml"
    policy.write_text("version = 1\nmode = 'sometimes'\n")
    monkeypatch.setenv("ENVGUARD_CONFIG", str(policy))
    with pytest.raises(PolicyError, match="mode"):
        create_app()


def test_the_app_factory_refuses_an_unreachable_lineage_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envguard_mlflow.server import create_app

    from envguard.errors import StoreError

    policy = tmp_path / "envguard.toml"
    policy.write_text(EXAMPLE_POLICY.read_text())
    monkeypatch.setenv("ENVGUARD_CONFIG", str(policy))
    monkeypatch.setenv("ENVGUARD_LINEAGE_URL", f"sqlite:///{tmp_path}/missing/dir/x/lineage.db")
    with pytest.raises(StoreError):
        create_app()


def test_envguard_server_checks_before_mlflow_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, envguard_cli: Callable[..., CliResult]
) -> None:
    policy = tmp_path / "envguard.toml"
    policy.write_text("version = 1\n[environments.x]\ntier = 'nope'\n")
    monkeypatch.setenv("ENVGUARD_CONFIG", str(policy))
    result = envguard_cli("server", "--port", "1")
    assert result.exit_code == 2
    assert "tier" in result.stderr
