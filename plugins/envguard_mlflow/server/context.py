"""The server's view of envguard: its runtime, MLflow's stores, and the environment it serves."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from envguard.lineage.events import EventDraft, Link

if TYPE_CHECKING:
    from envguard.lineage.sql import SqlLineageStore
    from envguard.policy import Policy
    from envguard.runtime import Runtime
    from envguard_mlflow.server.versions import VersionBinding

__all__ = [
    "ACTOR_TAG",
    "DATASET_DIGEST_TAG",
    "ENV_TAG",
    "EVALUATES_TAG",
    "PROMPT_TAG",
    "SERVER_ENV_VAR",
    "TIER_TAG",
    "ServerContext",
    "bound_environment",
    "is_prompt",
    "record_event",
]

ENV_TAG = "envguard.env"
TIER_TAG = "envguard.tier"
ACTOR_TAG = "envguard.actor"
POLICY_TAG = "envguard.policy_sha256"
DATASET_DIGEST_TAG = "envguard.sha256"
EVALUATES_TAG = "envguard.evaluates"
PROMPT_TAG = "mlflow.prompt.is_prompt"
#: The environment this server's tracking store belongs to, when it serves only one.
SERVER_ENV_VAR = "ENVGUARD_SERVER_ENV"


def bound_environment(policy: Policy, environ: Mapping[str, str]) -> str | None:
    """The one environment this server serves: ``ENVGUARD_SERVER_ENV``, else the environment
    the policy assigns to ``MLFLOW_TRACKING_URI`` (the server's public URL); None for a shared
    registry that serves several environments through aliases."""
    named = environ.get(SERVER_ENV_VAR, "").strip()
    if named:
        policy.environment(named, SERVER_ENV_VAR)
        return named
    uri = environ.get("MLFLOW_TRACKING_URI", "").strip()
    return policy.env_for_mlflow_uri(uri) if uri else None


@dataclass
class ServerContext:
    """What every gate of the server asks: the policy, the lineage store, MLflow's stores."""

    runtime: Runtime
    bound_env: str | None
    #: The server signs approvals with its key for the users it authenticated.
    personal_approvals: ClassVar[bool] = False

    @classmethod
    def load(cls, runtime: Runtime, environ: Mapping[str, str] | None = None) -> ServerContext:
        """Load the policy and open the lineage store now; raise if either fails."""
        environ = os.environ if environ is None else environ
        policy = runtime.policy
        runtime.store.open()
        from envguard.keys import signing_key

        signing_key(policy, runtime.environ)
        return cls(runtime, bound_environment(policy, environ))

    @property
    def policy(self) -> Policy:
        return self.runtime.policy

    @property
    def store(self) -> SqlLineageStore:
        return self.runtime.store

    def tracking_store(self) -> Any:
        from mlflow.server.handlers import _get_tracking_store

        return _get_tracking_store()

    def registry_store(self) -> Any:
        from mlflow.server.handlers import _get_model_registry_store

        return _get_model_registry_store()

    def bind(self, name: str, version: str) -> VersionBinding:
        """The version's binding, its files read as this server serves them."""
        from envguard_mlflow.server.versions import bind_version

        return bind_version(self.registry_store(), name, version)

    def is_prompt(self, name: str, version: str | None = None) -> bool:
        return is_prompt(self.registry_store(), name, version)

    def record(
        self,
        kind: str,
        *,
        actor: str,
        environment: str | None,
        entities: Sequence[str] = (),
        links: Sequence[Link] = (),
        payload: Mapping[str, Any] | None = None,
        required: bool = True,
    ) -> None:
        """Chain one event; with ``required`` a failure raises :class:`StoreError`."""
        record_event(
            self.runtime,
            kind,
            actor=actor,
            environment=environment or self.bound_env or "",
            entities=entities,
            links=links,
            payload=payload,
            required=required,
        )


def is_prompt(registry: Any, name: str, version: str | None = None) -> bool:
    """Prompts share the registry's alias routes; MLflow marks the registered model or the
    version with the tag ``mlflow.prompt.is_prompt = true``."""
    entities = [registry.get_registered_model(name)]
    if version:
        entities.append(registry.get_model_version(name, version))
    return any(str((e.tags or {}).get(PROMPT_TAG, "")).lower() == "true" for e in entities)


def record_event(
    runtime: Runtime,
    kind: str,
    *,
    actor: str,
    environment: str,
    entities: Sequence[str] = (),
    links: Sequence[Link] = (),
    payload: Mapping[str, Any] | None = None,
    required: bool = True,
) -> None:
    """Chain one event of a registry gate (a server's or a local registry's) under the policy."""
    draft = EventDraft(
        kind,
        entities=entities,
        links=links,
        payload=dict(payload or {}),
        actor=actor,
        environment=environment,
        policy_sha256=runtime.policy.sha256,
    )
    runtime.store.append(draft, required=required)
