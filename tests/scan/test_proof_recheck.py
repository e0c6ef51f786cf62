"""The scan verifies the masking proof behind every ``masked`` link again: a non-production use
of masked data whose proof no longer holds (the proof file altered, the signing key no longer
trusted by the policy) is a finding, as if the data had not been masked at all."""

from __future__ import annotations

from pathlib import Path

from envguard.digests import sha256_file
from envguard.lineage import Link
from envguard.plugins import PluginManager
from envguard.policy import load_policy
from envguard.proofs import MaskingFacts, ValidationCheck, create_proof, proof_path_for
from envguard.runtime import Runtime
from envguard.scan.sweep import scan

POLICY = """\
version = 1
default_env = "train"
[environments.train]
tier = "non-prod"
[environments.prod]
tier = "prod"
[signing]
key_file = ".envguard/signing.key"
trust_own_key = {trust}
"""

CHECKS = (ValidationCheck("expect_column_values_to_match_regex", "email", "hash", True, 1, 0, 0),)


def _runtime(tmp_path: Path, trust: bool = True) -> Runtime:
    (tmp_path / "envguard.toml").write_text(POLICY.format(trust=str(trust).lower()))
    environ = {"ENVGUARD_ENV": "train", "ENVGUARD_ACTOR": "auditor"}
    manager = PluginManager(environ)
    manager.loaded = True  # the core's checks only
    return Runtime(tmp_path / "envguard.toml", environ, plugins=manager)


def _masked_use(tmp_path: Path, runtime: Runtime) -> tuple[str, Path]:
    """Production data masked (a real signed proof beside the output, the ``masked`` link and
    the envelope in the log, as ``envguard mask`` records them), the masked copy used in train."""
    source, output = tmp_path / "people.csv", tmp_path / "masked.csv"
    source.write_bytes(b"id,email\n1,ada@example.com\n")
    output.write_bytes(b"id,email\n1,tok_ab\n")
    src, out = f"sha256:{sha256_file(source)}", f"sha256:{sha256_file(output)}"
    facts = MaskingFacts(
        output_name=output.name,
        output_sha256=out[7:],
        sources=[(source.name, src[7:])],
        columns={"email": {"method": "hash"}},
        checks=CHECKS,
        row_count=1,
        validator={"engine": "great_expectations", "version": "1.x"},
    )
    proof = create_proof(
        load_policy(tmp_path / "envguard.toml"), facts, proof_path_for(output), "ada"
    )
    runtime.store.append_many(
        [
            runtime.draft("dataset.registered", entities=[src], payload={"origin": "prod"}),
            runtime.draft(
                "proof.recorded",
                entities=[f"proof:{proof.proof_id}", out],
                links=[Link(src, out, "masked")],
                payload={
                    "output": str(output),
                    "proof": str(proof.path),
                    "envelope": proof.envelope,
                },
            ),
            runtime.draft("dataset.used", entities=[out], links=[Link(out, "run:r1", "used")]),
        ]
    )
    return out, proof.path


def _uses(runtime: Runtime) -> list[dict]:
    report = scan(runtime, record=False)
    return [f.to_dict() for f in report.findings if f.rule == "run-prod-data-unmasked"]


def test_a_proof_that_still_holds_masks_and_an_altered_proof_file_does_not(
    tmp_path: Path,
) -> None:
    runtime = _runtime(tmp_path)
    out, proof = _masked_use(tmp_path, runtime)
    assert _uses(runtime) == []

    original = proof.read_bytes()
    proof.write_bytes(original.replace(b'"sig": "', b'"sig": "AAAA', 1))
    [found] = _uses(runtime)
    assert found["entity"] == "run:r1"
    assert found["evidence"]["dataset"] == out
    assert "no longer verifies" in found["message"]
    [broken] = found["evidence"]["broken_masking_proofs"]
    assert broken["output"] == out
    assert any(str(proof) in r for p in broken["proofs"] for r in p["reasons"])
    assert found["remedy"]
    assert found["guideline"] == 5

    proof.write_bytes(original)
    assert _uses(runtime) == []


def test_a_proof_signed_by_a_key_the_policy_no_longer_trusts_does_not_mask(
    tmp_path: Path,
) -> None:
    out, _proof = _masked_use(tmp_path, _runtime(tmp_path))
    revoked = _runtime(tmp_path, trust=False)  # the own key is no longer trusted for masking
    [found] = _uses(revoked)
    assert found["evidence"]["dataset"] == out
    [broken] = found["evidence"]["broken_masking_proofs"]
    reasons = [r for p in broken["proofs"] for r in p["reasons"]]
    assert any(r.startswith("as recorded in the log:") for r in reasons), reasons


def test_origins_for_tagging_trust_a_masked_link_only_while_its_proof_holds(tmp_path: Path) -> None:
    """``lineage_origins`` (what ``envguard dvc tag`` writes on objects) walks a ``masked`` link
    whose proof does not hold as if it were not masked, like the gate and the scan."""
    from envguard.lineage.origin import lineage_origins

    runtime = _runtime(tmp_path)
    out, proof_file = _masked_use(tmp_path, runtime)
    store, policy = runtime.store, runtime.policy
    assert lineage_origins(store, policy, [out]) == {out: None}  # masked, the proof holds
    forged = "sha256:" + "f" * 64
    runtime.store.append(
        runtime.draft("derivation", links=[Link(_source_of(runtime, out), forged, "masked")])
    )
    assert lineage_origins(store, policy, [forged]) == {forged: "prod"}  # no proof at all
    proof_file.write_bytes(proof_file.read_bytes().replace(b'"sig": "', b'"sig": "AAAA', 1))
    assert lineage_origins(store, policy, [out]) == {out: "prod"}  # the proof file was altered


def _source_of(runtime: Runtime, entity: str) -> str:
    (src,) = [s for s, _d, relation in runtime.store.edges_into([entity]) if relation == "masked"]
    return src
