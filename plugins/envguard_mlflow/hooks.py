"""envguard hooks of the MLflow plugin (entry point ``envguard: mlflow``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from envguard import hookimpl

if TYPE_CHECKING:
    from envguard.policy import Policy

__all__ = ["envguard_detect_environment"]


@hookimpl
def envguard_detect_environment(policy: Policy) -> str | None:
    """A process whose ``MLFLOW_TRACKING_URI`` the policy assigns to an environment runs there."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return policy.env_for_mlflow_uri(uri) if uri else None
