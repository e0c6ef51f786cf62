"""A model version's binding: its source run and the sha256 of every file it serves.

Approvals and promotions are bound to it, so that re-registering different weights under the
same version number, or overwriting the files afterwards, is caught: the binding no longer
matches. Files are read through MLflow's own artifact repository, as the server serves them.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envguard.digests import sha256_file as file_sha256
from envguard.lineage.events import canonical_json

__all__ = ["VersionBinding", "bind_version", "download_uri", "storage_path", "version_uri"]


def version_uri(name: str, version: str | int) -> str:
    return f"models:/{name}/{version}"


@dataclass(frozen=True)
class VersionBinding:
    """What an approval of one model version is bound to."""

    model_version: str
    run_id: str
    source: str
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256

    @property
    def files_sha256(self) -> str:
        """One digest over every file's path and digest (canonical JSON, sorted)."""
        return hashlib.sha256(canonical_json(self.files).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "run_id": self.run_id,
            "source": self.source,
            "files_sha256": self.files_sha256,
            "files": dict(self.files),
        }


def _proxied(uri: str) -> bool:
    """True when ``uri`` names files this server stores in its ``--artifacts-destination``."""
    import os
    import urllib.parse

    from mlflow.server.constants import ARTIFACTS_DESTINATION_ENV_VAR

    scheme = urllib.parse.urlparse(uri).scheme
    return scheme in {"http", "https", "mlflow-artifacts"} and bool(
        os.environ.get(ARTIFACTS_DESTINATION_ENV_VAR)
    )


def _repository(download_uri: str) -> tuple[Any, str]:
    """MLflow's artifact repository for a version's files, and the path inside it."""
    from mlflow.server import handlers

    if _proxied(download_uri):
        repo = handlers._get_artifact_repo_mlflow_artifacts()
        return repo, handlers._get_proxied_run_artifact_destination_path(download_uri)
    return handlers._get_artifact_repository_for_uri(download_uri), ""


def download_uri(
    registry_store: Any, name: str, version: str, tracking_store: Any | None = None
) -> str:
    """Where the version's files are: ``runs:/`` and ``models:/`` sources resolved to the
    run's or logged model's artifact location, as the tracking store knows them (the server's
    own, unless ``tracking_store`` is given)."""
    uri = str(registry_store.get_model_version_download_uri(name, version))
    if not uri.startswith(("runs:/", "models:/m-")):
        return uri
    if tracking_store is None:
        from mlflow.server.handlers import _get_tracking_store

        tracking_store = _get_tracking_store()
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/") :].partition("/")
        root = str(tracking_store.get_run(run_id).info.artifact_uri).rstrip("/")
        return f"{root}/{path}" if path else root
    model_id = uri[len("models:/") :].split("/", 1)[0]
    return str(tracking_store.get_logged_model(model_id).artifact_location)


def storage_path(registry_store: Any, name: str, version: str) -> str | None:
    """Where the version's files live inside the server's artifact destination (proxied
    artifacts), or None when the server does not serve them itself."""
    from mlflow.server import handlers

    uri = download_uri(registry_store, name, version)
    if _proxied(uri):
        return str(handlers._get_proxied_run_artifact_destination_path(uri)).strip("/")
    return None


def bind_version(
    registry_store: Any, name: str, version: str, tracking_store: Any | None = None
) -> VersionBinding:
    """Read every file of the version and bind to it (raises MLflow's errors as they come).
    On a server, the files are read as the server serves them; with ``tracking_store`` (a
    local registry, no server), through MLflow's artifact repository for their URI."""
    mv = registry_store.get_model_version(name, version)
    uri = download_uri(registry_store, name, version, tracking_store)
    if tracking_store is None:
        repo, path = _repository(uri)
    else:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo, path = get_artifact_repository(uri), ""
    local_dir = getattr(repo, "artifact_dir", None)  # a local folder: read in place, no copy
    if local_dir is not None and type(repo).__name__ == "LocalArtifactRepository":
        here = Path(local_dir, path) if path else Path(local_dir)
        if not here.exists():
            raise FileNotFoundError(f"no files at {here}")
        return VersionBinding(
            version_uri(name, version), mv.run_id or "", mv.source or "", _digests(here)
        )
    with tempfile.TemporaryDirectory(prefix="envguard-bind-") as tmp:
        files = _digests(Path(repo.download_artifacts(path, tmp)))
    return VersionBinding(version_uri(name, version), mv.run_id or "", mv.source or "", files)


def _digests(local: Path) -> dict[str, str]:
    root = local if local.is_dir() else local.parent
    items = sorted(root.rglob("*")) if local.is_dir() else [local]
    return {
        item.relative_to(root).as_posix(): file_sha256(item) for item in items if item.is_file()
    }
