"""Keys: generated on first use, read from variables, trusted per purpose, verified."""

from __future__ import annotations

import base64
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from envguard import keys
from envguard.errors import ConfigError
from envguard.policy import load_policy
from tests.conftest import CliResult


def test_signing_key_is_generated_once_and_private(workspace: Path) -> None:
    policy = load_policy(workspace / "envguard.toml")
    first = keys.signing_key(policy, environ={})
    path = workspace / ".envguard" / "signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys._signing_cache.clear()
    assert keys.signing_key(policy, environ={}).key_id == first.key_id
    signature = first.sign(b"hello")
    trusted = keys.verify_signature(policy, "checkpoint", first.key_id, signature, b"hello", {})
    assert trusted.name == "self"
    with pytest.raises(ValueError, match="does not verify"):
        keys.verify_signature(policy, "checkpoint", first.key_id, signature, b"hellO", {})


def test_key_from_variable_and_untrusted_keys(workspace: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    env = {"ENVGUARD_SIGNING_KEY": base64.b64encode(raw).decode()}
    policy = load_policy(workspace / "envguard.toml")
    other = keys.signing_key(policy, environ=env)
    assert not (workspace / ".envguard" / "signing.key").exists()
    # Another installation's key is not trusted by this one.
    with pytest.raises(ValueError, match="which the policy does not trust for masking"):
        keys.verify_signature(policy, "masking", other.key_id, other.sign(b"x"), b"x", {})
    # The policy's ci-masking signer is trusted for masking only.
    names = {k.name for k in keys.trusted_keys(policy, "masking", env).values()}
    assert names == {"ci-masking", "self"}
    assert {k.name for k in keys.trusted_keys(policy, "checkpoint", env).values()} == {"self"}
    with pytest.raises(ConfigError, match="not an Ed25519 private key"):
        keys.signing_key(policy, environ={"ENVGUARD_SIGNING_KEY": "bm9wZQ=="})


def test_masking_key(workspace: Path) -> None:
    policy = load_policy(workspace / "envguard.toml")
    generated = keys.masking_key(policy, environ={})
    assert len(generated) == 64
    assert keys.masking_key(policy, environ={}) == generated
    assert keys.masking_key(policy, environ={"ENVGUARD_MASKING_KEY": "k" * 20}) == b"k" * 20
    with pytest.raises(ConfigError, match="use at least 16 random bytes"):
        keys.masking_key(policy, environ={"ENVGUARD_MASKING_KEY": "short"})


def test_the_store_loads_the_signing_key_only_to_sign_a_checkpoint(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, envguard_cli: Callable[..., CliResult]
) -> None:
    """A command that signs nothing does not need the key; one that must sign a checkpoint with a
    key that cannot be loaded is refused (exit 2, the key named) and writes nothing."""
    from envguard.lineage import open_store

    policy_file = workspace / "envguard.toml"
    text = policy_file.read_text().replace("checkpoint_every = 1000", "checkpoint_every = 2")
    policy_file.write_text(text)
    for name in ("a.csv", "b.csv"):
        (workspace / name).write_text(f"{name}\n")
    monkeypatch.setenv("ENVGUARD_SIGNING_KEY", "bm9wZQ==")  # not a key
    assert envguard_cli("data", "register", "a.csv", "--env", "train").exit_code == 0
    refused = envguard_cli("data", "register", "b.csv", "--env", "train")
    assert refused.exit_code == 2
    assert "$ENVGUARD_SIGNING_KEY: not an Ed25519 private key" in refused.stderr
    assert "Traceback" not in refused.stderr
    store = open_store(load_policy(policy_file), {})
    assert [e.payload["path"] for e in store.events()] == [str(workspace / "a.csv")]
    monkeypatch.delenv("ENVGUARD_SIGNING_KEY")
    assert envguard_cli("data", "register", "b.csv", "--env", "train").exit_code == 0
    [checkpoint] = store.checkpoints()
    assert checkpoint.seq == 2
    assert checkpoint.keyid == keys.signing_key(load_policy(policy_file), {}).key_id
    store.close()
