"""A promotion, evaluated by the server: facts from MLflow and the lineage store, the core's
:func:`~envguard.decisions.decide_promotion`, and the record of both.

Facts, and where they come from:

* **creators** (never count as approvers under separation of duties): the user the server
  authenticated when it created the run and the version (``mlflow.run.created`` and
  ``mlflow.model_version.created`` events), the run's ``user_id``, its ``mlflow.user`` and
  ``envguard.actor`` tags, and the version's ``user_id``;
* **source environment**: where the version is now: the environment of one of its current
  aliases or its stage (one the target accepts, when there is such), else the environment it
  was trained in (the run's ``envguard.env`` tag);
* **lineage**: each dataset input of the run, by its input tag ``envguard.sha256``, resolved
  in the lineage store; a dataset without that tag is reported (``lineage-unknown``) unless the
  target's rule is ``lineage = "any"``;
* **evaluation evidence**: finished runs tagged ``envguard.evaluates = models:/NAME/VERSION``,
  by their ``envguard.env`` tag;
* **approvals**: :mod:`envguard_mlflow.server.approvals`, checked against the version's
  current binding (:mod:`envguard_mlflow.server.versions`).

A fact that cannot be gathered is a reason, never a silent allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from envguard.decisions import (
    DataLineage,
    Decision,
    PromotionRequest,
    Reason,
    conclude,
    decide_promotion,
)
from envguard.errors import StoreError
from envguard_mlflow.server.approvals import decision_approvals, read_approvals
from envguard_mlflow.server.context import (
    ACTOR_TAG,
    DATASET_DIGEST_TAG,
    ENV_TAG,
    EVALUATES_TAG,
)
from envguard_mlflow.server.versions import VersionBinding, version_uri

if TYPE_CHECKING:
    from collections.abc import Mapping

    from envguard.lineage.sql import SqlLineageStore
    from envguard.policy import Policy
    from envguard.runtime import Runtime

__all__ = ["Evaluation", "GateContext", "PromotionGate", "run_entity"]

RUN_CREATED = "mlflow.run.created"
VERSION_CREATED = "mlflow.model_version.created"
OVERRIDDEN = "promotion.overridden"


def run_entity(run_id: str) -> str:
    return f"run:{run_id}"


@dataclass(frozen=True)
class Evaluation:
    """A decision and the facts it was made on."""

    decision: Decision
    request: PromotionRequest
    binding: VersionBinding | None

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "decision": self.decision.to_dict(),
            "facts": {
                "source_env": r.source_env,
                "creators": sorted(r.creators),
                "approvals": [a.__dict__ for a in r.approvals],
                "lineage": [d.__dict__ for d in r.lineage],
                "evaluated_in": sorted(r.evaluated_in),
                "binding": self.binding.to_dict() if self.binding else None,
            },
        }


class GateContext(Protocol):
    """Where a gate gets its facts: the server's :class:`~.context.ServerContext`, or a local
    registry's (:mod:`envguard_mlflow.local_registry`)."""

    #: True where approvals must be signed by the approvers themselves (no server).
    personal_approvals: ClassVar[bool]

    @property
    def runtime(self) -> Runtime: ...
    @property
    def policy(self) -> Policy: ...
    @property
    def store(self) -> SqlLineageStore: ...
    def tracking_store(self) -> Any: ...
    def registry_store(self) -> Any: ...
    def bind(self, name: str, version: str) -> VersionBinding: ...
    def record(
        self,
        kind: str,
        *,
        actor: str,
        environment: str | None,
        entities: Sequence[str] = (),
        payload: Mapping[str, Any] | None = None,
        required: bool = True,
    ) -> None: ...


