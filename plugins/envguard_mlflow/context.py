"""The ``mlflow.run_context_provider`` entry point: envguard's tags on runs that the fluent API
starts (``mlflow.start_run``, autologging).

The guarded tracking store adds the same tags on every run however it is created, because
``MlflowClient.create_run`` consults no provider; the provider covers stores envguard does not
wrap (a Databricks or third-party scheme), so that those runs still say where they ran.
"""

from __future__ import annotations

from mlflow.tracking.context.abstract_context import RunContextProvider

__all__ = ["EnvguardRunContext"]


class EnvguardRunContext(RunContextProvider):
    def in_context(self) -> bool:
        return True

    def tags(self) -> dict[str, str]:
        from envguard_mlflow.facts import current_facts

        facts = current_facts()
        return dict(facts.tags) if facts is not None else {}
