"""The lineage log as OpenLineage RunEvents.

=====================================  =========================================================
envguard records                       OpenLineage events
=====================================  =========================================================
an MLflow run (``run:ID``: created,    job ``mlflow-run`` (the run id as the job's name), START at
its ``dataset.used`` and               its first event, COMPLETE at its last; inputs: the datasets
``artifact.logged`` events)            it used; outputs: the artifacts it logged
``dataset.registered``                 job ``envguard.data.register``: one output, the dataset
``derivation`` (a DVC stage)           job ``dvc-stage`` (the stage's name); inputs -> outputs
``proof.recorded`` (``envguard mask``) job ``envguard.mask``: sources -> the masked output
=====================================  =========================================================

Every run carries the ``envguard_environment`` facet; every dataset with a recorded origin the
``envguard_origin`` facet; every masked output the ``envguard_maskingProof`` facet, its proof
verified again now. Run ids are UUIDs derived (uuid5) from the envguard entity or event, so an
export run twice names the same runs. Dataset names are envguard's entities (``sha256:HEX``, ...),
in the namespace given on the command line.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

from envguard_openlineage.facets import (
    PRODUCER,
    EnvironmentRunFacet,
    MaskingProofDatasetFacet,
    OriginDatasetFacet,
)

if TYPE_CHECKING:
    from envguard.lineage.events import Event
    from envguard.runtime import Runtime

__all__ = ["build_events"]

_UUID_NS = uuid.UUID("6f1d9a4e-2b7c-5e0a-9c3d-0e5f7a1b2c3d")
RUN_KINDS = ("mlflow.run.created", "dataset.used", "artifact.logged")


@dataclass
class _RunRecord:
    entity: str
    events: list[Event] = field(default_factory=list)
    inputs: dict[str, None] = field(default_factory=dict)
    outputs: dict[str, None] = field(default_factory=dict)


def _run_id(key: str) -> str:
    return str(uuid.uuid5(_UUID_NS, key))


class _Builder:
    def __init__(self, runtime: Runtime, namespace: str, since: str | None) -> None:
        self.runtime = runtime
        self.namespace = namespace
        self.since = since
        self.origins: dict[str, str] = {}

    def _environment(self, event: Event) -> dict[str, Any]:
        policy = self.runtime.policy
        env = event.environment
        tier = policy.tier(env) if env in policy.spec.environments else None
        facet = EnvironmentRunFacet(
            environment=env,
            tier=tier,
            actor=event.actor or None,
            policySha256=event.policy_sha256 or None,
            producer=PRODUCER,
        )
        return {"envguard_environment": facet}

    def _dataset_facets(
        self, entity: str, masking: MaskingProofDatasetFacet | None = None
    ) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        origin = self.origins.get(entity)
        if origin:
            policy = self.runtime.policy
            tier = policy.tier(origin) if origin in policy.spec.environments else None
            facets["envguard_origin"] = OriginDatasetFacet(
                origin=origin, tier=tier, producer=PRODUCER
            )
        if masking is not None:
            facets["envguard_maskingProof"] = masking
        return facets

    def _pair(
        self,
        key: str,
        job: str,
        first: Event,
        last: Event,
        inputs: list[InputDataset],
        outputs: list[OutputDataset],
        where: Event | None = None,
    ) -> Iterator[RunEvent]:
        run = Run(runId=_run_id(key), facets=self._environment(where or first))
        for state, event in ((RunState.START, first), (RunState.COMPLETE, last)):
            yield RunEvent(
                eventType=state,
                eventTime=event.time,
                run=run,
                job=Job(namespace=self.namespace, name=job),
                inputs=inputs,
                outputs=outputs,
                producer=PRODUCER,
            )

    def _input(self, entity: str) -> InputDataset:
        return InputDataset(self.namespace, entity, facets=self._dataset_facets(entity))

    def _output(
        self, entity: str, masking: MaskingProofDatasetFacet | None = None
    ) -> OutputDataset:
        return OutputDataset(self.namespace, entity, facets=self._dataset_facets(entity, masking))

    def _masking(self, event: Event, dst: str) -> MaskingProofDatasetFacet | None:
        from envguard.proofs import check_envelope

        sources = sorted({link.src for link in event.links if link.dst == dst})
        envelopes = dict(event.payload.get("envelopes") or {})
        proofs = [e for e in event.entities if e.startswith("proof:")]
        if isinstance(event.payload.get("envelope"), dict) and proofs:
            envelopes.setdefault(proofs[0], event.payload["envelope"])
        for proof, envelope in envelopes.items():
            if not isinstance(envelope, dict):
                continue
            sha = dst.removeprefix("sha256:") if dst.startswith("sha256:") else None
            signer, problems = check_envelope(
                self.runtime.policy,
                envelope,
                sha,
                self.runtime.environ,
                known_policy_sha256s=[event.policy_sha256],
            )
            return MaskingProofDatasetFacet(
                proofId=str(proof),
                sources=sources,
                signer=signer,
                verified=not problems,
                problems=problems,
                producer=PRODUCER,
            )
        return None

    def _step(self, event: Event) -> Iterator[RunEvent]:
        if event.kind == "proof.recorded":
            job = "envguard.mask"
        else:
            job = str(event.payload.get("stage") or event.payload.get("step") or "derivation")
        sources = list(dict.fromkeys(link.src for link in event.links))
        targets = list(dict.fromkeys(link.dst for link in event.links))
        masked = {link.dst for link in event.links if link.relation == "masked"}
        outputs = [
            self._output(t, self._masking(event, t) if t in masked else None) for t in targets
        ]
        yield from self._pair(
            f"event:{event.hash}", job, event, event, [self._input(s) for s in sources], outputs
        )

    def build(self) -> Iterator[RunEvent]:
        runs: dict[str, _RunRecord] = {}
        for event in self.runtime.store.events(since=self.since):
            if event.kind in ("dataset.registered", "object.stored"):
                origin = event.payload.get("origin")
                if isinstance(origin, str):
                    for name in event.entities:
                        self.origins.setdefault(name, origin)
            if event.kind == "dataset.registered":
                outputs = [self._output(e) for e in event.entities]
                key = f"event:{event.hash}"
                yield from self._pair(key, "envguard.data.register", event, event, [], outputs)
            elif event.kind in ("derivation", "proof.recorded"):
                yield from self._step(event)
            if event.kind in RUN_KINDS:
                _collect_run(runs, event)
        for entity, record in runs.items():
            first, last = record.events[0], record.events[-1]
            if first.kind != "mlflow.run.created":
                created = next((e for e in record.events if e.kind == "mlflow.run.created"), None)
                first = created or first
            yield from self._pair(
                entity,
                "mlflow-run:" + entity.removeprefix("run:"),
                first,
                last,
                [self._input(e) for e in record.inputs],
                [self._output(e) for e in record.outputs],
                next((e for e in record.events if e.environment), first),
            )


def _collect_run(runs: dict[str, _RunRecord], event: Event) -> None:
    """Add ``event`` to the MLflow run(s) it concerns: a use (input), an artifact (output)."""
    for link in event.links:
        if link.relation == "used-by" and link.dst.startswith("run:"):
            record = runs.setdefault(link.dst, _RunRecord(link.dst))
            record.inputs.setdefault(link.src)
            record.events.append(event)
        elif link.relation == "logged" and link.src.startswith("run:"):
            record = runs.setdefault(link.src, _RunRecord(link.src))
            record.outputs.setdefault(link.dst)
            record.events.append(event)
    if event.kind == "mlflow.run.created":
        record = runs.setdefault(event.entities[0], _RunRecord(event.entities[0]))
        record.events.append(event)


def build_events(runtime: Runtime, namespace: str, since: str | None = None) -> list[RunEvent]:
    """Every RunEvent the lineage log (from ``since``, a UTC ISO time) describes."""
    return list(_Builder(runtime, namespace, since).build())
