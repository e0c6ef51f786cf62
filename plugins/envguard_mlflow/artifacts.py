"""Artifact repositories registered with MLflow's ``mlflow.artifact_repository`` entry points.

For remote artifact locations (``mlflow-artifacts:`` on a tracking server, ``s3://``) each file
is hashed (sha256) from the local copy as it is uploaded, and a ``mlflow.artifact`` record is
spooled for the lineage store; an ``s3://`` location the policy gives to an environment of another
tier is refused when the repository is created, before anything is uploaded. Local artifact
locations (a ``sqlite`` store's ``./mlruns``) have no scheme that an entry point could name: the
guarded tracking store records those when the run or logged model is finalized instead
(:func:`~envguard_mlflow.tracking_store.record_local_artifacts`).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

__all__ = ["GuardedMlflowArtifactsRepository", "GuardedS3ArtifactRepository"]

_walking = threading.local()


def _record(artifact_uri: str, local_file: str, artifact_path: str | None) -> None:
    from envguard_mlflow.facts import current_facts

    facts = current_facts()
    if facts is None:
        return
    from envguard_mlflow import guards
    from envguard_mlflow.datasets import file_sha256

    name = os.path.basename(local_file)
    guards.record_artifact(
        facts,
        artifact_uri=artifact_uri,
        path=f"{artifact_path}/{name}" if artifact_path else name,
        size=os.path.getsize(local_file),
        sha256=file_sha256(local_file),
    )


class _Recording:
    """Mixed in before an MLflow artifact repository: record each uploaded file once."""

    artifact_uri: str

    def _envguard_check(self) -> None:
        from envguard_mlflow.facts import current_facts

        facts = current_facts()
        if facts is not None:
            from envguard_mlflow import guards

            guards.check_location(facts, self.artifact_uri, "artifact")

    def log_artifact(self, local_file: str, artifact_path: str | None = None) -> Any:
        if not getattr(_walking, "active", False):
            _record(self.artifact_uri, local_file, artifact_path)
        return super().log_artifact(local_file, artifact_path)  # type: ignore[misc]

    def log_artifacts(self, local_dir: str, artifact_path: str | None = None) -> Any:
        base = os.path.abspath(local_dir)
        for folder, _dirs, files in os.walk(base):
            rel = os.path.relpath(folder, base).replace(os.sep, "/")
            sub = "/".join(p for p in (artifact_path, "" if rel == "." else rel) if p) or None
            for name in files:
                _record(self.artifact_uri, os.path.join(folder, name), sub)
        _walking.active = True
        try:
            return super().log_artifacts(local_dir, artifact_path)  # type: ignore[misc]
        finally:
            _walking.active = False


class GuardedMlflowArtifactsRepository(_Recording, MlflowArtifactsRepository):
    """``mlflow-artifacts:`` (a tracking server's proxied artifacts), recording uploads."""

    def __init__(self, artifact_uri: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(artifact_uri, *args, **kwargs)
        self._envguard_check()


class GuardedS3ArtifactRepository(_Recording, S3ArtifactRepository):
    """``s3://``, recording uploads and refusing a bucket of another tier."""

    def __init__(self, artifact_uri: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(artifact_uri, *args, **kwargs)
        self._envguard_check()
