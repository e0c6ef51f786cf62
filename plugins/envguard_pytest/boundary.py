"""What a test may not reach: the production-tier resources a policy lists, and the audit hook
(PEP 578) that stops a test reaching them.

The hook sees every name lookup (``socket.getaddrinfo``), connection (``socket.connect``),
SQLite database opened (``sqlite3.connect``) and file opened (``open``) in the process; a
SQLAlchemy listener (``do_connect``) sees the connections of drivers such as psycopg, which
connect in C where audit hooks do not see them. While a test runs, one that names a
production resource raises :class:`BoundaryCrossing`. Python's audit hooks cannot be removed,
so the hook is installed once and does nothing (one attribute read) when no test is running.
S3 is guarded through botocore's event system by the S3 plugin instead, per bucket and prefix.

A DVC remote the policy names by name is resolved to its URL through the suite's DVC
configuration (:mod:`envguard_pytest.dvc_remotes`): a folder is guarded like any production path;
an S3 bucket and prefix by :func:`initialize_client_plugin`, a ``before-parameter-build.s3``
handler on every botocore and aiobotocore client (``BOTOCORE_EXPERIMENTAL__PLUGINS``), so that
boto3, s3fs and DVC itself (``dvc.api.open(..., remote=NAME)``) are stopped before the request
leaves. The error names the remote, its URL and the rule.
"""

from __future__ import annotations

import os
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from envguard.errors import EnvGuardError

if TYPE_CHECKING:
    from envguard.policy import Policy

__all__ = ["Boundary", "BoundaryCrossing", "Crossing", "S3Remote", "initialize_client_plugin"]

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


@dataclass(frozen=True)
class S3Remote:
    """A production DVC remote in S3: its bucket and key prefix (no trailing ``/``)."""

    bucket: str
    prefix: str
    rule: str
    env: str
    label: str  # "DVC remote 'NAME' (URL)"

    def touched_by(self, operation: str, params: dict[str, Any]) -> str | None:
        """The object or listing prefix of an S3 call inside this remote, or None. A call on
        the bucket itself counts when the remote is the whole bucket."""
        if params.get("Bucket") != self.bucket:
            return None
        root = f"{self.prefix}/" if self.prefix else ""
        key = params.get("Key")
        if isinstance(key, str):
            return key if key.startswith(root) else None
        if operation.startswith("List"):
            start = str(params.get("Prefix") or "")
            return start if root.startswith(start) or start.startswith(root) else None
        return "" if not root else None


@dataclass
class Boundary:
    """The production resources of a policy, and what was blocked."""

    env: str
    hosts: dict[tuple[str, int | None], tuple[str, str]] = field(default_factory=dict)
    # path -> (rule, environment, what it is when it is more than a path: a DVC remote)
    paths: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    s3: list[S3Remote] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)  # remote names no DVC config defines
    crossings: list[Crossing] = field(default_factory=list)
    current_test: str | None = None

    @classmethod
    def from_policy(cls, policy: Policy, env: str, start: Path | None = None) -> Boundary:
        """The production resources of ``policy``; DVC remotes named by name are resolved in
        the DVC repository at or above ``start`` (see :mod:`envguard_pytest.dvc_remotes`)."""
        boundary = cls(env)
        names: list[tuple[str, str, str]] = []  # remote name, rule, environment
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
                    rule = f"environments.{name}.{field_name}"
                    if field_name == "dvc_remotes" and _is_remote_name(value):
                        names.append((value, rule, name))
                    else:
                        boundary._add(value, rule, name, policy)
        if names:
            boundary._add_remotes(names, start or Path.cwd())
        return boundary

    def _add_remotes(self, names: list[tuple[str, str, str]], start: Path) -> None:
        from envguard_pytest.dvc_remotes import find_dvc_dir, remote_urls

        dvc_dir = find_dvc_dir(start.resolve())
        urls = remote_urls(dvc_dir) if dvc_dir is not None else {}
        for remote, rule, env in names:
            url = urls.get(remote)
            if url is None:
                self.unresolved.append(remote)
                continue
            label = f"DVC remote {remote!r} ({url})"
            parts = urlsplit(url)
            if parts.scheme.lower() in {"s3", "s3a", "s3n"}:
                prefix = parts.path.strip("/")
                self.s3.append(S3Remote(parts.netloc, prefix, rule, env, label))
            elif "://" not in url or parts.scheme.lower() == "file":
                path = parts.path if "://" in url else url
                self.paths[os.path.realpath(path)] = (rule, env, label)
            elif parts.hostname:  # http, ssh, ...: its host
                port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
                self.hosts[(parts.hostname.lower(), port)] = (rule, env)

    def _add(self, value: str, rule: str, env: str, policy: Policy) -> None:
        if "://" not in value:
            if value.startswith(("/", ".")):
                self.paths[str(policy.resolve_path(value).resolve())] = (rule, env, None)
            return
        parts = urlsplit(value)
        scheme = parts.scheme.split("+")[0].lower()
        if scheme in ("file", "sqlite"):
            path = parts.path if scheme == "file" else value.split(":///", 1)[-1]
            if path and path != ":memory:":
                self.paths[str(policy.resolve_path(path).resolve())] = (rule, env, None)
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
        for root, (rule, env, label) in self.paths.items():
            if full == root or full.startswith(root + os.sep):
                return (f"{full}, in {label}" if label else full), rule, env
        return None

    def check_s3(self, operation: str, params: dict[str, Any]) -> None:
        """Refuse an S3 call on a production DVC remote (raises :class:`BoundaryCrossing`)."""
        for remote in self.s3:
            touched = remote.touched_by(operation, params)
            if touched is not None:
                resource = f"s3://{remote.bucket}/{touched} ({operation}), in {remote.label}"
                self.crossings.append(Crossing(self.current_test or "?", resource, remote.rule))
                raise BoundaryCrossing(resource, remote.rule, self.env, remote.env)

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


def _is_remote_name(value: str) -> bool:
    return "://" not in value and not value.startswith(("/", "."))


_S3_HANDLER_ID = "envguard-pytest-dvc-remotes"


def initialize_client_plugin(client: Any) -> None:
    """botocore's plugin entry (``BOTOCORE_EXPERIMENTAL__PLUGINS=...=envguard_pytest.boundary``,
    set by the pytest plugin when a production DVC remote is in S3): guards an S3 client."""
    if client.meta.service_model.service_name != "s3":
        return
    ref = weakref.ref(client)

    def handler(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        boundary = _active
        if boundary is not None and boundary.current_test is not None and ref() is not None:
            boundary.check_s3(model.name, params)

    client.meta.events.register("before-parameter-build.s3", handler, unique_id=_S3_HANDLER_ID)


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
