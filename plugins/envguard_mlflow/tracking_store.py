"""The guarded tracking store: MLflow's own store, of a subclass that tags, checks and records.

:func:`guard_tracking_store` takes the store MLflow's own builder made (``SqlAlchemyStore``,
``RestStore``, ``FileStore``, ...) and gives it a subclass of its own class that adds
:class:`GuardedTrackingStore`'s methods, so that every ``isinstance`` check in MLflow still holds.
Every write that carries tags passes here whatever API the user called: ``mlflow.set_tags`` and
``MlflowClient.log_batch`` reach :meth:`log_batch`, not :meth:`set_tag`; ``MlflowClient.create_run``
consults no run-context provider, so :meth:`create_run` adds the tags itself.

Every dataset input passes through :meth:`GuardedTrackingStore.admit_dataset_input`: the one place
where a dataset's digests are known before MLflow records it (the data-use gate belongs there).
A refusal under MLflow's autologging stops the run (:mod:`envguard_mlflow.autologging`): it is
marked ``FAILED`` at once, and every later write to it is refused.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import Denied, DeniedUnderAutologging
from envguard_mlflow import autologging, guards, reads
from envguard_mlflow.datasets import (
    DatasetFacts,
    dataset_facts,
    file_sha256,
    local_source_path,
)
from envguard_mlflow.facts import ProcessFacts
from envguard_mlflow.guarded_store import GuardedStore, guard_store

if TYPE_CHECKING:
    from mlflow.entities import DatasetInput

__all__ = ["GuardedTrackingStore", "guard_tracking_store", "record_local_artifacts"]

log = logging.getLogger(__name__)

_TERMINAL = {"FINISHED", "FAILED", "KILLED"}
_DECLARED = guards.RUN_DECLARATIONS  # user-declared run tags the server checks


def guard_tracking_store(store: Any, uri: str) -> Any:
    """Give ``store`` (built by MLflow) the guarded subclass of its own class."""
    return guard_store(store, uri, GuardedTrackingStore)


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: not C:\


def _local_dir(uri: str) -> Path | None:
    """The folder of a local artifact location (a path or ``file:`` URI), else None."""
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        return Path(unquote(urlsplit(uri).path))
    return None if _SCHEME.match(uri) else Path(uri)


def record_local_artifacts(facts: ProcessFacts, owner: str, artifact_uri: str) -> None:
    """Spool the sha256 of every file under a local artifact location (a run's or a model's)."""
    root = _local_dir(artifact_uri)
    if root is None or not root.is_dir():
        return
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder) / name
            guards.record_artifact(
                facts,
                owner=owner,
                artifact_uri=artifact_uri,
                path=path.relative_to(root).as_posix(),
                size=path.stat().st_size,
                sha256=file_sha256(str(path)),
            )


def _described(datasets: Any) -> str:
    """The dataset inputs autologging logged, as the denial names them: name, MLflow digest and
    the script that logged them (a code source's ``mlflow.source.name``)."""
    import json

    named = []
    for dataset_input in datasets:
        dataset = dataset_input.dataset
        try:
            tags = json.loads(dataset.source or "{}").get("tags") or {}
        except (ValueError, AttributeError):
            tags = {}
        script = tags.get("mlflow.source.name") if isinstance(tags, dict) else None
        where = f" from {script}" if script else ""
        named.append(f"dataset {dataset.name!r} (MLflow digest {dataset.digest}){where}")
    return "the training data of fit(): " + ", ".join(named)


class GuardedTrackingStore(GuardedStore):
    """Mixed in before a concrete MLflow tracking store class; see the module's docstring."""

    _envguard_kind = "tracking"

    def _envguard_new_facts(self) -> None:
        self.__dict__.pop("_envguard_experiments", None)  # checked for another runtime
        self._envguard_state()

    _envguard_experiments: set[str]
    _envguard_artifact_uris: dict[str, str]

    def _envguard_state(self) -> None:
        if "_envguard_experiments" not in self.__dict__:
            self._envguard_experiments = set()
        if "_envguard_artifact_uris" not in self.__dict__:
            self._envguard_artifact_uris = {}

    # -- experiments and runs -------------------------------------------------------------------
    def create_experiment(self, name: Any, artifact_location: Any = None, tags: Any = None) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            pairs = ((t.key, t.value) for t in tags or ())
            guards.check_tags(facts, pairs, {}, f"experiment {name}")
            if artifact_location:
                guards.check_location(facts, str(artifact_location), "artifact")
        return super().create_experiment(name, artifact_location, tags)

    def _check_experiment(self, facts: ProcessFacts, experiment_id: str) -> None:
        self._envguard_state()
        if experiment_id in self._envguard_experiments:
            return
        location = self.get_experiment(experiment_id).artifact_location
        if location:
            guards.check_location(facts, str(location), "artifact")
        self._envguard_experiments.add(experiment_id)

    def create_run(
        self, experiment_id: Any, user_id: Any, start_time: Any, tags: Any, run_name: Any
    ) -> Any:
        facts = self._envguard_facts()
        if facts is None:
            return super().create_run(experiment_id, user_id, start_time, tags, run_name)
        from mlflow.entities import RunTag

        given = list(tags or ())
        guards.check_tags(
            facts, ((t.key, t.value) for t in given), facts.tags, "new run", _DECLARED
        )
        self._check_experiment(facts, str(experiment_id))
        facts.tracked_files  # noqa: B018 - a plugin that cannot say stops the run before it starts
        mine = {t.key for t in given}
        given += [RunTag(k, v) for k, v in facts.tags.items() if k not in mine]
        run = super().create_run(experiment_id, user_id, start_time, given, run_name)
        self._envguard_state()
        self._envguard_artifact_uris[run.info.run_id] = run.info.artifact_uri
        reads.arm(facts, run.info.run_id)
        return run

    def update_run_info(self, run_id: Any, run_status: Any, end_time: Any, run_name: Any) -> Any:
        from mlflow.entities import RunStatus

        status = run_status if isinstance(run_status, str) else RunStatus.to_string(run_status)
        if status not in ("FAILED", "KILLED") and autologging.stopped_decision(run_id) is not None:
            # a run envguard stopped stays FAILED (MLflow ends an autologged run with FINISHED)
            status, run_status = "FAILED", RunStatus.FAILED
            end_time = end_time or int(time.time() * 1000)
        result = super().update_run_info(run_id, run_status, end_time, run_name)
        facts = self._envguard_facts()
        if facts is not None:
            self._envguard_state()
            uri = self._envguard_artifact_uris.pop(run_id, None)
            if status in _TERMINAL:
                reads.disarm(str(run_id))
                if uri:
                    record_local_artifacts(facts, f"run:{run_id}", uri)
                facts.observations.run_ended()
        return result

    # -- tags -----------------------------------------------------------------------------------
    def set_tag(self, run_id: Any, tag: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            autologging.refuse_stopped_run(run_id)
            guards.check_tags(facts, [(tag.key, tag.value)], facts.tags, f"run {run_id}", _DECLARED)
        return super().set_tag(run_id, tag)

    def set_tag_async(self, run_id: Any, tag: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            autologging.refuse_stopped_run(run_id)
            guards.check_tags(facts, [(tag.key, tag.value)], facts.tags, f"run {run_id}", _DECLARED)
        return super().set_tag_async(run_id, tag)

    def delete_tag(self, run_id: Any, key: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            guards.refuse_tag_delete(facts, str(key), f"run {run_id}")
        return super().delete_tag(run_id, key)

    def log_param(self, run_id: Any, param: Any) -> Any:
        if self._envguard_facts() is not None:
            autologging.refuse_stopped_run(run_id)
        return super().log_param(run_id, param)

    def log_metric(self, run_id: Any, metric: Any) -> Any:
        if self._envguard_facts() is not None:
            autologging.refuse_stopped_run(run_id)
        return super().log_metric(run_id, metric)

    def log_batch(self, run_id: Any, metrics: Any, params: Any, tags: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            autologging.refuse_stopped_run(run_id)
        if facts is not None and tags:
            guards.check_tags(
                facts, ((t.key, t.value) for t in tags), facts.tags, f"run {run_id}", _DECLARED
            )
        return super().log_batch(run_id, metrics, params, tags)

    def log_batch_async(self, run_id: Any, metrics: Any, params: Any, tags: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            autologging.refuse_stopped_run(run_id)
        if facts is not None and tags:
            guards.check_tags(
                facts, ((t.key, t.value) for t in tags), facts.tags, f"run {run_id}", _DECLARED
            )
        return super().log_batch_async(run_id, metrics, params, tags)

    # -- dataset inputs -------------------------------------------------------------------------
    def log_inputs(self, run_id: Any, datasets: Any = None, models: Any = None) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            autologging.refuse_stopped_run(run_id)
        if facts is not None and datasets:
            try:
                datasets = [self.admit_dataset_input(facts, str(run_id), d) for d in datasets]
            except Denied as denied:
                if not autologging.under_autologging():
                    raise  # mlflow.log_input & co.: the caller meets the Denied itself
                note = autologging.stop_note(str(run_id), _described(datasets))
                self._stop_run(str(run_id), denied, note)
                raise DeniedUnderAutologging(denied.decision, note) from denied
        return super().log_inputs(run_id, datasets=datasets, models=models)

    def _stop_run(self, run_id: str, denied: Denied, note: str) -> None:
        """A refusal under autologging stops the run: FAILED now (and the logged models already
        made from it), every later write refused (:mod:`envguard_mlflow.autologging`)."""
        from mlflow.entities import LoggedModelStatus, RunStatus

        made = autologging.stop_run(run_id, denied.decision, note)
        try:
            self.update_run_info(run_id, RunStatus.FAILED, int(time.time() * 1000), None)
            for model_id in made:
                super().finalize_logged_model(model_id, LoggedModelStatus.FAILED)
        except Exception as exc:  # noqa: BLE001 - the denial is raised whatever the store says
            log.warning("envguard: run %s: could not mark it FAILED: %s", run_id, exc)

    def admit_dataset_input(
        self, facts: ProcessFacts, run_id: str, dataset_input: DatasetInput
    ) -> DatasetInput:
        """Every dataset input of every run passes here before MLflow records it.

        Computes :class:`~envguard_mlflow.datasets.DatasetFacts` (envguard's sha256 of the data
        or of the source file, and MLflow's own digest), refuses hand-written ``envguard.*``
        input tags that contradict them, passes the data-use gate (which records the use, allowed
        or not, in the lineage log), and returns the input with the environment and digest tags
        added. Raises
        :class:`~envguard.errors.Denied` to refuse the input (nothing of it is recorded then).
        """
        from mlflow.entities import DatasetInput, InputTag

        found: DatasetFacts = dataset_facts(dataset_input.dataset)
        expected = {**facts.env_tags, **found.tags()}
        given = list(dataset_input.tags or ())
        subject = f"run {run_id} dataset {found.name!r}"
        guards.check_tags(facts, ((t.key, t.value) for t in given), expected, subject)
        problem = found.problem()
        if problem is not None:
            log.warning("envguard: run %s: %s", run_id, problem)
        self._gate_dataset(facts, run_id, found)
        kept = [t for t in given if t.key not in expected]
        tags = kept + [InputTag(k, v) for k, v in expected.items()]
        return DatasetInput(dataset=dataset_input.dataset, tags=tags)

    def _gate_dataset(self, facts: ProcessFacts, run_id: str, found: DatasetFacts) -> None:
        """The data-use gate: may this run use this dataset? Checks the data's own digest and,
        when the dataset names a local source file, that file's digest too (a DataFrame read
        from a production file hashes differently from the file). Raises ``Denied`` in enforce
        mode; every use, allowed or not, is recorded in the lineage log."""
        from envguard.gate import check_data_use

        subject = found.source_uri or found.name
        also: list[str] = []
        path = local_source_path(found.source_uri or "")
        if path is not None and found.sha256_of != "file" and os.path.isfile(path):
            also.append(file_sha256(path))
        decision = check_data_use(
            facts.runtime,
            subject,
            found.sha256,
            run=f"run:{run_id}",
            also=also,
            defer=facts.observations.add,
            urgent=facts.observations.urgent,
            details={
                "dataset": found.name,
                "mlflow_digest": found.mlflow_digest,
                "sha256_of": found.sha256_of,
            },
        )
        if decision.violated and decision.allowed:
            log.warning("%s", decision.explain())
        decision.enforce()

    # -- logged models (MLflow 3) ---------------------------------------------------------------
    def create_logged_model(
        self,
        experiment_id: Any,
        name: Any = None,
        source_run_id: Any = None,
        tags: Any = None,
        params: Any = None,
        model_type: Any = None,
    ) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            from mlflow.entities import LoggedModelTag

            autologging.refuse_stopped_run(source_run_id)
            given = list(tags or ())
            guards.check_tags(facts, ((t.key, t.value) for t in given), facts.tags, "new model")
            self._check_experiment(facts, str(experiment_id))
            mine = {t.key for t in given}
            tags = given + [LoggedModelTag(k, v) for k, v in facts.tags.items() if k not in mine]
        model = super().create_logged_model(
            experiment_id, name, source_run_id, tags, params, model_type
        )
        if facts is not None:
            self._envguard_artifact_uris[model.model_id] = model.artifact_location
            autologging.model_made(source_run_id, model.model_id)
        return model

    def set_logged_model_tags(self, model_id: Any, tags: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            pairs = ((t.key, t.value) for t in tags or ())
            guards.check_tags(facts, pairs, facts.tags, f"model {model_id}")
        return super().set_logged_model_tags(model_id, tags)

    def delete_logged_model_tag(self, model_id: Any, key: Any) -> Any:
        facts = self._envguard_facts()
        if facts is not None:
            guards.refuse_tag_delete(facts, str(key), f"model {model_id}")
        return super().delete_logged_model_tag(model_id, key)

    def finalize_logged_model(self, model_id: Any, status: Any) -> Any:
        stopped = autologging.models_of(str(model_id))
        if stopped is not None:  # made from a run envguard stopped: FAILED, and refused
            from mlflow.entities import LoggedModelStatus

            super().finalize_logged_model(model_id, LoggedModelStatus.FAILED)
            autologging.refuse_stopped_run(stopped)
        model = super().finalize_logged_model(model_id, status)
        facts = self._envguard_facts()
        if facts is not None:
            self._envguard_state()
            uri = self._envguard_artifact_uris.pop(str(model_id), None)
            if uri:
                record_local_artifacts(facts, f"models:/{model_id}", uri)
            facts.observations.run_ended()
        return model
