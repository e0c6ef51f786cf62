"""The observational records of this process's runs, written once per run in one transaction.

A run that logs a dataset and an artifact used to cost the lineage store one transaction per
record (``dataset.used``, each ``artifact.logged``). Those records observe; they guard nothing
(a use of production data, or one the store must hold before it is allowed, is still written at
once by the gate). So they are kept here, each also appended to a journal in the spool folder as
it happens (:class:`envguard.lineage.spool.Journal`), and written together when the run or logged
model ends, when too many wait, or when the process exits. A process that dies first leaves its
journal behind, and the next write to the store replays it: nothing is lost.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envguard.lineage.events import EventDraft
    from envguard.lineage.spool import Journal
    from envguard.runtime import Runtime

__all__ = ["Observations"]

log = logging.getLogger(__name__)

#: Written at once past this many waiting records (a run that logs thousands of artifacts).
MAX_WAITING = 256

_open: weakref.WeakSet[Observations] = weakref.WeakSet()


class Observations:
    """Deferred records of one runtime; :meth:`add` is the gate's ``defer``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._drafts: list[EventDraft] = []
        self._journal: Journal | None = None
        self._lock = threading.Lock()
        _open.add(self)

    def add(self, draft: EventDraft) -> None:
        from envguard.lineage.events import utc_now

        stamped = draft if draft.time else replace(draft, time=utc_now())
        with self._lock:
            try:
                journal = self._journal_or_none()
                if journal is not None:
                    journal.add(stamped.to_json())
            except Exception:  # noqa: BLE001 - no journal (store or disk trouble): write at once
                journal = None
            self._drafts.append(stamped)
            full = len(self._drafts) >= MAX_WAITING
        if full or journal is None:
            self.flush()

    def _journal_or_none(self) -> Journal | None:
        if self._journal is None:
            spool = getattr(self.runtime.store, "spool", None)
            if spool is None:
                return None  # a store without a spool: write each record at once, as before
            self._journal = spool.journal()
        return self._journal

    def flush(self) -> None:
        """Write what waits in one transaction (spooled by the store when it is unavailable)."""
        with self._lock:
            drafts, self._drafts = self._drafts, []
            if not drafts:
                return
            try:
                self.runtime.store.append_many(drafts, required=False)
            except Exception as exc:  # noqa: BLE001 - observational: keep the journal, never raise
                log.warning(
                    "envguard: %d lineage record(s) wait in %s: %s",
                    len(drafts),
                    self._journal.path if self._journal else "memory",
                    exc,
                )
                self._drafts = drafts + self._drafts
                return
            if self._journal is not None:
                self._journal.clear()

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._journal is not None and not self._drafts:
                self._journal.close()


@atexit.register
def _flush_all() -> None:
    for observations in list(_open):
        observations.close()
