"""The guard inside the plain `dvc` command and `dvc.api`: production data stays in production."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.integration.dvc.conftest import DVC, Repo, events, write

pytestmark = pytest.mark.integration

Run = Callable[..., CliResult]


def test_non_prod_cannot_read_or_write_a_prod_remote(repo: Repo, run: Run) -> None:
    write(repo.root / "customers.csv", "id,email\n1,ada@example.com\n")
    repo.dvc("add", "-q", "customers.csv")
    repo.dvc("push", "-r", "prod-data", env="prod")
    assert repo.tags(repo.prod_bucket, repo.keys(repo.prod_bucket)[0]) == {
        "envguard.env": "prod",
        "envguard.origin": "prod",
    }
    (repo.root / "customers.csv").unlink()
    pulled = repo.dvc("pull", "-r", "prod-data", check=False)
    assert pulled.exit_code == 1
    assert "envguard deny" in pulled.stderr
    assert "dvc pull from remote 'prod-data'" in pulled.stderr
    assert "production data of environment 'prod' into 'train' (non-production)" in pulled.stderr
    assert "fix: use a masked copy" in pulled.stderr
    assert not (repo.root / "customers.csv").exists()

    pushed = repo.dvc("push", "-r", "prod-data", check=False)
    assert pushed.exit_code == 1
    assert "dvc push to remote 'prod-data'" in pushed.stderr
    assert "would write into production environment 'prod' from 'train'" in pushed.stderr

    read = repo.python(
        "import dvc.api, envguard\n"
        "try:\n"
        "    dvc.api.read('customers.csv', remote='prod-data')\n"
        "except envguard.Denied as exc:\n"
        "    print('DENIED', exc.decision.reasons[0].rule)\n",
        env="test",
    )
    assert read.stdout.strip() == "DENIED dvc-read-prod", read.stderr
    decisions = [e for e in events("decision") if e.payload.get("operation")]
    assert [e.payload["operation"] for e in decisions] == ["pull", "push", "read"]

    allowed = repo.dvc("pull", "-r", "prod-data", env="prod")
    assert allowed.exit_code == 0
    assert (repo.root / "customers.csv").exists()


def test_a_repo_without_a_policy_and_disable_are_left_alone(
    repo: Repo, tmp_path: Path, dvc_guard: Path
) -> None:
    colleague = tmp_path / "colleague"
    colleague.mkdir()
    env = {**repo.env, "ENVGUARD_DISABLE": "1"}
    subprocess.run(["git", "init", "-q"], cwd=colleague, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=colleague, check=True, env=repo.env)
    write(colleague / "f.txt", "x\n")
    prod_url = f"s3://{repo.prod_bucket}/other"
    for args in (
        ["remote", "add", "-d", "prod-data", prod_url],
        ["remote", "modify", "prod-data", "endpointurl", repo.moto.url],
        ["add", "-q", "f.txt"],
        ["push"],
    ):
        done = subprocess.run(
            [DVC, *args], cwd=colleague, env=repo.env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr  # no envguard.toml here: the guard stays out
    assert "envguard" not in done.stderr
    # In the guarded repository, ENVGUARD_DISABLE=1 switches the client-side guard off.
    write(repo.root / "g.txt", "y\n")
    repo.dvc("add", "-q", "g.txt")
    done = subprocess.run(
        [DVC, "push", "-r", "prod-data"],
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_install_and_uninstall_are_idempotent(run: Run, tmp_path: Path) -> None:
    site = tmp_path / "site"
    first = run("dvc", "install", "--site-dir", str(site), "--json").json()
    assert first["changed"] is True
    assert run("dvc", "install", "--site-dir", str(site), "--json").json()["changed"] is False
    pth = Path(first["path"])
    # The .pth line is valid Python that Python's `site` runs, and does nothing when the
    # plugin is not importable.
    line = pth.read_text()
    done = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:] = []\n{line}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert run("dvc", "uninstall", "--site-dir", str(site), "--json").json()["changed"] is True
    assert run("dvc", "uninstall", "--site-dir", str(site), "--json").json()["changed"] is False
    assert not pth.exists()
