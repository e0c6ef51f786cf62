"""A real git repository, the real ``dvc`` command, DVC remotes on moto's S3 server.

The moto server starts once per session. The DVC guard is installed (``envguard dvc install``,
a .pth file in this interpreter's site-packages) for the session and removed at its end; it acts
only in folders with an envguard policy, so other DVC use in this environment is unaffected.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult
from tests.servers import MotoServer

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc") if (BIN / "dvc").exists() else (shutil.which("dvc") or "dvc")
_buckets = itertools.count(1)

POLICY = """\
version = 1
default_env = "train"
mode = "enforce"

[environments.train]
tier = "non-prod"
dvc_remotes = ["dev-data", "{local}"]

[environments.test]
tier = "non-prod"

[environments.prod]
tier = "prod"
dvc_remotes = ["prod-data"]
s3 = ["{prod_bucket}"]
"""


@pytest.fixture(scope="session")
def dvc_guard() -> Iterator[Path]:
    """The DVC guard, installed for the session through the real command."""
    from envguard_dvc import install

    was_installed = install.installed()
    report = install.install()
    try:
        yield Path(report.path)
    finally:
        if not was_installed:  # leave a developer's own installation as it was
            install.uninstall()


@dataclass
class Repo:
    root: Path
    moto: MotoServer
    dev_bucket: str
    prod_bucket: str
    env: dict[str, str]

    def dvc(self, *args: str, env: str | None = None, check: bool = True) -> CliResult:
        environ = dict(self.env)
        if env:
            environ["ENVGUARD_ENV"] = env
        done = subprocess.run(
            [DVC, *args], cwd=self.root, env=environ, capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"dvc {' '.join(args)}: {done.returncode}\n{done.stderr}")
        return CliResult(done.returncode, done.stdout, done.stderr)

    def python(self, code: str, env: str | None = None) -> CliResult:
        environ = dict(self.env)
        if env:
            environ["ENVGUARD_ENV"] = env
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=self.root,
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    def git(self, *args: str) -> None:
        subprocess.run(["git", *args], cwd=self.root, check=True, capture_output=True)

    def tags(self, bucket: str, key: str) -> dict[str, str]:
        found = self.moto.client().get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        return {t["Key"]: t["Value"] for t in found}

    def keys(self, bucket: str) -> list[str]:
        listed = self.moto.client().list_objects_v2(Bucket=bucket).get("Contents", [])
        return sorted(item["Key"] for item in listed)


@pytest.fixture
def repo(
    tmp_path: Path, moto: MotoServer, dvc_guard: Path, monkeypatch: pytest.MonkeyPatch
) -> Repo:
    """A git + DVC repository with an envguard policy, a dev and a prod remote on moto, and a
    local remote; the working directory of the test."""
    n = next(_buckets)
    dev, prod = f"dev-{n}-{os.getpid()}", f"prod-{n}-{os.getpid()}"
    client = moto.client()
    client.create_bucket(Bucket=dev)
    client.create_bucket(Bucket=prod)
    root = tmp_path / "repo"
    root.mkdir()
    local = tmp_path / "local-remote"
    (root / "envguard.toml").write_text(POLICY.format(local=local, prod_bucket=prod))
    for name, value in MotoServer.ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(tmp_path / "dvc-site-cache"))
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "ada")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ada@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "ada")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ada@example.com")
    monkeypatch.chdir(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENVGUARD_")}
    made = Repo(root, moto, dev, prod, env)
    made.git("init", "-q")
    made.dvc("init", "-q")
    # What `dvc remote add/modify/default` would write, in one go (each dvc call costs a second).
    with (root / ".dvc" / "config").open("a") as config:
        config.write("[core]\n    remote = dev-data\n")
        for name, bucket in (("dev-data", dev), ("prod-data", prod)):
            config.write(f"['remote \"{name}\"']\n    url = s3://{bucket}/store\n")
            config.write(f"    endpointurl = {moto.url}\n")
        config.write(f"['remote \"local\"']\n    url = {local}\n")
    (root / ".gitignore").write_text(".envguard/\n")
    return made


@pytest.fixture
def run(envguard_cli: Callable[..., CliResult]) -> Callable[..., CliResult]:
    """``envguard`` in this process; ``env=`` sets ENVGUARD_ENV for that one command."""

    def invoke(*args: str, env: str | None = None) -> CliResult:
        previous = os.environ.pop("ENVGUARD_ENV", None)
        if env:
            os.environ["ENVGUARD_ENV"] = env
        try:
            return envguard_cli(*args)
        finally:
            os.environ.pop("ENVGUARD_ENV", None)
            if previous is not None:
                os.environ["ENVGUARD_ENV"] = previous

    return invoke


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def events(kind: str) -> list[Any]:
    from envguard.runtime import current, reset

    reset()
    try:
        return list(current().store.events(kind=kind))
    finally:
        reset()
