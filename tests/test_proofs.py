"""Masking proofs in the core: built, signed, read and verified without the gx plugin."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from envguard import keys
from envguard.digests import sha256_file
from envguard.errors import InputError
from envguard.policy import load_policy
from envguard.proofs import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    MaskingFacts,
    ValidationCheck,
    create_proof,
    data_path_for,
    pae,
    proof_path_for,
    read_proof,
    verify_proof,
)
from tests.conftest import CliResult

PASSED = (
    ValidationCheck("expect_column_values_to_match_regex", "email", "hash format", True, 3, 0, 0),
    ValidationCheck("expect_table_columns_to_match_set", None, "columns", True),
)


def _prove(workspace: Path, data: bytes = b"id,email\n1,tok_ab\n", **env: str) -> Path:
    output = workspace / "masked.csv"
    output.write_bytes(data)
    source = workspace / "people.csv"
    source.write_bytes(b"id,email\n1,ada@example.com\n")
    policy = load_policy(workspace / "envguard.toml")
    facts = MaskingFacts(
        output_name=output.name,
        output_sha256=sha256_file(output),
        sources=[(source.name, sha256_file(source))],
        columns={"email": {"method": "hash"}, "id": {"method": "keep"}},
        checks=PASSED,
        row_count=1,
        validator={"engine": "great_expectations", "version": "1.x"},
    )
    proof = create_proof(policy, facts, proof_path_for(output), "ada", env or None)
    return proof.path


def test_digest_matches_hashlib_for_every_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mmap

    from envguard import digests

    monkeypatch.setattr(digests, "WINDOW_SIZE", mmap.ALLOCATIONGRANULARITY * 16)  # many windows
    for size in (0, 1, 1 << 20, (1 << 20) + 7, 3 * (1 << 20) - 1):
        path = tmp_path / f"f{size}"
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        path.write_bytes(data)
        assert sha256_file(path, chunk_size=1 << 16) == hashlib.sha256(data).hexdigest()
        assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(InputError, match="file not found"):
        sha256_file(tmp_path / "missing")
    # What cannot be mapped (a pipe) is read instead.
    import os
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    payload = b"streamed " * 100_000
    writer = threading.Thread(target=lambda: fifo.write_bytes(payload))
    writer.start()
    assert sha256_file(fifo, chunk_size=4096) == hashlib.sha256(payload).hexdigest()
    writer.join()
    with pytest.raises(InputError, match="is a folder"):
        sha256_file(tmp_path)


def test_proof_is_an_in_toto_statement_in_a_signed_dsse_envelope(workspace: Path) -> None:
    path = _prove(workspace)
    assert path.name == "masked.csv.envguard-proof.json"
    assert data_path_for(path) == workspace / "masked.csv"
    envelope = json.loads(path.read_text())
    assert envelope["payloadType"] == PAYLOAD_TYPE
    payload = base64.b64decode(envelope["payload"])
    statement = json.loads(payload)
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [
        {"name": "masked.csv", "digest": {"sha256": sha256_file(workspace / "masked.csv")}}
    ]
    predicate = statement["predicate"]
    assert predicate["sources"][0]["digest"]["sha256"] == sha256_file(workspace / "people.csv")
    assert predicate["columns"]["email"] == {"method": "hash"}
    assert predicate["policy"]["sha256"] == load_policy(workspace / "envguard.toml").sha256
    assert predicate["validation"]["success"] is True
    assert predicate["validation"]["checks"][0]["unexpected_count"] == 0
    assert predicate["signer"]["identity"] == "ada"
    assert predicate["time"].endswith("Z")
    # The signature is Ed25519 over the DSSE pre-authentication encoding, by this installation.
    policy = load_policy(workspace / "envguard.toml")
    (signature,) = envelope["signatures"]
    assert signature["keyid"] == keys.signing_key(policy, {}).key_id
    trusted = keys.verify_signature(
        policy,
        "masking",
        signature["keyid"],
        base64.b64decode(signature["sig"]),
        pae(PAYLOAD_TYPE, payload),
        {},
    )
    assert trusted.name == "self"
    assert pae("t", b"ab") == b"DSSEv1 1 t 2 ab"


def test_valid_proof_verifies_with_the_data_beside_it(workspace: Path) -> None:
    path = _prove(workspace)
    policy = load_policy(workspace / "envguard.toml")
    result = verify_proof(policy, path, environ={})
    assert result.valid, result.reasons
    assert result.signer == "self"
    assert result.data_sha256 == sha256_file(workspace / "masked.csv")
    assert result.to_dict()["proof_id"] == read_proof(path).proof_id


def test_one_byte_edit_and_another_file_fail_the_digest(workspace: Path) -> None:
    path = _prove(workspace)
    policy = load_policy(workspace / "envguard.toml")
    other = workspace / "other.csv"
    other.write_bytes(b"id,email\n2,tok_cd\n")
    result = verify_proof(policy, path, other, environ={})
    assert [r.rule for r in result.reasons] == ["proof-digest"]
    data = bytearray((workspace / "masked.csv").read_bytes())
    data[-2] ^= 1
    (workspace / "masked.csv").write_bytes(bytes(data))
    result = verify_proof(policy, path, environ={})
    assert not result.valid
    assert "the data changed after it was proven" in result.reasons[0].message


def test_untrusted_signer_tampered_payload_and_changed_policy(workspace: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = _prove(workspace, ENVGUARD_SIGNING_KEY=pem.decode())
    policy = load_policy(workspace / "envguard.toml")
    result = verify_proof(policy, path, environ={})
    assert [r.rule for r in result.reasons] == ["proof-signature"]
    assert "does not trust for masking" in result.reasons[0].message

    path = _prove(workspace)
    envelope = json.loads(path.read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["validation"]["success"] = False
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope))
    rules = [r.rule for r in verify_proof(policy, path, environ={}).reasons]
    assert rules == ["proof-signature", "proof-validation"]

    path = _prove(workspace)
    text = (workspace / "envguard.toml").read_text()
    (workspace / "envguard.toml").write_text(
        text.replace("trust_own_key = true", "trust_own_key = false")
    )
    changed = load_policy(workspace / "envguard.toml")
    result = verify_proof(changed, path, environ={})
    assert [r.rule for r in result.reasons] == ["proof-signature", "proof-policy"]
    assert "differs from the current policy" in result.reasons[1].message
    known = verify_proof(changed, path, environ={}, known_policy_sha256s=[policy.sha256])
    assert [r.rule for r in known.reasons] == ["proof-signature"]


def test_failed_validation_is_never_proven(workspace: Path) -> None:
    policy = load_policy(workspace / "envguard.toml")
    facts = MaskingFacts(
        "m.csv", "0" * 64, [], {}, [ValidationCheck("x", "c", "no e-mail", False, 3, 1)], 3, {}
    )
    with pytest.raises(ValueError, match="only written for a validation that passed"):
        create_proof(policy, facts, workspace / "m.csv.envguard-proof.json", "ada", {})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON"),
        ("[]", "expected a DSSE envelope"),
        ('{"payload": 3}', "has no 'payload'"),
        ('{"payload": "!!"}', "not base64 of a JSON statement"),
    ],
)
def test_unreadable_proofs_are_input_errors(workspace: Path, content: str, message: str) -> None:
    path = workspace / "bad.envguard-proof.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_proof(path)
    with pytest.raises(InputError, match="proof file not found"):
        read_proof(workspace / "missing.json")


def test_proof_verify_command(workspace: Path, envguard_cli: Callable[..., CliResult]) -> None:
    path = _prove(workspace)
    ok = envguard_cli("proof", "verify", str(path))
    assert ok.exit_code == 0, ok.stderr
    assert "VALID" in ok.stdout
    assert "signer:   self" in ok.stdout
    other = workspace / "other.csv"
    other.write_text("id\n1\n")
    bad = envguard_cli("proof", "verify", str(path), "--data", str(other), "--json")
    assert bad.exit_code == 1
    assert bad.json()["valid"] is False
    assert bad.json()["reasons"][0]["rule"] == "proof-digest"
    (workspace / "garbage.json").write_text("nope")
    broken = envguard_cli("proof", "verify", "garbage.json")
    assert broken.exit_code == 2
    assert broken.stderr.startswith("error: garbage.json: not a masking proof: invalid JSON")
    assert "Traceback" not in broken.stderr
    missing = envguard_cli("proof", "verify", str(path), "--data", "nowhere.csv")
    assert missing.exit_code == 2
    assert "nowhere.csv: file not found" in missing.stderr
