"""``envguard audit lineage``: the auditor's answer, on SQLite and PostgreSQL, in every format."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from envguard.digests import sha256_file
from envguard.lineage.events import EventDraft, Link, canonical_json
from tests.conftest import CliResult

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]
RUN = "run:" + "a" * 32
MODEL = "models:/fraud/3"
WEIGHTS = "sha256:" + "e" * 64


@dataclass
class Story:
    raw: str  # production data
    masked: str  # its masked copy, with a proof that verifies
    forged: str  # data whose recorded proof was tampered with
    proof: str


def _record(kind: str, **fields: Any) -> EventDraft:
    from envguard.runtime import current

    runtime = current()
    env = fields.pop("environment", None)
    actor = fields.pop("actor", None)
    draft = runtime.draft(kind, environment=env, **fields)
    if actor:
        from dataclasses import replace

        draft = replace(draft, actor=actor)
    return draft


def _signed_approval(statement: dict[str, Any]) -> dict[str, Any]:
    import base64

    from envguard.keys import signing_key
    from envguard.runtime import current

    key = signing_key(current().policy)
    signature = key.sign(canonical_json(statement).encode())
    return {"keyid": key.key_id, "signature": base64.b64encode(signature).decode()}


def _story(workspace: Path, noise: int = 0) -> Story:
    """A model version trained on masked production data, approved once, refused once."""
    from envguard.policy import load_policy
    from envguard.proofs import MaskingFacts, ValidationCheck, create_proof, proof_path_for
    from envguard.runtime import current

    raw_file = workspace / "people.csv"
    raw_file.write_bytes(b"id,email\n1,ada@example.com\n")
    masked_file = workspace / "masked.csv"
    masked_file.write_bytes(b"id,email\n1,tok_ab\n")
    raw, masked = f"sha256:{sha256_file(raw_file)}", f"sha256:{sha256_file(masked_file)}"
    forged = "sha256:" + "f" * 64
    check = ValidationCheck("expect_column_values_to_match_regex", "email", "hash", True, 1, 0, 0)
    facts = MaskingFacts(
        output_name=masked_file.name,
        output_sha256=masked[7:],
        sources=[(raw_file.name, raw[7:])],
        columns={"email": {"method": "hash"}, "id": {"method": "keep"}},
        checks=(check,),
        row_count=1,
        validator={"engine": "great_expectations", "version": "1.x"},
    )
    policy = load_policy(workspace / "envguard.toml")
    proof = create_proof(policy, facts, proof_path_for(masked_file), "ada", None)
    envelope = dict(proof.envelope)
    other_sig = [{**envelope["signatures"][0], "sig": "A" * 88}]  # a signature over nothing
    bad = {**envelope, "signatures": other_sig}
    statement = {
        "type": "envguard.approval/v1",
        "id": "0a0b0c0d",
        "approver": "grace",
        "model_version": MODEL,
        "target_env": "prod",
        "run_id": RUN[4:],
        "source": "runs:/x/model",
        "files_sha256": {"model/weights.bin": WEIGHTS[7:]},
        "time": "2026-11-26T10:00:00Z",
        "comment": "AUC ok",
    }
    store = current().store
    drafts = [
        _record("dataset.registered", entities=[raw], payload={"origin": "prod"}),
        _record(
            "proof.recorded",
            entities=[f"proof:{proof.proof_id}", masked],
            links=[Link(raw, masked, "masked")],
            payload={"envelope": envelope},
        ),
        _record(
            "proof.recorded",
            entities=["proof:" + "b" * 64, forged],
            links=[Link(raw, forged, "masked")],
            payload={"envelope": bad},
        ),
        _record("mlflow.run.created", entities=[RUN], actor="ada", environment="train"),
        _record("dataset.used", entities=[masked], links=[Link(masked, RUN, "used-by")]),
        _record(
            "artifact.logged",
            entities=[WEIGHTS, RUN],
            links=[Link(RUN, WEIGHTS, "logged")],
            payload={
                "artifact_uri": "s3://acme-ml-dev/mlflow/1/x/artifacts",
                "path": "model/weights.bin",
                "sha256": WEIGHTS[7:],
                "tier": "non-prod",
                "git_commit": "c0ffee" * 6 + "1234",
            },
        ),
        _record(
            "mlflow.model_version.created",
            entities=[MODEL, RUN],
            links=[Link(RUN, MODEL, "registered")],
            payload={"run_id": RUN[4:]},
            actor="ada",
        ),
        _record(
            "mlflow.run.evaluates",
            entities=["run:" + "c" * 32, MODEL],
            links=[Link(MODEL, "run:" + "c" * 32, "evaluated-by")],
            actor="bob",
            environment="test",
        ),
        _record(
            "approval.granted",
            entities=["approval:0a0b0c0d", MODEL, RUN],
            payload={"statement": statement, **_signed_approval(statement)},
            actor="grace",
            environment="prod",
        ),
        _record(
            "promotion.denied",
            entities=[MODEL],
            payload={
                "move": "alias production",
                "decision": {
                    "outcome": "deny",
                    "reasons": [{"rule": "approvals", "message": "needs 2", "remedy": "ask"}],
                },
            },
            actor="ada",
            environment="prod",
        ),
    ]
    drafts.extend(
        _record("derivation", entities=[f"run:n{i}"], links=[Link(f"n:{i}", f"n:{i + 1}")])
        for i in range(noise)
    )
    store.append_many(drafts)
    return Story(raw, masked, forged, f"proof:{proof.proof_id}")


@pytest.fixture
def story(workspace: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Story:
    monkeypatch.setenv("ENVGUARD_LINEAGE_URL", store_url)
    return _story(workspace)


def test_the_json_answer_names_runs_data_proofs_approvals_and_promotions(
    story: Story, envguard_cli: Cli
) -> None:
    result = envguard_cli("audit", "lineage", MODEL, "--json")
    assert result.exit_code == 0, result.stderr
    answer = result.json()
    assert (answer["schema"], answer["entity"], answer["type"]) == (
        "envguard.audit-lineage/v1",
        MODEL,
        "model-version",
    )
    (version,) = answer["model_versions"]
    assert version["produced_by"] == [RUN]
    assert version["evaluated_by"] == ["run:" + "c" * 32]
    assert version["created"]["actor"] == "ada"
    runs = {r["entity"]: r for r in answer["runs"]}
    assert runs[RUN]["roles"] == ["produced"]
    assert (runs[RUN]["user"], runs[RUN]["environment"], runs[RUN]["tier"]) == (
        "ada",
        "train",
        "non-prod",
    )
    assert runs[RUN]["code_version"].startswith("c0ffee")
    assert runs[RUN]["inputs"] == [story.masked]
    data = {d["entity"]: d for d in answer["datasets"]}
    assert set(data) == {story.raw, story.masked}  # not the forged copy: not upstream
    assert data[story.raw]["origin"] == "prod"
    assert data[story.raw]["production_lineage"] == "prod"
    assert data[story.masked]["production_lineage"] is None
    (masking,) = data[story.masked]["masking"]
    assert masking["proof"] == story.proof
    assert masking["sources"] == [story.raw]
    assert masking["verifies"] is True, masking["problems"]
    assert masking["signer"] == "self"
    (approval,) = answer["approvals"]
    assert approval["approver"] == "grace"
    assert approval["comment"] == "AUC ok"
    assert approval["valid"] is True, approval["problems"]
    (promotion,) = answer["promotions"]
    assert promotion["outcome"] == "deny"
    assert promotion["reasons"][0]["rule"] == "approvals"
    assert [o["key"] for o in answer["objects"]] == ["model/weights.bin"]
    masking_steps = [s for s in answer["steps"] if s["kind"] == "masking"]
    assert [s["entity"] for s in masking_steps] == [story.proof]


def test_a_tampered_proof_is_reported_as_failing_now(story: Story, envguard_cli: Cli) -> None:
    answer = envguard_cli("audit", "lineage", story.forged, "--json").json()
    (masking,) = {d["entity"]: d for d in answer["datasets"]}[story.forged]["masking"]
    assert masking["verifies"] is False
    assert any(p.startswith("proof-signature") for p in masking["problems"])
    tree = envguard_cli("audit", "lineage", story.forged, "--tree")
    assert "FAILS: proof-signature" in tree.stdout
    assert "proof-digest" in " ".join(masking["problems"])  # and it names other data


def test_the_tree_reads_well(story: Story, envguard_cli: Cli) -> None:
    result = envguard_cli("audit", "lineage", MODEL)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{MODEL}  [model-version]  created by ada")
    text = result.stdout
    assert "├── upstream (1)" in text
    assert f"│   └── registered from {RUN[:16]}…  env train (non-prod) · user ada" in text
    assert "used sha256:" in text
    assert "masking proof proof:" in text
    assert ": verifies" in text
    assert "masked from sha256:" in text
    assert "origin prod" in text
    assert '"AUC ok"' in text
    assert "DENY models:/fraud/3 → prod (alias production) by ada" in text
    assert "approvals: needs 2 (fix: ask)" in text
    assert "\x1b[" not in text


def test_dot_is_a_graph_of_the_answer(story: Story, envguard_cli: Cli) -> None:
    result = envguard_cli("audit", "lineage", MODEL, "--dot")
    assert result.exit_code == 0, result.stderr
    dot = result.stdout
    assert dot.startswith("digraph lineage {")
    assert dot.rstrip().endswith("}")
    assert f'"{RUN}" -> "{MODEL}" [label="registered"];' in dot
    assert f'"{story.raw}" -> "{story.masked}" [label="masked", style=dashed];' in dot
    assert f'"{story.raw}" [label="sha256:' in dot
    assert 'color="red"' in dot


def test_names_a_run_by_its_bare_id_a_file_by_its_digest_and_limits_depth(
    story: Story, workspace: Path, envguard_cli: Cli
) -> None:
    bare = envguard_cli("audit", "lineage", RUN[4:], "--json").json()
    assert bare["entity"] == RUN
    assert bare["type"] == "run"
    by_path = envguard_cli("audit", "lineage", str(workspace / "masked.csv"), "--json").json()
    assert by_path["entity"] == story.masked
    near = envguard_cli("audit", "lineage", MODEL, "--depth", "1", "--json").json()
    assert {e["src"] for e in near["edges"] if e["direction"] == "upstream"} == {RUN}


@pytest.mark.parametrize(
    ("entity", "message"),
    [
        ("models:/fraud", "models:/NAME/VERSION"),
        ("models:/fraud/9", "holds no record of it"),
        ("sha256:abc", "64 hexadecimal digits"),
        ("no/such/file.csv", "no such file, and not an entity"),
        ("run:" + "9" * 32, "holds no record of it"),
    ],
)
def test_unknown_or_malformed_entities_exit_2(
    story: Story, envguard_cli: Cli, entity: str, message: str
) -> None:
    result = envguard_cli("audit", "lineage", entity)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_cost_grows_with_the_answer_not_the_store(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same statements run whether the store holds 10 or 3,000 events."""
    from envguard import runtime
    from envguard.lineage.provenance import gather_provenance

    counts = []
    for noise in (0, 3000):
        monkeypatch.setenv("ENVGUARD_LINEAGE_URL", f"sqlite:///{tmp_path / f'{noise}.db'}")
        runtime.reset()
        _story(workspace, noise)
        statements: list[str] = []
        engine = runtime.current().store.engine

        def seen(
            _c: Any, _cur: Any, statement: str, *_args: Any, into: list[str] = statements
        ) -> None:
            into.append(statement)

        sa.event.listen(engine, "before_cursor_execute", seen)
        answer = gather_provenance(runtime.current(), MODEL)
        sa.event.remove(engine, "before_cursor_execute", seen)
        counts.append((len(statements), len(json.dumps(answer))))
        assert not any("n:" in s for s in statements)
    assert counts[0][0] == counts[1][0]
