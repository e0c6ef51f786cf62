"""The lineage log through the commands a user types."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.servers import free_port

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]


@pytest.fixture
def data(workspace: Path) -> Path:
    raw = workspace / "customers.csv"
    raw.write_text("id,email\n1,ada@example.com\n2,grace@example.com\n")
    return raw


def test_register_then_a_copy_is_caught_in_non_prod(
    data: Path, workspace: Path, envguard_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered = envguard_cli("data", "register", str(data), "--env", "prod", "--json")
    assert registered.exit_code == 0, registered.stderr
    (row,) = registered.json()
    assert row["origin"] == "prod"
    assert row["seq"] == 1
    copy = workspace / "dev" / "copy.csv"
    copy.parent.mkdir()
    shutil.copy(data, copy)
    checked = envguard_cli("data", "check", str(copy))
    assert checked.exit_code == 1
    assert "DENY" in checked.stdout
    assert "has production lineage from 'prod'" in checked.stdout
    assert f"fix: mask it first: envguard mask {copy} -o MASKED_FILE" in checked.stdout
    as_json = envguard_cli("data", "check", str(copy), "--json").json()
    assert as_json[0]["outcome"] == "deny"
    assert as_json[0]["reasons"][0]["rule"] == "prod-data-in-non-prod"
    monkeypatch.setenv("ENVGUARD_ENV", "prod")
    assert envguard_cli("data", "check", str(copy)).exit_code == 0
    monkeypatch.setenv("ENVGUARD_ENV", "train")
    clean = workspace / "dev" / "synthetic.csv"
    clean.write_text("id\n1\n")
    assert envguard_cli("data", "check", str(clean)).exit_code == 0

    log = envguard_cli("audit", "log", "--json").json()
    assert [e["kind"] for e in log] == [
        "dataset.registered",
        "decision",
        "decision",
        "dataset.used",
        "dataset.used",
    ]
    assert log[1]["payload"]["decision"]["outcome"] == "deny"
    assert all(e["policy_sha256"] == log[0]["policy_sha256"] for e in log)
    only = envguard_cli("audit", "log", "--kind", "dataset.used", "--json").json()
    assert [e["seq"] for e in only] == [4, 5]
    entity = f"sha256:{row['sha256']}"
    assert len(envguard_cli("audit", "log", "--entity", entity, "--json").json()) == 4
    assert envguard_cli("audit", "log", "--since", "2999-01-01", "--json").json() == []
    lineage = envguard_cli("audit", "lineage", str(copy), "--json").json()
    assert lineage["entity"] == entity
    assert len(lineage["events"]) == 4


def test_verify_checkpoint_and_tampering(data: Path, workspace: Path, envguard_cli: Cli) -> None:
    assert envguard_cli("data", "register", str(data), "--env", "prod").exit_code == 0
    assert envguard_cli("data", "check", str(data)).exit_code == 1
    checkpoint = envguard_cli("audit", "checkpoint", "--json")
    assert checkpoint.exit_code == 0
    assert checkpoint.json()["seq"] == 2
    ok = envguard_cli("audit", "verify", "--json")
    assert ok.exit_code == 0
    assert ok.json()["ok"] is True
    assert ok.json()["checkpoints"] == 1
    db = sqlite3.connect(workspace / ".envguard" / "lineage.db")
    db.execute(
        'UPDATE events SET body = replace(body, \'"origin":"prod"\', \'"origin":"dev"\') '
        "WHERE seq = 1"
    )
    db.commit()
    db.close()
    bad = envguard_cli("audit", "verify")
    assert bad.exit_code == 1
    assert "event 1: edited: event 1 was altered after it was recorded" in bad.stdout
    assert "checkpoint 2 does not match" not in bad.stdout  # event 2 itself is intact


def test_bad_input_exits_2(data: Path, envguard_cli: Cli) -> None:
    missing = envguard_cli("data", "register", "nope.csv", "--env", "prod")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "error: nope.csv: no such file or directory"
    unknown = envguard_cli("data", "register", str(data), "--env", "production")
    assert unknown.exit_code == 2
    assert "unknown environment 'production' (from --env)" in unknown.stderr
    since = envguard_cli("audit", "log", "--since", "yesterday")
    assert since.exit_code == 2
    assert "--since: 'yesterday' is not an ISO 8601 time" in since.stderr
    assert "Traceback" not in missing.stderr + unknown.stderr + since.stderr


def test_the_gate_fails_closed_when_the_store_is_unreachable(
    data: Path, envguard_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/envguard"
    monkeypatch.setenv("ENVGUARD_LINEAGE_URL", url)
    result = envguard_cli("data", "check", str(data), "--json")
    assert result.exit_code == 1
    reasons = [r["rule"] for r in result.json()[0]["reasons"]]
    assert "lineage-unavailable" in reasons
    assert result.json()[0]["outcome"] == "deny"
