"""The demo's own ``mlflow server --app-name envguard``: started, given users, always stopped.

MLflow's tracking server with basic auth and envguard's registry gate, on a free port of
127.0.0.1, with a SQLite backend and served artifacts in the workspace's ``mlflow/`` folder. The
admin password, Flask's secret and each user's password are random, made for this run only. Users
are created through MLflow's auth REST API, as an administrator would.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DemoServer"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoServer:
    def __init__(self, workspace: Path, policy: Path, users: Iterable[str]) -> None:
        self.folder = workspace / "mlflow"
        self.policy = policy
        self.database = self.folder / "mlflow.db"
        self.log = self.folder / "server.log"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_password = secrets.token_urlsafe(16)
        self.passwords = {user: secrets.token_urlsafe(12) for user in users}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server in the background; :meth:`ready` waits for it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ENVGUARD_", "MLFLOW_TRACKING_", "_MLFLOW"))
        }
        env.update(
            ENVGUARD_CONFIG=str(self.policy),
            MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(24),
            MLFLOW_AUTH_ADMIN_PASSWORD=self.admin_password,
            MLFLOW_ENABLE_ARTIFACTS_DESTINATION_LOGGING="false",
            # MLflow 3's job executor (a dozen worker processes) serves nothing the demo uses.
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
            PYTHONUNBUFFERED="1",
        )
        argv = [sys.executable, "-m", "mlflow", "server", "--app-name", "envguard"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        argv += ["--backend-store-uri", f"sqlite:///{self.database}"]
        argv += ["--artifacts-destination", str(self.folder / "artifacts")]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.folder,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops the server
            )

    def ready(self, timeout: float) -> None:
        """Wait until the server answers (polling with a deadline), then create the users.
        Raises RuntimeError with the end of the server's log if it exits or does not answer."""
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not answer in {timeout:.0f} s\n{self._tail()}"
                )
            time.sleep(0.2)
        for user, password in self.passwords.items():
            self._post(
                "/api/2.0/mlflow/users/create",
                {"username": user, "password": password},
                ("admin", self.admin_password),
            )

    def credentials(self, user: str) -> dict[str, str]:
        """MLflow's own client variables for acting as ``user``."""
        return {
            "MLFLOW_TRACKING_URI": self.url,
            "MLFLOW_TRACKING_USERNAME": user,
            "MLFLOW_TRACKING_PASSWORD": self.passwords[user],
        }

    def stop(self) -> None:
        """Stop the server and every process it started (uvicorn, MLflow's job runners): its
        whole process group, which ``start_new_session`` made its own."""
        if self.proc is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait()
        self._signal(signal.SIGKILL)  # anything of the group that outlived its parent

    def _signal(self, number: int) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, number)

    def _healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited early\n{self._tail()}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:  # noqa: S310 - the server started above
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _post(self, path: str, body: dict[str, str], auth: tuple[str, str]) -> None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - the server started above
            f"{self.url}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
            if answer.status != 200:
                raise RuntimeError(f"{path} answered {answer.status}")

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""
