#!/usr/bin/env python3
# /// script
# dependencies = ["nox[uv]>=2025.2.9"]
# ///
"""envguard's developer tasks: ``nox -s NAME``, or ``python3 noxfile.py -s NAME`` with no nox
installed (it is then bootstrapped into ``.nox/.bootstrap``, and nothing outside this folder
changes).

Sessions that install the project use every extra, so that the bundled plugins are active.
Versions and dependency groups are read from ``pyproject.toml``; nothing is repeated here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _bootstrap() -> None:
    """Run this file under a private nox when ``import nox`` fails (``python3 noxfile.py``)."""
    venv = ROOT / ".nox" / ".bootstrap"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        print(f"noxfile.py: installing nox into {venv} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "nox[uv]>=2025.2.9"], check=True
        )
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])  # noqa: S606


try:
    import nox
except ImportError:
    if __name__ != "__main__":
        raise
    _bootstrap()

PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["tests", "lint", "typecheck"]

PROJECT = ["-e", ".[all]"]
SERVICE_ENV = {"DVC_NO_ANALYTICS": "1", "MLFLOW_ENABLE_ARTIFACTS_DESTINATION_LOGGING": "false"}


def _groups(*names: str) -> list[str]:
    return [req for name in names for req in nox.project.dependency_groups(PYPROJECT, name)]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite: unit tests, then integration tests against the real servers they
    start (mlflow server, moto's S3 server, PostgreSQL, the dvc command). Extra arguments go to
    pytest, e.g. ``nox -s tests -- -k policy``."""
    session.install(*PROJECT, *_groups("test"))
    _system_packages(session)
    # Many tests start Python subprocesses (the envguard CLI, training scripts, mlflow server)
    # that import mlflow, sklearn and pandas; a machine that sets PYTHONDONTWRITEBYTECODE makes
    # each of them compile those libraries again. Let the session's venv keep its bytecode.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    session.run("pytest", *session.posargs, env=SERVICE_ENV)


def _system_packages(session: nox.Session) -> None:
    """Install the Debian packages the tests drive for real (headless Chromium for the report),
    when they are missing and this runs as root; PostgreSQL comes with the machine."""
    import shutil

    if shutil.which("chromium") or os.name != "posix" or os.geteuid() != 0:
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env)
    session.run("apt-get", "install", "-y", "-qq", "chromium", external=True, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting, over the core, plugins, tests and this file."""
    session.install(*_groups("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy in strict mode over the core and the bundled plugins."""
    session.install(*PROJECT, *_groups("typecheck"))
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (opt-in, not timed tests): each compares envguard with the plain tool in the
    same run and writes JSON to docs/benchmarks/; docs/benchmarks.md is regenerated from it."""
    session.install(*PROJECT, *_groups("test"))
    session.run("python", "-m", "tests.benchmarks", *session.posargs, env=SERVICE_ENV)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (docs/mkdocs.yml) with MkDocs in strict mode into .nox/site/."""
    session.install(*PROJECT, *_groups("docs"))
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "-f",
        "docs/mkdocs.yml",
        "--site-dir",
        str(ROOT / ".nox" / "site"),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
def demo(session: nox.Session) -> None:
    """envguard's main job end to end (``envguard demo``) on embedded defaults, in a temporary
    workspace unless ``-- --workdir DIR`` is given."""
    session.install(*PROJECT)
    session.run("envguard", "demo", *session.posargs, env=SERVICE_ENV)


if __name__ == "__main__":
    nox.main()
