"""The registry gate without a server: a real sqlite MLflow registry in a temporary folder, the
plain ``MlflowClient`` in a subprocess, approvals signed with the approvers' own keys."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult

HERE = Path(__file__).parent

POLICY = """\
version = 1
default_env = "train"

[environments.train]
tier = "non-prod"
[environments.test]
tier = "non-prod"
[environments.prod]
tier = "prod"

[registry.aliases]
staging = "test"
production = "prod"
[registry.stages]
Staging = "test"
Production = "prod"

[promotion.test]
approvals = 0
allowed_sources = ["train"]

[promotion.prod]
approvals = 2
approver_roles = ["approver"]
separation_of_duties = true
allowed_sources = ["test"]
lineage = "masked"
require_evaluation_in = "test"

[roles]
ada = ["data-scientist", "approver"]
grace = ["approver"]
linus = ["approver"]
eve = []
"""


def new_key(folder: Path, name: str) -> tuple[Path, str]:
    """An Ed25519 key pair: the private key's PEM file, and the public key in base64."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    path = folder / f"{name}.pem"
    path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return path, base64.b64encode(public).decode()


def write_policy(folder: Path, *approvers: str) -> dict[str, Path]:
    """The policy, with a signer (purpose approval) per approver; their private key files."""
    keys: dict[str, Path] = {}
    text = POLICY
    for name in approvers:
        keys[name], public = new_key(folder, name)
        text += f'\n[signers.{name}]\npublic_key = "{public}"\npurposes = ["approval"]\n'
    (folder / "envguard.toml").write_text(text)
    return keys


def script(folder: Path, phase: str, **extra: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVGUARD_", "MLFLOW_"))}
    defaults = {"ENVGUARD_ENV": "train", "ENVGUARD_ACTOR": "ada"}
    env.update({**defaults, **extra, "MLFLOW_TRACKING_URI": f"sqlite:///{folder}/mlflow.db"})
    done = subprocess.run(
        [sys.executable, str(HERE / "local_train.py"), phase],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_local_registry_refuses_then_allows_after_signed_approvals(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    envguard_cli: Callable[..., CliResult],
) -> None:
    keys = write_policy(tmp_path, "ada", "grace", "linus")
    monkeypatch.chdir(tmp_path)
    trained = script(tmp_path, "train")
    assert trained["moved"] == ["@staging"]  # test needs no approval; it comes from train
    denied = trained["denied"]
    assert isinstance(denied, dict)
    for move in ("@production", "Production"):
        assert denied[move]["rules"] == ["approvals", "evaluation"]
        message = denied[move]["message"]
        assert "envguard approve models:/fraud/1 --to prod" in message  # every remedy, too
        assert "fix: evaluate it in 'test'" in message

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.setenv("ENVGUARD_ENV", "prod")
    monkeypatch.setenv("ENVGUARD_ACTOR", "margaret")
    # The evaluation is there now; the approvals are not.
    check = envguard_cli("promote", "models:/fraud/1", "--to", "prod", "--dry-run", "--json")
    assert check.exit_code == 1, check.stdout + check.stderr
    assert [r["rule"] for r in check.json()["decision"]["reasons"]] == ["approvals"]

    missing = envguard_cli("promote", "models:/fraud/9", "--to", "prod", "--dry-run")
    assert missing.exit_code == 2
    assert "models:/fraud/9:" in missing.stderr
    assert "Traceback" not in missing.stderr

    # Self-approval: ada trained it (envguard.actor of the run); refused, nothing recorded.
    own = envguard_cli("approve", "models:/fraud/1", "--to", "prod", "--key-file", str(keys["ada"]))
    assert own.exit_code == 1
    assert "separation-of-duties" in own.stderr
    # Without a key the policy lists for approvals: a configuration error, exit 2.
    stranger, _ = new_key(tmp_path, "stranger")
    bad = envguard_cli("approve", "models:/fraud/1", "--to", "prod", "--key-file", str(stranger))
    assert bad.exit_code == 2
    assert "lists no signer with this key" in bad.stderr
    # A forged approval: "grace" in the record, signed with the installation's own key (which
    # every local user can read). It is listed, and it never counts.
    forge(tmp_path)
    for name in ("grace", "linus"):
        ok = envguard_cli(
            "approve", "models:/fraud/1", "--to", "prod", "--key-file", str(keys[name]), "--json"
        )
        assert ok.exit_code == 0, ok.stderr
        assert ok.json()["approval"]["approver"] == name
    listed = envguard_cli("approvals", "list", "models:/fraud/1", "--json").json()["approvals"]
    assert sorted((a["approver"], a["valid"]) for a in listed) == [
        ("grace", False),
        ("grace", True),
        ("linus", True),
    ]

    # Evidence: the files change after the approvals, and the approvals no longer hold.
    weights = Path(str(trained["weights"]))
    weights.write_text("weights-2")
    swapped = envguard_cli("promote", "models:/fraud/1", "--to", "prod", "--dry-run", "--json")
    assert swapped.exit_code == 1
    assert "files changed since the approval" in swapped.stdout
    weights.write_text("weights-1")

    allowed = envguard_cli("promote", "models:/fraud/1", "--to", "prod", "--dry-run")
    assert allowed.exit_code == 0, allowed.stdout
    assert allowed.stdout.startswith("envguard allow: promotion of models:/fraud/1")

    # The plain client, in another process, may move @production now; not delete it.
    final = script(tmp_path, "promote", ENVGUARD_ENV="prod", ENVGUARD_ACTOR="margaret")
    assert final["moved"] == ["@production"]
    assert final["denied"]["delete @production"]["rules"] == ["protected-alias"]  # type: ignore[index]
    # envguard promote moves through MLflow too (the stage, this time), decided twice.
    staged = envguard_cli("promote", "models:/fraud/1", "--to", "Production", "--json")
    assert staged.exit_code == 0, staged.stdout + staged.stderr
    assert staged.json()["moved"] is True
    log = envguard_cli("audit", "log", "--entity", "models:/fraud/1", "--json").json()
    kinds = [(e["kind"], e["actor"]) for e in log]
    assert kinds.count(("promotion.allowed", "margaret")) == 2
    assert kinds.count(("promotion.denied", "ada")) == 2  # the two refusals in `train`


def forge(folder: Path) -> None:
    """What a local user could write without grace's key: an approval in grace's name."""
    from envguard.approvals import new_statement
    from envguard.keys import signing_key
    from envguard.lineage import open_store
    from envguard.lineage.events import EventDraft, canonical_json
    from envguard.policy import load_policy

    policy = load_policy(folder / "envguard.toml")
    key = signing_key(policy)
    statement = new_statement("grace", "model_version", "models:/fraud/1", "prod", "forged")
    signature = base64.b64encode(key.sign(canonical_json(statement).encode())).decode()
    with open_store(policy) as store:
        store.append(
            EventDraft(
                "approval.granted",
                entities=["models:/fraud/1"],
                payload={"statement": statement, "keyid": key.key_id, "signature": signature},
                actor="grace",
                environment="prod",
                policy_sha256=policy.sha256,
            )
        )
