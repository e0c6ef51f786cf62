"""envguard's MLflow integration (extra ``mlflow``).

Registered through the ``envguard`` entry-point group like any third-party plugin, and with MLflow
through MLflow's own entry points (``pyproject.toml``):

- ``mlflow.run_context_provider``: :mod:`envguard_mlflow.context` (tags on fluent runs);
- ``mlflow.tracking_store`` and ``mlflow.model_registry_store``, one per scheme MLflow serves
  (``http``, ``https``, ``sqlite``, ``postgresql``, ``mysql``, ``mssql``, ``file``):
  :mod:`envguard_mlflow.stores` wraps MLflow's own store for that scheme;
- ``mlflow.artifact_repository`` for ``mlflow-artifacts`` and ``s3``:
  :mod:`envguard_mlflow.artifacts`.

envguard's own hooks are in :mod:`envguard_mlflow.hooks`. This package's ``__init__`` imports
nothing, because MLflow loads the modules above while ``import mlflow`` runs: whatever they import
is paid by every MLflow user of the environment (``nox -s bench`` measures it).
"""
