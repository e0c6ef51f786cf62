"""The guarded model-registry store: MLflow's own registry store, of a subclass that checks.

Client side, a process may not write ``envguard.*`` tags on registered models or model versions
(the server-side gate enforces the same for every client). A model version created here gets
``envguard.created_in`` (this process's environment) and ``envguard.model_id``: the OSS registry
does not persist ``ModelVersion.model_id``, so the LoggedModel id is kept as a tag, taken from the
``model_id`` argument or else from a ``models:/m-...`` source.
"""

from __future__ import annotations

from typing import Any

from envguard_mlflow import guards
from envguard_mlflow.guarded_store import GuardedStore, guard_store

__all__ = ["GuardedRegistryStore", "guard_registry_store", "model_id_from_source"]


def guard_registry_store(store: Any, uri: str) -> Any:
    """Give ``store`` (built by MLflow) the guarded subclass of its own class."""
    return guard_store(store, uri, GuardedRegistryStore)


def model_id_from_source(source: str) -> str | None:
    """``models:/m-abc`` (a LoggedModel's URI) -> ``m-abc``; a registry URI -> None."""
    if not source.startswith("models:/"):
        return None
    rest = source[len("models:/") :].strip("/")
    return rest if rest.startswith("m-") and "/" not in rest else None


class GuardedRegistryStore(GuardedStore):
    """Mixed in before a concrete MLflow registry store class; see the module's docstring."""

    _envguard_kind = "registry"

    def create_registered_model(
        self, name: Any, tags: Any = None, description: Any = None, deployment_job_id: Any = None
    ) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            pairs = ((t.key, t.value) for t in tags or ())
            guards.check_tags(facts, pairs, {}, f"registered model {name}")
        return super().create_registered_model(name, tags, description, deployment_job_id)

    def set_registered_model_tag(self, name: Any, tag: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            guards.check_tags(facts, [(tag.key, tag.value)], {}, f"registered model {name}")
        return super().set_registered_model_tag(name, tag)

    def delete_registered_model_tag(self, name: Any, key: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            guards.refuse_tag_delete(facts, str(key), f"registered model {name}")
        return super().delete_registered_model_tag(name, key)

    def create_model_version(
        self,
        name: Any,
        source: Any,
        run_id: Any = None,
        tags: Any = None,
        run_link: Any = None,
        description: Any = None,
        local_model_path: Any = None,
        model_id: Any = None,
    ) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            from mlflow.entities.model_registry import ModelVersionTag

            given = list(tags or ())
            guards.check_tags(
                facts, ((t.key, t.value) for t in given), {}, f"new version of {name}"
            )
            created_in = facts.environment.name
            given.append(ModelVersionTag("envguard.created_in", created_in))  # type: ignore[no-untyped-call]
            logged = model_id or model_id_from_source(str(source))
            if logged:
                given.append(ModelVersionTag("envguard.model_id", str(logged)))  # type: ignore[no-untyped-call]
            tags = given
        return super().create_model_version(
            name, source, run_id, tags, run_link, description, local_model_path, model_id
        )

    def set_model_version_tag(self, name: Any, version: Any, tag: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            subject = f"models:/{name}/{version}"
            guards.check_tags(facts, [(tag.key, tag.value)], {}, subject)
        return super().set_model_version_tag(name, version, tag)

    def delete_model_version_tag(self, name: Any, version: Any, key: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            guards.refuse_tag_delete(facts, str(key), f"models:/{name}/{version}")
        return super().delete_model_version_tag(name, version, key)
