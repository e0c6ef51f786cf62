"""The validated-policy cache: a warm start gives the same Policy as a full validation, and
anything that is not exactly the validated policy is validated again (or never cached)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from envguard.errors import EnvironmentUnknown, PolicyError
from envguard.policy import Policy, load_policy
from envguard.policy import cache as policy_cache
from tests.conftest import EXAMPLE_POLICY, CliResult


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder of the test's own."""
    home = tmp_path / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


def entries(home: Path) -> list[Path]:
    folder = home / "envguard" / "policies"
    return sorted(folder.glob("*.json")) if folder.exists() else []


def _answers(policy: Policy) -> dict[str, Any]:
    """Every question the integrations ask of a policy, asked of every name it uses."""
    data = policy.to_dict()
    envs = policy.environment_names
    locations = [
        item
        for name in envs
        for field in ("s3", "artifact_locations", "mlflow_tracking_uris", "dvc_remotes", "hosts")
        for item in data["environments"][name][field]
    ]
    probes = [*locations, *(f"{u.rstrip('/')}/deeper/key" for u in locations), "s3://nobody/x"]
    registry = data["registry"]
    names = [*registry["aliases"], *registry["stages"], *registry["models"], "nothing"]
    identities = [*data["roles"], "nobody"]
    roles = sorted({r for held in data["roles"].values() for r in held} | {"none"})
    answers: dict[str, Any] = {
        "sha256": policy.sha256,
        "to_dict": data,
        "mode": policy.mode,
        "default_env": policy.default_env,
        "strict_uris": policy.strict_uris,
        "environment_names": envs,
        "tier": {n: policy.tier(n) for n in envs},
        "is_prod": {n: policy.is_prod(n) for n in envs},
        "has_environment": {n: policy.has_environment(n) for n in [*envs, "nowhere"]},
        "environment": {n: policy.environment(n) for n in envs},
        "promotion_rule": {n: policy.promotion_rule(n) for n in envs},
        "env_for_alias": {n: policy.env_for_alias(n.upper()) for n in names},
        "env_for_stage": {n: policy.env_for_stage(n.lower()) for n in names},
        "env_for_model": {n: policy.env_for_model(n) for n in names},
        "resolve_target": {n: policy.resolve_target(n) for n in [*envs, *registry["aliases"]]},
        "roles_of": {i: policy.roles_of(i) for i in identities},
        "holders": {r: policy.holders(r) for r in roles},
        "env_for_location": {u: policy.env_for_location(u) for u in probes},
        "env_for_mlflow_uri": {u: policy.env_for_mlflow_uri(u) for u in probes},
        "env_for_dvc_remote": {u: policy.env_for_dvc_remote(u, u) for u in probes},
        "env_for_host": {u: policy.env_for_host(u) for u in probes},
        "lineage_url": policy.lineage_url,
        "lineage_spool_dir": policy.lineage_spool_dir,
        "checkpoint_every": policy.checkpoint_every,
        "signing_key_env": policy.signing_key_env,
        "signing_key_file": policy.signing_key_file,
    }
    with pytest.raises(EnvironmentUnknown):
        policy.tier("nowhere")
    return answers


def test_a_cache_hit_answers_as_a_full_validation(tmp_path: Path, cache_home: Path) -> None:
    path = tmp_path / "envguard.toml"
    path.write_text(EXAMPLE_POLICY.read_text())
    validated = load_policy(path, cache=False)
    assert validated.cache_entry is None
    assert len(entries(cache_home)) == 1
    cached = load_policy(path)
    assert cached.cache_entry == entries(cache_home)[0]
    assert cached._spec is None  # built from the cached table: no pydantic yet
    assert _answers(cached) == _answers(validated)
    assert cached.spec == validated.spec  # rebuilt on first use, equal to the validated one
    # ... and what the table says is what the model says.
    spec = validated.spec
    assert validated.environment_names == list(spec.environments)
    assert validated.default_env == spec.default_env
    assert validated.mode == spec.mode
    assert validated.lineage_url == spec.lineage.url
    assert validated.checkpoint_every == spec.lineage.checkpoint_every
    assert [validated.tier(n) for n in spec.environments] == [
        e.tier for e in spec.environments.values()
    ]


