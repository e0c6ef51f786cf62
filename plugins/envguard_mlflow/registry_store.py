"""The guarded model-registry store: MLflow's own registry store, of a subclass that checks.

Client side, a process may not write ``envguard.*`` tags on registered models or model versions
(the server-side gate enforces the same for every client). A model version created here gets
``envguard.created_in`` (this process's environment) and ``envguard.model_id``: the OSS registry
does not persist ``ModelVersion.model_id``, so the LoggedModel id is kept as a tag, taken from the
``model_id`` argument or else from a ``models:/m-...`` source.

On a local registry (a database URL or a folder: no server decides for it), setting an alias
or a stage the policy maps to an environment is a promotion, and deleting such an alias changes
what the environment serves: both are decided here by the server's promotion rules
(:mod:`envguard_mlflow.local_registry`), and refused with :class:`~envguard.errors.Denied`
(``EnvGuardDenied``) listing every reason. Against a server, the server decides.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envguard_mlflow import guards
from envguard_mlflow.guarded_store import GuardedStore, guard_store

if TYPE_CHECKING:
    from envguard_mlflow.facts import ProcessFacts
    from envguard_mlflow.local_registry import LocalRegistryContext

__all__ = ["GuardedRegistryStore", "guard_registry_store", "model_id_from_source"]


def guard_registry_store(store: Any, uri: str, tracking_uri: str | None = None) -> Any:
    """Give ``store`` (built by MLflow) the guarded subclass of its own class."""
    guarded = guard_store(store, uri, GuardedRegistryStore)
    guarded._envguard_tracking_uri = tracking_uri
    return guarded


def model_id_from_source(source: str) -> str | None:
    """``models:/m-abc`` (a LoggedModel's URI) -> ``m-abc``; a registry URI -> None."""
    if not source.startswith("models:/"):
        return None
    rest = source[len("models:/") :].strip("/")
    return rest if rest.startswith("m-") and "/" not in rest else None


class GuardedRegistryStore(GuardedStore):
    """Mixed in before a concrete MLflow registry store class; see the module's docstring."""

    _envguard_kind = "registry"
    _envguard_tracking_uri: str | None

    def _envguard_facts(self) -> ProcessFacts | None:
        facts = super()._envguard_facts()
        if facts is not None:
            from envguard_mlflow.observations import flush_all

            flush_all()  # the runs' waiting records reach the store before the registry acts
        return facts

    # -- promotions on a local registry ---------------------------------------------------------
    def _envguard_local(self, facts: ProcessFacts) -> LocalRegistryContext | None:
        """The promotion gate's context, when this store is a local registry (else None: a
        server decides)."""
        from envguard_mlflow.local_registry import LocalRegistryContext, is_local_registry

        if not is_local_registry(self._envguard_uri):
            return None
        import mlflow

        tracking = self._envguard_tracking_uri or mlflow.get_tracking_uri()
        return LocalRegistryContext(facts.runtime, self, tracking)

    def _envguard_promote(
        self,
        facts: ProcessFacts,
        ctx: LocalRegistryContext,
        name: Any,
        version: Any,
        env: str,
        move: str,
    ) -> None:
        from envguard_mlflow.facts import apply_decision
        from envguard_mlflow.server.promotion import PromotionGate

        gate = PromotionGate(ctx)
        decision = gate.decide_and_record(str(name), str(version), env, facts.runtime.actor, move)
        apply_decision(decision, facts)

    def set_registered_model_alias(self, name: Any, alias: Any, version: Any) -> Any:
        facts = self._envguard_facts()
        ctx = self._envguard_local(facts) if facts is not None else None
        env = facts.policy.env_for_alias(str(alias)) if facts is not None else None
        if facts and ctx and env and not ctx.is_prompt(str(name), str(version)):
            self._envguard_promote(facts, ctx, name, version, env, f"alias @{alias}")
        return super().set_registered_model_alias(name, alias, version)

    def transition_model_version_stage(
        self, name: Any, version: Any, stage: Any, archive_existing_versions: Any
    ) -> Any:
        facts = self._envguard_facts()
        ctx = self._envguard_local(facts) if facts is not None else None
        env = facts.policy.env_for_stage(str(stage)) if facts is not None else None
        if facts and ctx and env:
            self._envguard_promote(facts, ctx, name, version, env, f"stage {stage}")
        return super().transition_model_version_stage(
            name, version, stage, archive_existing_versions
        )

    def delete_registered_model_alias(self, name: Any, alias: Any) -> Any:
        facts = self._envguard_facts()
        env = facts.policy.env_for_alias(str(alias)) if facts is not None else None
        ctx = self._envguard_local(facts) if facts is not None and env else None
        if facts is not None and ctx is not None and not ctx.is_prompt(str(name)):
            from envguard.decisions import Reason, conclude
            from envguard_mlflow.facts import apply_decision

            reason = Reason(
                "protected-alias",
                f"alias @{alias} puts a version of {name!r} into environment {env!r}; deleting "
                f"it would change what {env!r} serves without a promotion",
                f"promote the version {env!r} should serve instead: "
                f"envguard promote models:/{name}/VERSION --to {alias}",
                guideline=10,
            )
            subject = f"models:/{name}@{alias}"
            decision = conclude("registry-write", subject, [reason], facts.policy, env)
            ctx.record(
                "violation.found",
                actor=facts.runtime.actor,
                environment=env,
                entities=[subject],
                payload={"decision": decision.to_dict()},
                required=False,
            )
            apply_decision(decision, facts)
        return super().delete_registered_model_alias(name, alias)

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
