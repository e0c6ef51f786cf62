"""How the demo runs each step's command: in a process of its own, output captured.

A fresh interpreter per step would spend most of the demo's two minutes importing MLflow, pandas,
scikit-learn, DVC and Great Expectations again and again (seconds each on a busy machine). Where
the operating system can ``fork``, the demo imports them once (:meth:`Processes.preload`) and runs
each ``envguard``, ``dvc`` and ``python SCRIPT`` command in a child forked from itself: a separate
process with its own environment variables, working directory and exit code, running the
command's own entry point (``envguard.cli:main``, ``dvc.cli:main``, the script as ``__main__``).
Nothing of envguard's or MLflow's state is initialised before the fork: the parent only imports.
Every other command (``git``), and every command where there is no ``fork``, runs as a plain
subprocess.
"""

from __future__ import annotations

import importlib
import os
import runpy
import shutil
import subprocess
import sys
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["Processes"]

# Imported once by the parent, in this order; a missing one is skipped (its command then fails
# with the usual message about the extra to install).
PRELOAD = (
    "envguard.cli",
    "envguard.cli.data_commands",
    "envguard.cli.audit_commands",
    "pandas",
    "sklearn.linear_model",
    "sklearn.metrics",
    "mlflow",
    "mlflow.sklearn",
    "great_expectations",
    "envguard_gx.masking_run",
    "envguard_mlflow.server.client",
    "dvc.cli",
    "dvc.repo",
)
FORKED = ("envguard", "dvc", "python")


class Processes:
    """Runs commands in ``workdir`` and returns ``(exit code, stdout and stderr merged)``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.can_fork = hasattr(os, "fork") and sys.platform != "darwin"

    def preload(self) -> None:
        if not self.can_fork:
            return
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except ImportError:
                continue

    def run(self, argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, str]:
        if self.can_fork and argv[0] in FORKED:
            return self._forked(list(argv), dict(env))
        return self._spawned(list(argv), dict(env))

    def _spawned(self, argv: list[str], env: dict[str, str]) -> tuple[int, str]:
        if argv[0] == "envguard":
            argv = [sys.executable, "-m", "envguard", *argv[1:]]
        elif argv[0] == "dvc":
            argv = [sys.executable, "-m", "dvc", *argv[1:]]
        elif argv[0] == "python":
            argv = [sys.executable, *argv[1:]]
        else:
            argv = [shutil.which(argv[0], path=env.get("PATH")) or argv[0], *argv[1:]]
        result = subprocess.run(
            argv,
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return result.returncode, result.stdout.decode(errors="replace")

    def _forked(self, argv: list[str], env: dict[str, str]) -> tuple[int, str]:
        read, write = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            _child(argv, env, self.workdir, write)
        os.close(write)
        chunks = []
        with os.fdopen(read, "rb") as pipe:
            while chunk := pipe.read(65536):
                chunks.append(chunk)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def _child(argv: list[str], env: dict[str, str], workdir: Path, out: int) -> None:
    code = 1
    try:
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(workdir)
        code = _call(argv)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:  # noqa: BLE001 - reported as the interpreter would, exit 1
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _call(argv: list[str]) -> int:
    if argv[0] == "envguard":
        from envguard.cli import main as envguard_main

        sys.argv = argv
        envguard_main(argv[1:])
        return 0
    if argv[0] == "dvc":
        from dvc.cli import main as dvc_main

        sys.argv = argv
        return int(dvc_main(argv[1:]))
    script = str(Path(argv[1]).resolve())
    sys.argv = argv[1:]
    sys.path.insert(0, str(Path(script).parent))
    runpy.run_path(script, run_name="__main__")
    return 0


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1
