"""What a test may not reach: the production-tier resources a policy lists, and the audit hook
(PEP 578) that stops a test reaching them.

The hook sees every name lookup (``socket.getaddrinfo``), connection (``socket.connect``),
SQLite database opened (``sqlite3.connect``) and file opened (``open``) in the process; a
SQLAlchemy listener (``do_connect``) sees the connections of drivers such as psycopg, which
connect in C where audit hooks do not see them. While a test runs, one that names a
production resource raises :class:`BoundaryCrossing`. Python's audit hooks cannot be removed,
so the hook is installed once and does nothing (one attribute read) when no test is running.
S3 is guarded through botocore's event system by the S3 plugin instead, per bucket and prefix.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from envguard.errors import EnvGuardError

if TYPE_CHECKING:
    from envguard.policy import Policy

__all__ = ["Boundary", "BoundaryCrossing", "Crossing"]

_DEFAULT_PORTS = {
    "http": 80,
    "https": 443,
    "postgresql": 5432,
    "postgres": 5432,
    "mysql": 3306,
    "mssql": 1433,
    "redis": 6379,
    "mongodb": 27017,
}


class BoundaryCrossing(EnvGuardError):
    """A test tried to reach a production-tier resource."""

    exit_code = 1

    def __init__(self, resource: str, rule: str, env: str, target_env: str) -> None:
        self.resource = resource
        self.rule = rule
        super().__init__(
            f"envguard: this test runs in {env!r} (non-production) and tried to reach "
            f"{resource}, which the policy assigns to production environment {target_env!r} "
            f"(rule {rule}). Use a {env!r} resource, or a fixture, instead."
        )


@dataclass(frozen=True)
class Crossing:
    test: str
    resource: str
    rule: str


@dataclass
class Boundary:
    """The production resources of a policy, and what was blocked."""

    env: str
    hosts: dict[tuple[str, int | None], tuple[str, str]] = field(default_factory=dict)
    paths: dict[str, tuple[str, str]] = field(default_factory=dict)
    crossings: list[Crossing] = field(default_factory=list)
    current_test: str | None = None

    @classmethod
    def from_policy(cls, policy: Policy, env: str) -> Boundary:
        boundary = cls(env)
        for name, spec in policy.spec.environments.items():
            if spec.tier != "prod":
                continue
            for field_name in (
                "mlflow_tracking_uris",
                "mlflow_registry_uris",
                "hosts",
                "dvc_remotes",
                "artifact_locations",
            ):
                for value in getattr(spec, field_name):
                    boundary._add(value, f"environments.{name}.{field_name}", name, policy)
        return boundary

    def _add(self, value: str, rule: str, env: str, policy: Policy) -> None:
        if "://" not in value:
            if value.startswith(("/", ".")):
                self.paths[str(policy.resolve_path(value).resolve())] = (rule, env)
            return  # a DVC remote name: guarded by the DVC plugin, not here
        parts = urlsplit(value)
        scheme = parts.scheme.split("+")[0].lower()
        if scheme in ("file", "sqlite"):
            path = parts.path if scheme == "file" else value.split(":///", 1)[-1]
            if path and path != ":memory:":
                self.paths[str(policy.resolve_path(path).resolve())] = (rule, env)
            return
        if parts.hostname:
            port = parts.port or _DEFAULT_PORTS.get(scheme)
            self.hosts[(parts.hostname.lower(), port)] = (rule, env)

    # -- the audit hook ------------------------------------------------------------------------
    def _host(self, host: Any, port: Any) -> tuple[str, str, str] | None:
        if not isinstance(host, str):
            return None
        name = host.lower().strip("[]")
        port_number = port if isinstance(port, int) else None
        for key in ((name, port_number), (name, None)):
            found = self.hosts.get(key)
            if found:
                shown = f"{name}:{port_number}" if port_number else name
                return shown, *found
        return None

    def _path(self, path: Any) -> tuple[str, str, str] | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str) or not self.paths:
            return None
        full = os.path.realpath(path)
        for root, found in self.paths.items():
            if full == root or full.startswith(root + os.sep):
                return full, *found
        return None

    def check(self, event: str, args: tuple[Any, ...]) -> None:
        hit = None
        if event == "socket.getaddrinfo":
            hit = self._host(args[0], args[1])
        elif event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple) and len(address) >= 2:
                hit = self._host(address[0], address[1])
        elif event in {"sqlite3.connect", "open"}:
            hit = self._path(args[0])
        if hit is not None:
            resource, rule, target = hit
            self.crossings.append(Crossing(self.current_test or "?", resource, rule))
            raise BoundaryCrossing(resource, rule, self.env, target)


def _sqlalchemy_connect(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
    """SQLAlchemy's ``do_connect`` event, for drivers that connect in C (libpq, mysqlclient),
    which Python's audit hooks do not see."""
    boundary = _active
    if boundary is None or boundary.current_test is None:
        return
    host = cparams.get("host") if isinstance(cparams, dict) else None
    if host:
        port = cparams.get("port")
        boundary.check(
            "socket.connect",
            (None, (str(host), int(port) if port else _DEFAULT_PORTS.get(dialect.name))),
        )
    elif cargs:
        boundary.check("sqlite3.connect", (cargs[0],))


def _watch_sqlalchemy() -> None:
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except ImportError:
        return
    if not event.contains(Engine, "do_connect", _sqlalchemy_connect):
        event.listen(Engine, "do_connect", _sqlalchemy_connect)


_active: Boundary | None = None
_installed = False
_EVENTS = frozenset({"socket.getaddrinfo", "socket.connect", "sqlite3.connect", "open"})


def _audit(event: str, args: tuple[Any, ...]) -> None:
    boundary = _active
    if boundary is None or boundary.current_test is None or event not in _EVENTS:
        return
    boundary.check(event, args)


def activate(boundary: Boundary | None) -> None:
    """Guard with ``boundary`` from now on (None: guard nothing)."""
    global _active, _installed  # noqa: PLW0603 - the audit hook is process-wide by nature
    _active = boundary
    if boundary is not None and not _installed:
        sys.addaudithook(_audit)
        _watch_sqlalchemy()
        _installed = True
