"""The gate at the moment a run reads a DVC-tracked file: a PEP 578 audit hook on ``open``.

When a run starts (the guarded tracking store's ``create_run``), the plugins are asked once per
process for the files they track under the working directory (``envguard_tracked_files``: the
DVC plugin answers from ``.dvc`` files and ``dvc.lock``, with the md5 DVC recorded). When there
are any, an audit hook is installed (once: Python cannot remove one) and armed while a run of
this process is active. Each ``open`` for reading whose file name is one of the tracked names,
and whose resolved path is tracked, passes the data-use gate under the active run, by the
recorded digest (the file is not hashed): production lineage without a valid masking proof raises
:class:`~envguard.errors.EnvGuardDenied` from the ``open`` call in ``enforce`` mode (so from
``pandas.read_csv``, ``open``, ...), warns in ``warn`` mode, records in ``audit`` mode; every such
read is recorded (``dataset.used`` when allowed). Every other ``open`` costs a string comparison,
a dictionary look-up of the file's name, and nothing else.

What an audit hook does not see: files opened by C libraries without Python's ``open`` (pyarrow's
own reader, ``pandas.read_csv(engine="pyarrow")`` with a path, memory maps by name) and files read
by subprocesses. DVC's own guard covers ``dvc pull``/``dvc get``; the server-side gate covers
promotion.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envguard_mlflow.facts import ProcessFacts

__all__ = ["arm", "disarm"]

log = logging.getLogger(__name__)

_WRITING = os.O_WRONLY | os.O_RDWR

_tracked: dict[str, str] = {}  # resolved path -> content entity (dvc-md5:HEX)
_names: frozenset[str] = frozenset()  # their file names: the cheap first test
_active: dict[str, ProcessFacts] = {}  # run id -> facts, in order of creation
_installed = False
_busy = threading.local()
_lock = threading.Lock()


def arm(facts: ProcessFacts, run_id: str) -> None:
    """A run of this process started: watch reads of tracked files while it is active."""
    global _installed, _names  # noqa: PLW0603 - one hook per process
    tracked = facts.tracked_files
    if not tracked:
        return
    with _lock:
        if _tracked != tracked:
            _tracked.clear()
            _tracked.update(tracked)
            _names = frozenset(os.path.basename(p) for p in tracked)
        _active[run_id] = facts
        if not _installed:
            sys.addaudithook(_on_audit)
            _installed = True


def disarm(run_id: str) -> None:
    """The run ended: reads are no longer its reads."""
    with _lock:
        _active.pop(run_id, None)


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _active:
        return
    path = args[0]
    if path.__class__ is not str:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        elif isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str):
            return  # a file descriptor
    if path[path.rfind(os.sep) + 1 :] not in _names:  # the file name: most opens stop here
        return
    flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
    if flags & _WRITING or getattr(_busy, "active", False):
        return
    resolved = os.path.realpath(path)
    entity = _tracked.get(resolved)
    if entity is not None:
        _busy.active = True
        try:
            _gate(resolved, entity)
        finally:
            _busy.active = False


def _run() -> tuple[str, ProcessFacts] | None:
    """The run a read belongs to: the fluent API's active run when it is ours, else the newest."""
    with _lock:
        if not _active:
            return None
        fluent = sys.modules.get("mlflow.tracking.fluent")
        current = fluent.active_run() if fluent is not None else None
        if current is not None and current.info.run_id in _active:
            return current.info.run_id, _active[current.info.run_id]
        run_id = next(reversed(_active))
        return run_id, _active[run_id]


def _gate(path: str, entity: str) -> None:
    from envguard.decisions import Outcome
    from envguard.gate import check_data_use

    found = _run()
    if found is None:
        return
    run_id, facts = found
    decision = check_data_use(
        facts.runtime,
        path,
        None,
        run=f"run:{run_id}",
        entities=[entity],
        defer=facts.observations.add,
        urgent=facts.observations.urgent,
    )
    if decision.outcome is Outcome.WARN:
        warnings.warn(decision.explain(), stacklevel=4)
    elif decision.violated and decision.allowed:
        log.info("%s", decision.explain())
    decision.enforce()
