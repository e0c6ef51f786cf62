"""envguard's MLflow server: ``mlflow server --app-name envguard`` (or ``envguard server``).

The gate that cannot be skipped: an app factory (entry point ``envguard`` of MLflow's group
``mlflow.app``) that builds on MLflow's basic-auth app, so that the authenticated user is the
actor, and refuses every registry request that would put a model version into an environment
without what the policy asks for.

==================  =============================================================
module              what it holds
==================  =============================================================
``app``             the factory: loads the policy, opens the lineage store (fail closed)
``context``         the server's view: runtime, MLflow stores, the bound environment
``versions``        a model version's binding: source run and sha256 of every file
``approvals``       signed approvals chained in the lineage log
``promotion``       facts of a promotion gathered from MLflow and the lineage store
``routes``          every route MLflow serves, classified; unknown registry writes deny
``registry_checks`` envguard.* tags, protected versions, bound models, artifacts, GraphQL
``api``             envguard's routes: approvals, revocations, promotion checks
``flask_gate``      Flask ``before_request`` (after auth's) and ``after_request``
``asgi_gate``       the same for routes FastAPI serves itself (artifact uploads)
``client``          the CLI's REST client; ``commands``: ``envguard server|approve|...``
==================  =============================================================

This package imports MLflow only inside the functions that need it: the CLI plugin
(:mod:`envguard_mlflow.server.commands`) is loaded by every ``envguard`` command.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app() -> Any:
    """The app ``mlflow server --app-name envguard`` serves; raises if it cannot guard."""
    from envguard_mlflow.server.app import build_app

    return build_app()
