"""envguard hooks of the MLflow plugin (entry point ``envguard: mlflow``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from envguard import hookimpl

if TYPE_CHECKING:
    from envguard.policy import Policy
    from envguard.scan import Finding, ScanProgress

__all__ = ["envguard_detect_environment", "envguard_scan"]


@hookimpl
def envguard_detect_environment(policy: Policy) -> str | None:
    """A process whose ``MLFLOW_TRACKING_URI`` the policy assigns to an environment runs there."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return policy.env_for_mlflow_uri(uri) if uri else None


@hookimpl
def envguard_scan(policy: Policy, store: Any, progress: ScanProgress) -> list[Finding]:
    """Sweep the policy's MLflow registries and tracking servers (:mod:`envguard_mlflow.scan`)."""
    from envguard_mlflow.scan import sweep

    return sweep(policy, store, progress)
