"""The scan's framework without servers: the lineage log's own checks, fail-closed plugins,
recording once per standing finding, alerts, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from envguard import hookimpl
from envguard.errors import InputError
from envguard.lineage.events import EventDraft
from envguard.plugins import PluginManager
from envguard.runtime import Runtime
from envguard.scan import Finding
from envguard.scan.sweep import scan

POLICY = """\
version = 1
default_env = "train"
[environments.train]
tier = "non-prod"
[environments.prod]
tier = "prod"
[alerts]
file = "alerts.jsonl"
"""


class Found:
    """A plugin whose sweep finds what the test puts in ``findings``."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    @hookimpl
    def envguard_scan(self, policy: Any, store: Any, progress: Any) -> list[Finding]:
        progress("things", len(self.findings), len(self.findings))
        return list(self.findings)


class Raising:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    @hookimpl
    def envguard_scan(self, policy: Any, store: Any, progress: Any) -> list[Finding]:
        raise self.exc


def runtime_with(tmp_path: Path, *plugins: tuple[str, object]) -> Runtime:
    (tmp_path / "envguard.toml").write_text(POLICY)
    environ = {"ENVGUARD_ENV": "train", "ENVGUARD_ACTOR": "auditor"}
    manager = PluginManager(environ)
    manager.loaded = True  # only the plugins of the test, and the alert sinks
    import envguard_alerts

    manager.register(envguard_alerts, "alerts")
    for name, plugin in plugins:
        manager.register(plugin, name)
    return Runtime(tmp_path / "envguard.toml", environ, plugins=manager)


def alerts(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_clean_store_and_no_plugin_finding_is_clean(tmp_path: Path) -> None:
    runtime = runtime_with(tmp_path)
    report = scan(runtime)
    assert report.findings == []
    assert report.exit_code == 0
    assert [e.kind for e in runtime.store.events()] == ["scan.completed"]


def test_a_standing_finding_is_recorded_and_alerted_once_then_resolved(tmp_path: Path) -> None:
    plugin = Found()
    plugin.findings = [Finding("object-untagged", "s3://b/k", "no tag", "tag it")]
    runtime = runtime_with(tmp_path, ("found", plugin))
    first = scan(runtime)
    assert first.exit_code == 1
    assert first.new == {plugin.findings[0].id}
    assert first.swept == {
        "things": 1,
        "lineage log events verified": 0,
        "lineage log data uses": 0,
    }
    second = scan(runtime)
    assert second.new == set()
    assert [f.id for f in second.findings] == [first.findings[0].id]
    recorded = list(runtime.store.events(kind="violation.found"))
    assert len(recorded) == 1
    assert recorded[0].payload["finding"]["guideline"] == 4
    assert recorded[0].payload["decision"]["action"] == "scan"
    assert len(alerts(tmp_path)) == 1
    plugin.findings = []
    third = scan(runtime)
    assert third.exit_code == 0
    assert third.resolved == [first.findings[0].id]
    plugin.findings = [Finding("object-untagged", "s3://b/k", "no tag", "tag it")]
    assert scan(runtime).new == {first.findings[0].id}  # it came back: recorded again
    assert len(list(runtime.store.events(kind="violation.found"))) == 2
    assert len(alerts(tmp_path)) == 2


def test_a_plugin_that_raises_is_a_finding_not_a_pass(tmp_path: Path) -> None:
    runtime = runtime_with(tmp_path, ("buggy", Raising(RuntimeError("boom"))))
    report = scan(runtime)
    assert [(f.rule, f.entity) for f in report.findings] == [("scan-plugin-failed", "plugin:buggy")]
    assert report.exit_code == 1
    assert "boom" in report.findings[0].message


def test_an_unreachable_system_gives_exit_code_2(tmp_path: Path) -> None:
    failing = Raising(InputError("s3://nowhere", "cannot reach it"))
    runtime = runtime_with(tmp_path, ("s3like", failing))
    report = scan(runtime)
    assert [f.rule for f in report.findings] == ["scan-unreachable"]
    assert report.exit_code == 2


def test_a_standing_finding_of_a_failed_sweep_is_not_resolved(tmp_path: Path) -> None:
    plugin = Found()
    plugin.findings = [Finding("run-untagged", "run:1", "no tag", "tag it")]
    runtime = runtime_with(tmp_path, ("found", plugin))
    first = scan(runtime)
    runtime.plugins.pm.unregister(name="found")
    runtime.plugins.register(Raising(RuntimeError("down")), "found")
    assert scan(runtime).resolved == []
    assert first.findings[0].id not in {f.id for f in scan(runtime).findings}


def test_non_prod_use_of_production_data_without_proof_is_found(tmp_path: Path) -> None:
    runtime = runtime_with(tmp_path)
    store = runtime.store
    digest = "sha256:" + "ab" * 32
    store.append(EventDraft("dataset.registered", [digest], payload={"origin": "prod"}))
    store.append(
        EventDraft(
            "dataset.used",
            [digest, "run:r1"],
            payload={"decision": {"outcome": "warn"}},
            environment="train",
        )
    )
    report = scan(runtime)
    assert [(f.rule, f.entity, f.evidence["dataset"]) for f in report.findings] == [
        ("run-prod-data-unmasked", "run:r1", digest)
    ]


def test_an_altered_log_is_a_finding(tmp_path: Path) -> None:
    import sqlite3

    runtime = runtime_with(tmp_path)
    runtime.store.append(EventDraft("dataset.registered", ["sha256:" + "cd" * 32]))
    db = sqlite3.connect(tmp_path / ".envguard" / "lineage.db")
    db.execute("UPDATE events SET actor = 'mallory' WHERE seq = 1")
    db.commit()
    db.close()
    report = scan(runtime, record=False)
    assert [f.rule for f in report.findings] == ["log-verify-failed"]


def test_cli_scan_json_and_bad_policy(
    workspace: Path, envguard_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVGUARD_DISABLED_PLUGINS", "mlflow,mlflow-server,s3,dvc,gx")
    result = envguard_cli("audit", "scan", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["ok"] is True
    plain = envguard_cli("audit", "scan", "--no-record")
    assert plain.exit_code == 0
    assert "clean: no finding" in plain.stdout
    (workspace / "envguard.toml").write_text("version = 1\nmode = 'sometimes'\n")
    bad = envguard_cli("audit", "scan")
    assert bad.exit_code == 2
    assert "envguard.toml" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_evidence_report_shows_the_last_scan_and_its_open_findings(tmp_path: Path) -> None:
    from envguard.report import gather, render_html

    plugin = Found()
    plugin.findings = [Finding("run-untagged", "run:abc", "no tag", "tag it")]
    runtime = runtime_with(tmp_path, ("found", plugin))
    assert gather(runtime)["scan"]["time"] is None
    scan(runtime)
    evidence = gather(runtime)
    assert [f["id"] for f in evidence["scan"]["open"]] == [plugin.findings[0].id]
    assert evidence["data_uses"]["counts"] == {}  # a scan's finding is not a data use
    assert plugin.findings[0].id in render_html(evidence)
