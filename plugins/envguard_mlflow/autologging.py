"""Denials that MLflow's autologging cannot swallow, and the runs they stop.

MLflow's autologgers (``mlflow.autolog()``, ``mlflow.sklearn.autolog()``, ...) run their logging
code inside ``safe_patch`` (``mlflow/utils/autologging_utils/safety.py``), which catches every
``Exception`` that code raises and turns it into a warning; only exceptions of the training
function itself reach the caller. scikit-learn's autologger logs the training set from a worker
thread while ``fit()`` trains, and waits for that worker before ``fit()`` returns. So a plain
:class:`~envguard.errors.Denied` raised by the data-use gate there would be a warning, and
``fit()`` would train on production data and return normally.

Under autologging the tracking store therefore raises
:class:`~envguard.errors.DeniedUnderAutologging` instead (a ``BaseException``, and an
:class:`~envguard.errors.EnvGuardDenied`, see :mod:`envguard.errors`): it passes MLflow's
``except Exception`` clauses in the worker and in ``safe_patch``, so ``fit()`` raises it when it
waits for its worker (or sooner, when the main thread writes to the run first). The run is
marked ``FAILED`` in the store at the moment of the denial, and stays stopped: every later write
to it from this process (params, metrics, tags, inputs, a logged model, a status other than
``FAILED`` or ``KILLED``) is refused with the same decision. MLflow's own managed run handling
ends runs only on ``Exception`` and ``KeyboardInterrupt``; the store keeps the run ``FAILED`` when
MLflow later ends it at exit.

Nothing here patches MLflow: the tracking store is envguard's own plugin, and whether an
autologging session is active is read, never changed (see :func:`under_autologging`).
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from envguard.errors import Denied, DeniedUnderAutologging, EnvGuardDenied

if TYPE_CHECKING:
    from envguard.decisions import Decision

__all__ = [
    "denial_for",
    "model_made",
    "models_of",
    "refuse_stopped_run",
    "stop_run",
    "stopped_decision",
    "under_autologging",
]

#: The thread name prefix of MLflow's autologging worker pool (``MlflowAutologgingQueueingClient``).
_WORKER_PREFIX = "MlflowAutologgingQueueingClient"

_lock = threading.Lock()
_stopped: dict[str, tuple[Decision, str]] = {}  # run id -> the decision that stopped it, a note
_models: dict[str, list[str]] = {}  # run id -> logged models this process made from it


def under_autologging() -> bool:
    """Whether this call comes from MLflow's autologging: an autologging session is active (MLflow
    keeps one process-wide while a patched ``fit()`` runs), or this is its logging worker."""
    if threading.current_thread().name.startswith(_WORKER_PREFIX):
        return True
    safety = sys.modules.get("mlflow.utils.autologging_utils.safety")
    manager = getattr(safety, "_AutologgingSessionManager", None)
    active = getattr(manager, "active_session", None)
    return bool(active is not None and active() is not None)


def denial_for(decision: Decision, note: str = "") -> EnvGuardDenied:
    """The exception that refuses ``decision``'s action here: one MLflow cannot swallow under
    autologging, else a plain :class:`~envguard.errors.Denied`."""
    if under_autologging():
        return DeniedUnderAutologging(decision, note)
    return Denied(decision)


def stop_note(run_id: str, what: str) -> str:
    """What the denial under autologging adds to the decision's own explanation."""
    return (
        f"  MLflow autologging logged {what}; envguard stopped run {run_id}: it is marked "
        "FAILED and nothing more is written to it (its model included). Train on a masked copy "
        "of the data (envguard mask SOURCE_FILE -o MASKED_FILE, then read MASKED_FILE)."
    )


def stop_run(run_id: str, decision: Decision, note: str) -> list[str]:
    """Remember that ``decision`` stopped run ``run_id`` (later writes to it are refused); the
    logged models this process already made from the run (to be marked ``FAILED``)."""
    with _lock:
        _stopped.setdefault(run_id, (decision, note))
        return list(_models.get(run_id, ()))


def model_made(run_id: str | None, model_id: str) -> None:
    """A logged model was made from ``run_id`` (autologging may log it before the gate ends)."""
    if run_id:
        with _lock:
            _models.setdefault(str(run_id), []).append(str(model_id))


def models_of(model_id: str) -> str | None:
    """The run a logged model of this process was made from, if that run was stopped."""
    with _lock:
        for run_id, models in _models.items():
            if model_id in models and run_id in _stopped:
                return run_id
    return None


def stopped_decision(run_id: str | None) -> Decision | None:
    """The decision that stopped ``run_id`` in this process, else None."""
    if not run_id or not _stopped:
        return None
    with _lock:
        found = _stopped.get(str(run_id))
    return found[0] if found else None


def refuse_stopped_run(run_id: str | None) -> None:
    """Raise the denial that stopped ``run_id``, if one did: nothing more is written to it."""
    if not run_id or not _stopped:
        return
    with _lock:
        found = _stopped.get(str(run_id))
    if found is not None:
        raise denial_for(*found)
