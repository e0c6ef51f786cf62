"""``envguard mask`` end to end on adversarial data: real pyarrow, pandas and Great Expectations,
the example policy, the command as a user types it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from tests.conftest import CliResult

Cli = Callable[..., CliResult]

# Column names the example policy masks: email, phone (hash), name (redact), ssn (drop),
# notes (scrub), birth_date (year), postcode (keep 3), income (width 10000), account_id (redact).
PEOPLE = (
    "id,email,phone,name,ssn,notes,birth_date,postcode,income,account_id,city\n"
    "1,Ada@Example.com,+44 20 7946 0958,Ada Lovelace,123-45-6789,"
    '"Call (555) 123-4567 or ADA [AT] EXAMPLE [DOT] COM",1815-12-10,SW1A 1AA,52000,ACC-1,London\n'
    "2,grace@navy.mil,555-123-4567,Grace Hopper,987 65 4321,"
    '"card 4111 1111 1111 1111, order 4111 1111 1111 1112",1906-12-09,10001,71000,ACC-2,"New\n'
    'York"\n'
    "3,,,,,,,,,,\n"
    "4,josé@exämple.de,+33 1 23 45 67 89,José Ünïcødé,111-22-3333,"
    '"ip 10.0.0.1 — grüße, SSN 078 05 1120",1990-01-31,75001,-5,ACC-4,Zürich\n'
    '5,ADA@EXAMPLE.COM,+1 (555) 010-9999,"Lovelace, Ada",222-33-4444,'
    '"mail: bob(at)corp(dot)co(dot)uk; tel +49-30-901820",2001-07-04,EC1A,9999,ACC-5,\n'
)
RAW_PII = (
    "Ada@Example.com",
    "ADA [AT] EXAMPLE [DOT] COM",
    "(555) 123-4567",
    "4111 1111 1111 1111,",
    "10.0.0.1",
    "078 05 1120",
    "bob(at)corp",
    "+49-30-901820",
    "123-45-6789",
    "Ada Lovelace",
)


def _read(path: Path) -> pa.Table:
    return pcsv.read_csv(
        path,
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            strings_can_be_null=True,
            column_types={c: pa.string() for c in PEOPLE.splitlines()[0].split(",")},
        ),
    )


@pytest.fixture
def people(workspace: Path) -> Path:
    path = workspace / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    return path


def test_mask_csv_masks_validates_and_proves(people: Path, envguard_cli: Cli) -> None:
    # The raw file is production data: the gate refuses it in `train`...
    assert envguard_cli("data", "register", str(people), "--env", "prod").exit_code == 0
    assert envguard_cli("data", "check", str(people)).exit_code == 1
    result = envguard_cli("mask", str(people), "-o", "out/masked.csv")
    assert result.exit_code == 0, result.stderr
    assert "validation: passed" in result.stdout
    masked = Path("out/masked.csv")
    text = masked.read_text(encoding="utf-8")
    for raw in RAW_PII:
        assert raw not in text
    table = _read(masked)
    rows = table.to_pylist()
    assert "ssn" not in table.column_names
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0]["email"].startswith("tok_")
    assert len(rows[0]["email"]) == 36
    assert rows[0]["name"] == "[REDACTED]"
    assert rows[0]["account_id"] == "[ACCOUNT]"
    assert rows[0]["notes"] == "Call [PHONE] or [EMAIL]"
    # A Luhn-valid card is replaced, a number that fails the check is not a card.
    assert rows[1]["notes"] == "card [CARD], order 4111 1111 1111 1112"
    assert rows[1]["city"] == "New\nYork"  # the quoted newline survived
    assert rows[2] == {k: (None if k != "id" else "3") for k in table.column_names}
    assert rows[3]["notes"] == "ip [IP] — grüße, SSN [SSN]"
    assert rows[3]["email"] != rows[0]["email"]
    assert rows[4]["notes"] == "mail: [EMAIL]; tel [PHONE]"
    assert (rows[0]["birth_date"], rows[0]["postcode"], rows[0]["income"]) == (
        "1815",
        "SW1",
        "[50000, 60000)",
    )
    assert (rows[3]["income"], rows[4]["income"]) == ("[-10000, 0)", "[0, 10000)")

    proof = Path("out/masked.csv.envguard-proof.json")
    statement = json.loads(base64.b64decode(json.loads(proof.read_text())["payload"]))
    predicate = statement["predicate"]
    assert predicate["columns"]["ssn"] == {"method": "drop"}
    assert predicate["columns"]["city"] == {"method": "keep"}
    assert predicate["columns"]["income"] == {"method": "generalize", "width": 10000}
    checks = predicate["validation"]["checks"]
    assert {c["column"] for c in checks if "e-mail" in c["check"]} == {"notes", "city", "id"}
    assert {c["expectation"] for c in checks} == {
        "expect_table_columns_to_match_set",
        "expect_column_values_to_match_regex",
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_not_match_regex_list",
        "expect_column_values_to_contain_no_payment_card",
    }
    assert all(c["success"] for c in checks)
    assert predicate["validation"]["row_count"] == 5
    for raw in RAW_PII:
        assert raw not in proof.read_text()
    verified = envguard_cli("proof", "verify", str(proof), "--json")
    assert verified.exit_code == 0, verified.stdout
    assert verified.json()["data"] == "out/masked.csv"
    # ...the masking is in the lineage log, and the gate lets the masked file through after
    # verifying the recorded proof again; a file edited after proving is refused.
    recorded = envguard_cli("audit", "log", "--kind", "proof.recorded", "--json").json()
    assert len(recorded) == 1
    assert [link[2] for link in recorded[0]["links"]] == ["masked"]
    checked = envguard_cli("data", "check", "out/masked.csv", "--json")
    assert checked.exit_code == 0, checked.stdout
    assert checked.json()[0]["outcome"] == "allow"
    # A "masking" recorded by hand, reusing the genuine proof for other data, is no proof.
    from envguard.digests import sha256_file
    from envguard.lineage import Link
    from envguard.runtime import current

    forged = Path("out/forged.csv")
    forged.write_text(text.replace("[REDACTED]", "Ada Lovelace", 1), encoding="utf-8")
    runtime = current()
    runtime.store.append(
        runtime.draft(
            "proof.recorded",
            entities=[recorded[0]["entities"][0], f"sha256:{sha256_file(forged)}"],
            links=[Link(recorded[0]["links"][0][0], f"sha256:{sha256_file(forged)}", "masked")],
            payload={"envelope": recorded[0]["payload"]["envelope"]},
        )
    )
    refused = envguard_cli("data", "check", str(forged), "--json")
    assert refused.exit_code == 1, refused.stdout
    assert refused.json()[0]["reasons"][0]["rule"] == "prod-data-in-non-prod"


def test_tokens_are_stable_for_joins_and_depend_on_the_key(
    people: Path, envguard_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert envguard_cli("mask", str(people), "-o", "a.csv").exit_code == 0
    assert envguard_cli("mask", str(people), "-o", "b.parquet").exit_code == 0
    a = _read(Path("a.csv")).column("email").to_pylist()
    b = pq.read_table("b.parquet").column("email").to_pylist()
    assert a == b
    assert a[0] != a[4]  # Ada@Example.com and ADA@EXAMPLE.COM are different values
    monkeypatch.setenv("ENVGUARD_MASKING_KEY", "another-key-of-enough-length")
    assert envguard_cli("mask", str(people), "-o", "c.csv").exit_code == 0
    c = _read(Path("c.csv")).column("email").to_pylist()
    assert c[0] != a[0]
    assert c[2] is None


def test_parquet_in_and_out_keeps_types_of_unmasked_columns(
    workspace: Path, envguard_cli: Cli
) -> None:
    import datetime

    table = pa.table(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "birth_date": pa.array([datetime.date(1980, 5, 17), None, datetime.date(2000, 1, 1)]),
            "income": pa.array([12345.5, 0.0, None]),
            "email": ["a@b.example", None, "c@d.example"],
        }
    )
    pq.write_table(table, workspace / "in.parquet", row_group_size=2)
    result = envguard_cli("mask", "in.parquet", "-o", "out.parquet", "--json")
    assert result.exit_code == 0, result.stdout
    assert result.json()["rows"] == 3
    out = pq.read_table("out.parquet")
    assert out.schema.field("id").type == pa.int64()
    assert out.column("birth_date").to_pylist() == ["1980", None, "2000"]
    assert out.column("income").to_pylist() == ["[10000, 20000)", "[0, 10000)", None]
    assert envguard_cli("proof", "verify", "out.parquet.envguard-proof.json").exit_code == 0


def test_pii_in_unnamed_columns_fails_with_counts_and_no_values(
    workspace: Path, envguard_cli: Cli
) -> None:
    (workspace / "crm.csv").write_text(
        "customer,comment,ref\n"
        "1,Reach me: JOHN.DOE@EXAMPLE.ORG,4539 1488 0343 6467\n"
        "2,SSN 123 45 6789 and +44 20 7946 0958,order 4539 1488 0343 6468\n"
        "3,,\n"
        "4,nothing to see,john [at] example [dot] org\n",
        encoding="utf-8",
    )
    result = envguard_cli("mask", "crm.csv", "-o", "crm-masked.csv", "--rule", "customer=hash")
    assert result.exit_code == 1
    assert "crm-masked.csv was not written and no proof was made" in result.stderr
    pii = "no e-mail addresses, phone numbers, SSNs or IPv4 addresses"
    assert f"column comment: {pii}: 2 of 4 values" in result.stderr
    assert f"column ref: {pii}: 1 of 4 values" in result.stderr
    assert "column ref: no payment card numbers (Luhn): 1 of 4 values" in result.stderr
    for raw in ("JOHN.DOE", "123 45 6789", "4539 1488", "7946", "john [at]"):
        assert raw not in result.stderr + result.stdout
    assert not list(workspace.glob("crm-masked*"))
    assert not list(workspace.glob(".crm-masked*"))
    as_json = envguard_cli("mask", "crm.csv", "-o", "crm-masked.csv", "--json")
    assert as_json.exit_code == 1
    assert "JOHN.DOE" not in as_json.stdout
    failed = {(c["column"], c["check"]) for c in as_json.json()["validation"]["failed"]}
    assert ("ref", "no payment card numbers (Luhn)") in failed
    fixed = envguard_cli(
        "mask", "crm.csv", "-o", "crm-masked.csv", "--rule", "comment=scrub", "--rule", "ref=scrub"
    )
    assert fixed.exit_code == 0, fixed.stderr
    assert "order 4539 1488 0343 6468" in Path("crm-masked.csv").read_text()


def test_a_rule_that_leaves_pii_fails_validation(workspace: Path, envguard_cli: Cli) -> None:
    (workspace / "t.csv").write_text("zip,when\nSW1A 1AA,not a date\n,2020-02-03\n")
    result = envguard_cli(
        "mask",
        "t.csv",
        "-o",
        "m.csv",
        "--rule",
        "zip=generalize,keep=3",
        "--rule",
        "when=generalize,to=month",
    )
    # The unreadable date became null where the source was not: the check fails.
    assert result.exit_code == 1
    assert "column when: not null where the source was not: 1 of 2 values" in result.stderr


def test_edited_copied_and_foreign_proofs_fail(
    people: Path, envguard_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert envguard_cli("mask", str(people), "-o", "m.csv").exit_code == 0
    proof = Path("m.csv.envguard-proof.json")
    data = bytearray(Path("m.csv").read_bytes())
    data[10] = ord("X") if data[10] != ord("X") else ord("Y")
    Path("edited.csv").write_bytes(bytes(data))
    edited = envguard_cli("proof", "verify", str(proof), "--data", "edited.csv")
    assert edited.exit_code == 1
    assert "proof-digest" in edited.stdout
    # A proof copied beside another file is about the first file only.
    Path("other.csv").write_text("id\n1\n")
    Path("other.csv.envguard-proof.json").write_bytes(proof.read_bytes())
    copied = envguard_cli("proof", "verify", "other.csv.envguard-proof.json", "--json")
    assert copied.exit_code == 1
    assert [r["rule"] for r in copied.json()["reasons"]] == ["proof-digest"]
    # Another installation's key is not one the policy lists.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    monkeypatch.setenv("ENVGUARD_SIGNING_KEY", pem.decode())
    assert envguard_cli("mask", str(people), "-o", "foreign.csv").exit_code == 0
    monkeypatch.delenv("ENVGUARD_SIGNING_KEY")
    foreign = envguard_cli("proof", "verify", "foreign.csv.envguard-proof.json", "--json")
    assert foreign.exit_code == 1
    (reason,) = foreign.json()["reasons"]
    assert reason["rule"] == "proof-signature"
    assert "does not trust for masking" in reason["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "-o", "m.csv"], "missing.csv: file not found"),
        (["people.csv", "-o", "m.xlsx"], "m.xlsx: unknown format"),
        (["people.csv", "-o", "people.csv"], "must not overwrite the input"),
        (["people.csv", "-o", "m.csv", "--rule", "email"], "expected COLUMN=METHOD"),
        (["people.csv", "-o", "m.csv", "--rule", "email=shred"], "method"),
        (["empty.csv", "-o", "m.csv"], "the CSV file is empty"),
    ],
)
def test_bad_input_is_one_message_and_exit_2(
    people: Path, envguard_cli: Cli, args: list[str], message: str
) -> None:
    Path("empty.csv").write_text("")
    result = envguard_cli("mask", *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_method_that_does_not_fit_the_type_is_exit_2(workspace: Path, envguard_cli: Cli) -> None:
    pq.write_table(pa.table({"tags": [["a", "b"], None]}), workspace / "t.parquet")
    result = envguard_cli("mask", "t.parquet", "-o", "m.parquet", "--rule", "tags=scrub")
    assert result.exit_code == 2
    assert "column 'tags': cannot scrub values of type list<element: string>" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(workspace.glob("*m.parquet*"))
    dropped = envguard_cli("mask", "t.parquet", "-o", "m.parquet", "--rule", "tags=drop")
    assert dropped.exit_code == 0, dropped.stderr


def test_header_only_csv_is_masked_and_proven(workspace: Path, envguard_cli: Cli) -> None:
    (workspace / "h.csv").write_text("email,notes\n")
    result = envguard_cli("mask", "h.csv", "-o", "h-masked.csv")
    assert result.exit_code == 0, result.stderr
    assert Path("h-masked.csv").read_text().splitlines() == ['"email","notes"']
