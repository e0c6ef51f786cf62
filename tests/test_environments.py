"""Environment resolution: ENVGUARD_ENV, then the policy default, then the detection hook."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from envguard import hookimpl
from envguard.environments import resolve_environment
from envguard.errors import ConfigError, EnvironmentUnknown
from envguard.plugins import PluginManager
from envguard.policy import Policy, load_policy
from tests.conftest import CliResult


class Detector:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer

    @hookimpl
    def envguard_detect_environment(self, policy: Policy) -> str | None:
        return self.answer


def no_default(workspace: Path) -> Policy:
    path = workspace / "envguard.toml"
    path.write_text(path.read_text().replace('default_env = "train"\n', ""))
    return load_policy(path)


def test_env_var_wins_over_default(workspace: Path) -> None:
    policy = load_policy(workspace / "envguard.toml")
    env = resolve_environment(policy, environ={"ENVGUARD_ENV": "prod"})
    assert (env.name, env.tier, env.source, env.is_prod) == ("prod", "prod", "ENVGUARD_ENV", True)
    env = resolve_environment(policy, environ={})
    assert (env.name, env.source) == ("train", "default_env in envguard.toml")


def test_detection_hook_is_last_and_first_answer_wins(workspace: Path) -> None:
    policy = no_default(workspace)
    plugins = PluginManager(environ={})
    plugins.register(Detector(None), "silent")
    plugins.register(Detector("test"), "ci-detector")
    plugins.register(Detector("prod"), "late")  # registered last, so pluggy calls it first
    env = resolve_environment(policy, plugins, environ={})
    assert (env.name, env.source) == ("prod", "plugin late")
    assert resolve_environment(policy, plugins, environ={"ENVGUARD_ENV": "train"}).name == "train"


def test_no_environment_at_all_is_an_error(workspace: Path) -> None:
    with pytest.raises(ConfigError, match="no environment: set ENVGUARD_ENV to one of train"):
        resolve_environment(no_default(workspace), PluginManager(environ={}), environ={})


def test_unknown_name_names_the_known_ones(workspace: Path) -> None:
    policy = load_policy(workspace / "envguard.toml")
    with pytest.raises(EnvironmentUnknown) as info:
        resolve_environment(policy, environ={"ENVGUARD_ENV": "Prod"})
    assert info.value.known == ("train", "test", "prod")
    plugins = PluginManager(environ={})
    plugins.register(Detector("staging"), "bad")
    with pytest.raises(EnvironmentUnknown, match="'staging' \\(from plugin bad\\)"):
        resolve_environment(no_default(workspace), plugins, environ={})


def test_env_command(
    workspace: Path, envguard_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVGUARD_ENV", "test")
    result = envguard_cli("env", "--json")
    assert result.exit_code == 0
    data = result.json()
    assert data["name"] == "test"
    assert data["tier"] == "non-prod"
    assert data["source"] == "ENVGUARD_ENV"
    assert data["policy"] == str(workspace / "envguard.toml")
    assert data["policy_sha256"] == load_policy(workspace / "envguard.toml").sha256
    monkeypatch.setenv("ENVGUARD_ENV", "qa")
    bad = envguard_cli("env")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == (
        "error: unknown environment 'qa' (from ENVGUARD_ENV); the policy declares: "
        "train, test, prod. Set ENVGUARD_ENV to one of them."
    )
