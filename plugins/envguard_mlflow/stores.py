"""Store builders registered with MLflow's ``mlflow.tracking_store`` and
``mlflow.model_registry_store`` entry-point groups, one entry point per URI scheme.

envguard registers builders for the schemes MLflow itself serves (``http``, ``https``,
``sqlite``, ``postgresql``, ``mysql``, ``mssql``, ``file``): MLflow registers entry points after
its own builders, so these take their place, and the user's ``MLFLOW_TRACKING_URI`` stays what it
was. Each builder first calls MLflow's own builder for that scheme, so the store is exactly the one
plain MLflow would use; then, unless envguard is off in this process (``ENVGUARD_DISABLE=1``, an
``mlflow server`` worker, or no envguard configuration), it checks the URI against the policy (an
environment crossing raises :class:`~envguard.errors.Denied` at the first call) and returns the
store as its guarded subclass. The ``envguard+SCHEME`` forms (``envguard+sqlite:///mlflow.db``) are
registered too: they name the same stores, and fail loudly in MLflow when envguard's plugin is not
installed, for platforms that want a missing guard to stop the run rather than warn.
"""

from __future__ import annotations

from typing import Any

from mlflow.tracking._tracking_service import utils as tracking_utils

__all__ = ["build_registry_store", "build_tracking_store"]

_SQL = ("sqlite", "postgresql", "mysql", "mssql")


def _tracking_builder(scheme: str) -> Any:
    if scheme in ("http", "https"):
        return tracking_utils._get_rest_store
    if scheme in _SQL:
        return tracking_utils._get_sqlalchemy_store
    return tracking_utils._get_file_store


def _registry_builder(scheme: str) -> Any:
    from mlflow.tracking._model_registry import utils as registry_utils

    if scheme in ("http", "https"):
        return registry_utils._get_rest_store
    if scheme in _SQL:
        return registry_utils._get_sqlalchemy_store
    return registry_utils._get_file_store


def _scheme(uri: str) -> str:
    """The scheme MLflow dispatches on: a database URL's driver part goes (``postgresql+psycopg``
    is ``postgresql``), as in MLflow's own ``get_uri_scheme``."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    base = scheme.split("+", 1)[0]
    return base if base in _SQL else scheme


def build_tracking_store(store_uri: str, artifact_uri: str | None = None) -> Any:
    """MLflow's tracking store for ``store_uri``, guarded unless envguard is off here."""
    from envguard_mlflow.facts import current_facts

    facts = current_facts()  # before MLflow's builder, which may create a database
    if facts is not None:
        from envguard_mlflow import guards

        guards.check_location(facts, store_uri, "tracking")
    store = _tracking_builder(_scheme(store_uri))(store_uri=store_uri, artifact_uri=artifact_uri)
    if facts is None:
        return store
    from envguard_mlflow.tracking_store import guard_tracking_store

    return guard_tracking_store(store, store_uri)


def build_registry_store(store_uri: str, tracking_uri: str | None = None) -> Any:
    """MLflow's model-registry store for ``store_uri``, guarded unless envguard is off here."""
    from envguard_mlflow.facts import current_facts

    facts = current_facts()  # before MLflow's builder, which may create a database
    if facts is not None:
        from envguard_mlflow import guards

        guards.check_location(facts, store_uri, "registry")
    builder = _registry_builder(_scheme(store_uri))
    if _scheme(store_uri) in _SQL:
        store = builder(store_uri=store_uri)  # MLflow's SQL registry builder takes no tracking URI
    else:
        store = builder(store_uri=store_uri, tracking_uri=tracking_uri)
    if facts is None:
        return store
    from envguard_mlflow.registry_store import guard_registry_store

    return guard_registry_store(store, store_uri, tracking_uri)
