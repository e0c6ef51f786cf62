"""``envguard audit report``: a self-contained HTML file organised by I&S-05's auditing
guidelines, opened in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from envguard.lineage.events import EventDraft, Link
from tests.conftest import CliResult

pytestmark = pytest.mark.integration


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        "headless Chromium is needed: apt-get install chromium "
        "(nox -s tests installs it when it runs as root)"
    )


def headless(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_report_renders_in_chromium(
    workspace: Path, envguard_cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = workspace / "customers.csv"
    raw.write_text("id,email\n1,ada@example.com\n")
    assert envguard_cli("data", "register", str(raw), "--env", "prod").exit_code == 0
    assert envguard_cli("data", "check", str(raw)).exit_code == 1
    from envguard.runtime import current

    runtime = current()
    digest = runtime.store.events(kind="dataset.registered").__next__().entities[0]
    runtime.store.append(
        EventDraft(
            "derivation",
            links=[
                Link(digest, "sha256:" + "b" * 64, "derived"),
                Link("sha256:" + "b" * 64, "sha256:" + "c" * 64, "masked"),
                Link("sha256:" + "c" * 64, "run:abc123", "used-by"),
            ],
        )
    )
    result = envguard_cli(
        "audit",
        "report",
        "-o",
        str(workspace / "out" / "report.html"),
        "--json",
        str(workspace / "out" / "evidence.json"),
    )
    assert result.exit_code == 0, result.stderr
    assert "I&S-05.1: Yes; report written to" in result.stdout
    evidence = json.loads((workspace / "out" / "evidence.json").read_text())
    assert evidence["data_uses"]["counts"] == {"deny": 1}
    assert evidence["verification"]["ok"] is True
    assert evidence["graph_prod"] == [digest]
    assert [g["number"] for g in evidence["guidelines"]] == [1, 2, 3, 4, 5, 6, 7]

    html = (workspace / "out" / "report.html").read_text()
    # Self-contained: nothing is loaded from anywhere (no external style, script or image).
    assert " src=" not in html
    assert "<link" not in html
    assert "@import" not in html
    page = (workspace / "out" / "report.html").as_uri()
    dom = headless("--dump-dom", page, profile=workspace / "chrome")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for n in range(1, 8):
        assert f"Auditing guideline {n}</h2>" in dom.stdout
    assert "AI-CAIQ I&amp;S-05.1" in dom.stdout
    assert "<svg" in dom.stdout
    assert "#fecaca" in dom.stdout  # the production dataset is drawn red
    shot = workspace / "out" / "report.png"
    picture = headless(
        "--window-size=1200,1600", f"--screenshot={shot}", page, profile=workspace / "chrome"
    )
    assert picture.returncode == 0, picture.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_report_to_an_unwritable_place_exits_2(
    workspace: Path, envguard_cli: Callable[..., CliResult]
) -> None:
    (workspace / "blocker").write_text("a file, not a folder")
    result = envguard_cli("audit", "report", "-o", str(workspace / "blocker" / "r.html"))
    assert result.exit_code == 2
    assert "cannot write the report" in result.stderr
    assert "Traceback" not in result.stderr
