"""envguard's MLflow integration (extra ``mlflow``).

Registered through the ``envguard`` entry-point group like any third-party plugin. This module
stays light: MLflow itself is imported only inside the functions that use it, so that
``envguard --help`` and ``import envguard`` never pay for it.
"""

from __future__ import annotations

import os

from envguard import hookimpl
from envguard.policy import Policy

__all__ = ["envguard_detect_environment"]


@hookimpl
def envguard_detect_environment(policy: Policy) -> str | None:
    """A process whose ``MLFLOW_TRACKING_URI`` the policy assigns to an environment runs there."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return policy.env_for_mlflow_uri(uri) if uri else None
