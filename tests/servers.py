"""Real servers for integration tests, started by the tests themselves on 127.0.0.1.

Each starts once per test session (session-scoped fixtures), waits until it answers by polling
with a deadline (no sleeps for synchronisation), and is stopped and removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["MlflowServer", "MotoServer", "PostgresServer", "free_port", "wait_until"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


def _pg_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")


class PostgresServer:
    """A private PostgreSQL cluster in a temporary folder (trust auth, loopback only)."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="envguard-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.user = "postgres"
        self._as_other = os.geteuid() == 0  # PostgreSQL refuses to run as root

    def _run(self, *argv: str) -> None:
        command = list(argv)
        if self._as_other:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self) -> PostgresServer:
        if self._as_other:
            shutil.chown(self.folder, "postgres")
        else:
            self.user = os.environ.get("USER", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            self.user,
            "--no-sync",
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "log"),
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off -c max_connections=200",
            "-w",
            "start",
        )
        wait_until(self._answers, "PostgreSQL")
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class MotoServer:
    """moto's S3-compatible HTTP server (``moto_server``) on 127.0.0.1, in its own process.

    Credentials are moto's ``testing`` pair (:attr:`ENV`). With ``no_auth_actions=N``, moto
    enforces IAM after the first N requests (``INITIAL_NO_AUTH_ACTION_COUNT``): the way to test a
    principal that lacks a permission.
    """

    ENV: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def __init__(self, no_auth_actions: int | None = None) -> None:
        self.port = free_port()
        self.no_auth_actions = no_auth_actions
        self.folder = Path(tempfile.mkdtemp(prefix="envguard-moto-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        found = Path(sys.executable).parent / "moto_server"
        command = str(found) if found.exists() else (shutil.which("moto_server") or "moto_server")
        env = {**os.environ, **self.ENV}
        if self.no_auth_actions is not None:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(self.no_auth_actions)
        with (self.folder / "log").open("wb") as log:
            self.process = subprocess.Popen(
                [command, "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_until(self._answers, "moto_server")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            log = (self.folder / "log").read_text(errors="replace")
            raise RuntimeError(f"moto_server exited: {log[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def api(self, path: str, body: bytes = b"") -> None:
        """POST to moto's control API (``reset``, ``iam-config``, ...)."""
        request = urllib.request.Request(  # noqa: S310 - the server we started
            f"{self.url}/moto-api/{path}",
            data=body,
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            if answer.status != 200:
                raise RuntimeError(f"moto-api/{path} answered {answer.status}")

    def client(self, service: str = "s3", **credentials: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=credentials.get("key", "testing"),
            aws_secret_access_key=credentials.get("secret", "testing"),
        )

    def stop(self) -> None:
        try:
            if self.process is not None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def stop_process_group(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """Stop a server started with ``start_new_session=True`` and every process it started (its
    process group): SIGTERM, then SIGKILL after ``timeout``, then SIGKILL to any worker that
    outlived its parent."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


class MlflowServer:
    """A plain ``mlflow server`` (sqlite backend, served artifacts) on a free port of 127.0.0.1."""

    def __init__(self, folder: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = extra
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> MlflowServer:
        mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
        log = (self.folder / "mlflow-server.log").open("wb")
        self.proc = subprocess.Popen(
            [
                mlflow,
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--backend-store-uri",
                f"sqlite:///{self.folder / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.folder / "artifacts"),
                "--workers",
                "1",
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
            env={
                **os.environ,
                "MLFLOW_ENABLE_ARTIFACTS_DESTINATION_LOGGING": "false",
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job runners to leave behind
                **self.env,
            },
            start_new_session=True,  # its own process group: its workers stop with it
        )
        log.close()
        wait_until(self._healthy, "mlflow server", timeout)
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                "mlflow server exited early:\n"
                + (self.folder / "mlflow-server.log").read_text()[-4000:]
            )
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as answer:  # noqa: S310 - the server we started
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process_group(self.proc)