def test_a_changed_policy_misses_and_is_validated_again(tmp_path: Path, cache_home: Path) -> None:
    path = tmp_path / "envguard.toml"
    text = EXAMPLE_POLICY.read_text()
    path.write_text(text)
    first = load_policy(path)
    path.write_text(text.replace('mode = "enforce"', 'mode = "warn"', 1))
    changed = load_policy(path)
    assert changed.cache_entry is None
    assert changed.mode == "warn"
    assert changed.sha256 != first.sha256
    assert len(entries(cache_home)) == 2
    # A change that makes it invalid is reported, whatever the cache holds.
    path.write_text(text.replace('tier = "prod"', 'tier = "production"', 1))
    with pytest.raises(PolicyError, match=r"environments\.prod\.tier"):
        load_policy(path)
    # [tool.envguard] in pyproject.toml is cached as well, under its own key.
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.envguard]\nversion = 1\n[tool.envguard.environments.prod]\ntier = "prod"\n'
    )
    assert load_policy(pyproject).cache_entry is None
    assert load_policy(pyproject).environment_names == ["prod"]
    assert load_policy(pyproject).cache_entry is not None


@pytest.mark.parametrize(
    "damage",
    ["not json", "truncated", "wrong key", "wrong format", "writable by others"],
)
def test_a_bad_entry_is_ignored_and_replaced(tmp_path: Path, cache_home: Path, damage: str) -> None:
    path = tmp_path / "envguard.toml"
    path.write_text(EXAMPLE_POLICY.read_text())
    expected = load_policy(path, cache=False)
    [entry] = entries(cache_home)
    good = json.loads(entry.read_text())
    if damage == "not json":
        entry.write_bytes(b"\x00\xff garbage")
    elif damage == "truncated":
        entry.write_text(entry.read_text()[:100])
    elif damage == "wrong key":
        entry.write_text(json.dumps({**good, "key": "0" * 64}))
    elif damage == "wrong format":
        entry.write_text(json.dumps({**good, "format": "envguard-policy-cache/0"}))
    else:
        entry.write_text(json.dumps({**good, "sha256": "f" * 64}))  # a forged entry
        entry.chmod(0o666)
    policy = load_policy(path)
    assert policy.cache_entry is None  # validated in full
    assert policy.sha256 == expected.sha256
    assert policy.to_dict() == expected.to_dict()
    assert json.loads(entry.read_text()) == good  # replaced by the validated policy
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert load_policy(path).cache_entry == entry


def test_an_invalid_policy_is_never_cached(tmp_path: Path, cache_home: Path) -> None:
    path = tmp_path / "envguard.toml"
    path.write_text(
        'version = 1\n[environments.prod]\ntier = "prod"\n[registry.aliases]\nx = "y"\n'
    )
    for _ in range(2):
        with pytest.raises(PolicyError, match=r"registry\.aliases\.x"):
            load_policy(path)
    assert entries(cache_home) == []


def test_the_cache_is_private_and_failing_to_write_it_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_home: Path
) -> None:
    path = tmp_path / "envguard.toml"
    path.write_text(EXAMPLE_POLICY.read_text())
    load_policy(path)
    folder = cache_home / "envguard" / "policies"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    assert [stat.S_IMODE(e.stat().st_mode) for e in entries(cache_home)] == [0o600]
    assert not [p for p in folder.iterdir() if p.suffix != ".json"]  # no temporary file left
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # the folder cannot be created
    assert load_policy(path).sha256 == load_policy(path, cache=False).sha256


def test_the_key_covers_every_module_of_the_policy_package() -> None:
    """Any code that decides validity changes the key: a new module must be listed."""
    folder = Path(policy_cache.__file__).parent
    assert sorted(policy_cache._VALIDITY_MODULES) == sorted(p.name for p in folder.glob("*.py"))
    text = EXAMPLE_POLICY.read_text()
    assert policy_cache.cache_key(text, "") != policy_cache.cache_key(text + "\n", "")
    assert policy_cache.cache_key(text, "") != policy_cache.cache_key(text, "tool.envguard")


def test_policy_validate_never_trusts_the_cache(
    workspace: Path, cache_home: Path, envguard_cli: Callable[..., CliResult]
) -> None:
    real = load_policy(workspace / "envguard.toml").sha256
    [entry] = entries(cache_home)
    forged = json.loads(entry.read_text())
    entry.write_text(json.dumps({**forged, "sha256": "f" * 64}))
    os.chmod(entry, 0o600)
    # A command that uses the policy trusts the entry (as Python trusts its .pyc files) ...
    assert envguard_cli("policy", "show", "--json").json()["sha256"] == "f" * 64
    # ... but validating the policy reads and validates the file itself.
    validated = envguard_cli("policy", "validate", "--json")
    assert validated.exit_code == 0
    assert validated.json()["sha256"] == real
