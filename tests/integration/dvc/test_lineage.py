"""Content-addressed origin and lineage through pipelines: `envguard dvc sync`, `data check`."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.integration.dvc.conftest import Repo, events, write

pytestmark = pytest.mark.integration

Run = Callable[..., CliResult]

PIPELINE = """\
stages:
  clean:
    cmd: sed s/ada/ADA/ raw/customers.csv > clean.csv
    deps: [raw/customers.csv]
    outs: [clean.csv]
  features:
    cmd: cut -d, -f1 clean.csv > features.csv
    deps: [clean.csv]
    outs: [features.csv]
  mask:
    cmd: sed s/@.*// clean.csv > masked.csv
    deps: [clean.csv]
    outs: [masked.csv]
"""


def _prove(data: Path, proof: Path) -> None:
    """Write a real, signed masking proof about ``data`` at ``proof`` (as `envguard mask` does;
    the repository's policy trusts this installation's own key)."""
    from envguard.proofs import MaskingFacts, ValidationCheck, create_proof
    from envguard.runtime import current

    runtime = current()
    facts = MaskingFacts(
        output_name=data.name,
        output_sha256=hashlib.sha256(data.read_bytes()).hexdigest(),
        sources=[("customers.csv", "0" * 64)],
        columns={"email": {"method": "hash"}},
        checks=[
            ValidationCheck("expect_column_values_to_match_regex", "email", "tokens", True, 1, 0, 0)
        ],
        row_count=1,
        validator={"engine": "great_expectations", "version": "test"},
    )
    create_proof(runtime.policy, facts, proof, "ada")


def test_a_copy_of_production_data_keeps_its_origin(repo: Repo, run: Run) -> None:
    raw = write(repo.root / "raw" / "customers.csv", "id,email\n1,ada@example.com\n")
    repo.dvc("add", "-q", "raw")
    repo.dvc("push", "-r", "prod-data", env="prod")  # sync + tags: this content is production's
    copy = repo.root / "dev" / "sample.csv"
    copy.parent.mkdir()
    shutil.copy(raw, copy)
    checked = run("data", "check", str(copy))
    assert checked.exit_code == 1
    assert "has production lineage from 'prod'" in checked.stdout
    repo.dvc("add", "-q", "dev")  # tracked in a development dataset: same content, same origin
    assert run("data", "check", "dev/sample.csv").exit_code == 1
    assert run("data", "check", "dev/sample.csv", env="prod").exit_code == 0


def test_lineage_propagates_through_stages_and_stops_at_masking(repo: Repo, run: Run) -> None:
    write(repo.root / "raw" / "customers.csv", "id,email\n1,ada@example.com\n")
    repo.dvc("add", "-q", "raw")
    assert run("data", "register", "raw/customers.csv", "--env", "prod").exit_code == 0
    write(repo.root / "dvc.yaml", PIPELINE)
    repo.dvc("repro", "-q", "clean", "features", "mask", env="prod")
    masked = repo.root / "masked.csv"
    _prove(masked, repo.root / "masked.csv.envguard-proof.json")
    synced = run("dvc", "sync", "--json")
    assert synced.exit_code == 0, synced.stderr
    assert synced.json()["stages"] == 3  # clean, features, mask (raw.dvc has no dependencies)
    features = run("data", "check", "features.csv")
    assert features.exit_code == 1
    assert features.stdout.count("derived -> dvc-md5:") == 2, features.stdout  # two stages
    ok = run("data", "check", "masked.csv")
    assert ok.exit_code == 0, ok.stdout
    derivations = events("derivation")
    again = run("dvc", "sync", "--json").json()
    assert again["stages"] == 0
    assert again["unchanged_stages"] == synced.json()["stages"]
    assert len(events("derivation")) == len(derivations)
    by_stage = {e.payload["stage"]: e for e in derivations}
    assert {link.relation for link in by_stage["mask"].links} == {"masked"}
    assert {link.relation for link in by_stage["features"].links} == {"derived"}


def test_a_proof_for_other_data_is_no_proof(repo: Repo, run: Run) -> None:
    write(repo.root / "raw" / "customers.csv", "id,email\n1,ada@example.com\n")
    repo.dvc("add", "-q", "raw")
    assert run("data", "register", "raw/customers.csv", "--env", "prod").exit_code == 0
    write(repo.root / "dvc.yaml", PIPELINE)
    repo.dvc("repro", "-q", "clean", "mask", env="prod")
    other = write(repo.root / "other.txt", "something else\n")
    _prove(other, repo.root / "masked.csv.envguard-proof.json")
    synced = run("dvc", "sync")
    assert "the proof does not verify" in synced.stdout
    assert "the proof belongs to another file" in synced.stdout
    assert run("data", "check", "masked.csv").exit_code == 1


def test_data_check_takes_the_digest_from_dvc_state(repo: Repo, run: Run) -> None:
    from envguard.gate import check_data_use
    from envguard.runtime import Runtime

    data = write(repo.root / "big.csv", "id\n" + "1\n" * 1000)
    repo.dvc("add", "-q", "big.csv")
    assert run("data", "register", "big.csv", "--env", "prod").exit_code == 0
    assert run("dvc", "sync").exit_code == 0

    hashed: list[str] = []

    def hash_file() -> str:
        hashed.append("read")
        return hashlib.sha256(data.read_bytes()).hexdigest()

    runtime = Runtime()
    decision = check_data_use(runtime, str(data), None, hash_file=hash_file, record=False)
    assert hashed == []  # DVC's state knew the file: not read
    assert not decision.allowed
    assert "production lineage from 'prod'" in decision.reasons[0].message
    with data.open("a") as handle:
        handle.write("2\n")  # modified since DVC hashed it: DVC's md5 is no longer trusted
    check_data_use(runtime, str(data), None, hash_file=hash_file, record=False)
    assert hashed == ["read"]


def test_data_promote_names_a_dvc_tracked_file_by_the_digest_dvc_recorded(
    repo: Repo, run: Run
) -> None:
    data = write(repo.root / "curated.csv", "id\n" + "1\n" * 100)
    repo.dvc("add", "-q", "curated.csv")
    assert run("data", "register", "curated.csv", "--env", "prod").exit_code == 0
    assert run("dvc", "sync").exit_code == 0
    promoted = run("data", "promote", "curated.csv", "--to", "test", "--json")
    assert promoted.exit_code == 1
    answer = promoted.json()
    assert answer["dataset"] == f"sha256:{hashlib.sha256(data.read_bytes()).hexdigest()}"
    assert answer["facts"]["digest_source"].startswith("DVC state: md5")  # the file was not read
    # This policy has no [promotion.test]: only the lineage rule applies.
    assert [r["rule"] for r in answer["decision"]["reasons"]] == ["prod-data-in-non-prod"]
    assert answer["from_env"] == "prod"