class PromotionGate:
    """Evaluates and records promotions of model versions for one server or local registry."""

    def __init__(self, ctx: GateContext) -> None:
        self.ctx = ctx

    @property
    def policy(self) -> Policy:
        return self.ctx.policy

    # -- facts ----------------------------------------------------------------------------------
    def recorded_creators(self, *entities: str) -> set[str]:
        found: set[str] = set()
        for entity in entities:
            for kind in (RUN_CREATED, VERSION_CREATED):
                found.update(e.actor for e in self.ctx.store.events(kind=kind, entity=entity))
        return found

    def _source_env(self, mv: Any, run: Any, target: str) -> str | None:
        rule = self.policy.promotion_rule(target)
        candidates = [self.policy.env_for_alias(a) for a in (mv.aliases or [])]
        candidates.append(self.policy.env_for_stage(mv.current_stage or ""))
        here = [env for env in candidates if env and env != target]
        if rule and rule.allowed_sources:
            accepted = [env for env in here if env in rule.allowed_sources]
            if accepted:
                return accepted[0]
        if here:
            return here[0]
        trained = (run.data.tags or {}).get(ENV_TAG) if run is not None else None
        return str(trained) if trained else None

    def _lineage(self, run: Any, target: str) -> tuple[list[DataLineage], list[Reason]]:
        from envguard.lineage import dataset_entity
        from envguard.lineage.origin import resolve_lineage

        rule = self.policy.promotion_rule(target)
        if run is None or (rule is not None and rule.lineage == "any"):
            return [], []
        found: list[DataLineage] = []
        reasons: list[Reason] = []
        for item in getattr(run.inputs, "dataset_inputs", None) or []:
            tags = {t.key: t.value for t in item.tags or []}
            name = item.dataset.name or item.dataset.digest
            digest = tags.get(DATASET_DIGEST_TAG)
            if not digest:
                reasons.append(
                    Reason(
                        "lineage-unknown",
                        f"dataset {name!r} of run {run.info.run_id} has no input tag "
                        f"{DATASET_DIGEST_TAG}, so its origin cannot be checked",
                        "log datasets with envguard's MLflow plugin installed (it tags each "
                        "input with its sha256), or register it: envguard data register PATH",
                        guideline=5,
                    )
                )
                continue
            found.append(
                resolve_lineage(self.ctx.store, self.policy, name, dataset_entity(digest), digest)
            )
        return found, reasons

    def _evaluated_in(self, uri: str, training_run: str | None) -> set[str]:
        from mlflow.entities import ViewType

        tracking = self.ctx.tracking_store()
        experiments = [
            e.experiment_id for e in tracking.search_experiments(view_type=ViewType.ACTIVE_ONLY)
        ]
        found: set[str] = set()
        if not experiments:
            return found
        runs = tracking.search_runs(
            experiment_ids=experiments,
            filter_string=f"tags.`{EVALUATES_TAG}` = '{uri}'",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
        )
        for run in runs:
            env = (run.data.tags or {}).get(ENV_TAG)
            if env and run.info.status == "FINISHED" and run.info.run_id != training_run:
                found.add(str(env))
        return found

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(
        self, name: str, version: str, target: str, actor: str, override: str | None = None
    ) -> Evaluation:
        """Gather every fact and decide. MLflow's "does not exist" errors propagate."""
        uri = version_uri(name, version)
        registry = self.ctx.registry_store()
        mv = registry.get_model_version(name, version)
        run = self.ctx.tracking_store().get_run(mv.run_id) if mv.run_id else None
        extra: list[Reason] = []
        binding: VersionBinding | None = None
        try:
            binding = self.ctx.bind(name, version)
        except Exception as exc:  # noqa: BLE001 - an unreadable version fails closed, named
            extra.append(
                Reason(
                    "binding-unavailable",
                    f"the files of {uri} could not be read ({type(exc).__name__}: {exc})",
                    "make the version's artifacts readable by the server, then retry",
                    guideline=10,
                )
            )
        creators = {str(mv.user_id)} if getattr(mv, "user_id", None) else set()
        if run is not None:
            tags = run.data.tags or {}
            creators.update(str(v) for v in (run.info.user_id, tags.get("mlflow.user")) if v)
            if tags.get(ACTOR_TAG):
                creators.add(str(tags[ACTOR_TAG]))
        lineage: list[DataLineage] = []
        approvals: tuple[Any, ...] = ()
        evaluated: set[str] = set()
        try:
            entities = [uri, *([run_entity(mv.run_id)] if mv.run_id else [])]
            creators.update(self.recorded_creators(*entities))
            approvals = decision_approvals(
                read_approvals(
                    self.ctx.store, self.policy, uri, personal=self.ctx.personal_approvals
                ),
                binding,
            )
            lineage, reasons = self._lineage(run, target)
            extra.extend(reasons)
        except StoreError as exc:
            extra.append(
                Reason(
                    "lineage-unavailable", str(exc), "make the lineage store reachable, then retry"
                )
            )
        rule = self.policy.promotion_rule(target)
        if rule is not None and rule.require_evaluation_in:  # a search over every experiment
            evaluated = self._evaluated_in(uri, mv.run_id)
        request = PromotionRequest(
            model_version=uri,
            target_env=target,
            actor=actor,
            source_env=self._source_env(mv, run, target),
            creators=frozenset(creators),
            approvals=approvals,
            lineage=tuple(lineage),
            evaluated_in=frozenset(evaluated),
            override_reason=override,
        )
        core = decide_promotion(self.policy, request)
        plugins = self.ctx.runtime.plugins.check_promotion(request, self.policy)
        reasons = [*core.reasons, *extra, *plugins]
        override_used = core.override if not extra and not plugins else None
        decision = conclude("promotion", uri, reasons, self.policy, target, override_used)
        return Evaluation(decision, request, binding)

    def decide_and_record(
        self,
        name: str,
        version: str,
        target: str,
        actor: str,
        move: str,
        override: str | None = None,
    ) -> Decision:
        """Evaluate a move and chain ``promotion.requested`` then ``allowed``/``denied`` (or
        ``overridden``: allowed only by an emergency override, its reason and the rules it
        set aside in the record). A record that cannot be written denies (fail closed)."""
        uri = version_uri(name, version)
        requested = {"model_version": uri, "target_env": target, "move": move}
        if override is not None:
            requested["override_reason"] = override
        try:
            self.ctx.record(
                "promotion.requested",
                actor=actor,
                environment=target,
                entities=[uri],
                payload=requested,
            )
        except StoreError as exc:
            return self._unrecorded(uri, target, exc)
        evaluation = self.evaluate(name, version, target, actor, override)
        decision = evaluation.decision
        kind = "promotion.allowed" if decision.allowed else "promotion.denied"
        if decision.allowed and decision.override:
            kind = OVERRIDDEN
        try:
            self.ctx.record(
                kind,
                actor=actor,
                environment=target,
                entities=[uri],
                payload={"move": move, **evaluation.to_dict()},
            )
        except StoreError as exc:
            return self._unrecorded(uri, target, exc, decision.reasons)
        return decision

    def _unrecorded(
        self, uri: str, target: str, exc: StoreError, reasons: tuple[Reason, ...] = ()
    ) -> Decision:
        reason = Reason("record-required", str(exc), "make the lineage store writable, then retry")
        return conclude("promotion", uri, [*reasons, reason], self.policy, target)
