"""Shared fixtures. Integration fixtures that start real servers live in tests/integration."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers import MotoServer, PostgresServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_POLICY = ROOT / "examples" / "envguard.toml"


@pytest.fixture(scope="session", autouse=True)
def _private_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """XDG_CACHE_HOME (envguard's policy cache, and any other tool's cache) in a folder of the
    session's own, for this process and every command it starts: the suite never writes to the
    real home."""
    folder = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _clean_envguard_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's own ENVGUARD_* settings, and each starts a fresh runtime."""
    from envguard import runtime

    for name in (
        "ENVGUARD_ENV",
        "ENVGUARD_CONFIG",
        "ENVGUARD_DISABLE",
        "ENVGUARD_DISABLED_PLUGINS",
        "ENVGUARD_ACTOR",
        "ENVGUARD_DEBUG",
        "MLFLOW_TRACKING_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    runtime.reset()
    yield
    runtime.reset()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole session (started on first use)."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3-compatible server for the whole session (started on first use)."""
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder holding only a copy of examples/envguard.toml, as the working directory."""
    shutil.copy(EXAMPLE_POLICY, tmp_path / "envguard.toml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def envguard_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the ``envguard`` command in this process, as a user would type it."""
    from envguard.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run
