"""The observational records of this process's runs, written in batches.

A run that logs a dataset and an artifact used to cost the lineage store one transaction per
record (``dataset.used``, each ``artifact.logged``). Those records observe; they guard nothing
(a use of production data, or one the store must hold before it is allowed, is still written at
once by the gate). So they are kept here, each also appended to a journal in the spool folder as
it happens (:class:`envguard.lineage.spool.Journal`), and written together in one transaction.
A process that dies first leaves its journal behind, and the next write to the store replays
it: nothing is lost.

When they are written: at the end of a run (or logged model) once the oldest of them has waited
:data:`FLUSH_AFTER` seconds, by a timer thread once they have waited twice that long (a notebook
that stops logging), past :data:`MAX_WAITING` records, before any registry call of
this process, and at exit. A tight loop of short runs (a hyperparameter sweep) thus costs one
transaction a second instead of one a run; a run that lasts longer than that is written at its
end, as before. A process whose records matter to its own next gate writes at every run end
instead: one in a production environment (what it logs is production data), and one that has
used data with production lineage (masked, or allowed by ``warn``/``audit`` mode), so that the
artifacts derived from it are in the store before anything in the process can use them.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envguard.lineage.events import EventDraft
    from envguard.lineage.spool import Journal
    from envguard.runtime import Runtime

__all__ = ["FLUSH_AFTER", "MAX_WAITING", "Observations"]

log = logging.getLogger(__name__)

#: Written at once past this many waiting records (a run that logs thousands of artifacts).
MAX_WAITING = 256
#: The longest (seconds) a record waits before it is written, while the process lives.
FLUSH_AFTER = 1.0

_open: weakref.WeakSet[Observations] = weakref.WeakSet()
_exiting = False  # past the exit flush: a run MLflow ends at exit is written at once


class Observations:
    """Deferred records of one runtime; :meth:`add` is the gate's ``defer``, :meth:`urgent`
    its ``urgent``. Each batch has its own journal: while one is being written, the records
    that arrive go to the next, so a run never waits for the store."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._urgent = runtime.environment.tier == "prod"
        self._reset()
        _open.add(self)

    def _reset(self) -> None:
        """Empty state (also a forked child's: its parent writes what waited at the fork)."""
        self._drafts: list[EventDraft] = []
        self._journal: Journal | None = None  # the waiting records' journal
        self._unwritten: list[Journal] = []  # journals of batches the store refused, kept
        self._since: float | None = None  # time.monotonic() of the oldest waiting record
        self._lock = threading.Lock()  # the waiting records (held briefly)
        self._writing = threading.Lock()  # one batch written at a time, in order
        self._timer: threading.Thread | None = None

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
            if self._since is None:
                self._since = time.monotonic()
                self._start_timer()
            full = len(self._drafts) >= MAX_WAITING
        if full or journal is None:
            self.flush()

    def urgent(self) -> None:
        """This process used data with production lineage: from now on its records are written
        at every run end (see the module's docstring)."""
        self._urgent = True

    def run_ended(self) -> None:
        """A run or logged model ended: write what waits if it is due (or the process urgent)."""
        since = self._since
        if since is not None and (
            self._urgent or _exiting or time.monotonic() - since >= FLUSH_AFTER
        ):
            self.flush()

    def _journal_or_none(self) -> Journal | None:
        if self._journal is None:
            spool = getattr(self.runtime.store, "spool", None)
            if spool is None:
                return None  # a store without a spool: write each record at once, as before
            self._journal = spool.journal()
        return self._journal

    def _start_timer(self) -> None:
        """A record waits: start the timer thread unless it runs (called with the lock held).
        It is never woken, and it writes only what no run end has written for twice
        :data:`FLUSH_AFTER` seconds (the process stopped logging): while runs end, their ends
        write, on the thread that ran them; a thread writing beside a training loop would take
        the GIL from it."""
        if self._timer is None:
            self._timer = threading.Thread(
                target=self._flush_when_idle, name="envguard-observations", daemon=True
            )
            self._timer.start()

    def _flush_when_idle(self) -> None:
        """The timer thread: it ends when nothing waits (it is started again by the next
        record), so that a process holds no thread, and no runtime, that it does not use."""
        while True:
            with self._lock:
                since = self._since
                if since is None:
                    self._timer = None
                    return
            now = time.monotonic()
            if since + 2 * FLUSH_AFTER > now:
                time.sleep(since + 2 * FLUSH_AFTER - now)
            elif not self.flush():  # the store failed: try again later, not in a busy loop
                time.sleep(FLUSH_AFTER)

    def flush(self) -> bool:
        """Write what waits in one transaction (spooled by the store when it is unavailable);
        False when the store failed and the records still wait (their journals kept)."""
        with self._writing:
            with self._lock:
                drafts, self._drafts = self._drafts, []
                journals = [*self._unwritten, *([self._journal] if self._journal else [])]
                self._journal, self._unwritten = None, []
                since, self._since = self._since, None
            if drafts:
                try:
                    self.runtime.store.append_many(drafts, required=False)
                except Exception as exc:  # noqa: BLE001 - observational: keep them, never raise
                    log.warning(
                        "envguard: %d lineage record(s) wait in %s: %s",
                        len(drafts),
                        ", ".join(str(j.path) for j in journals) or "memory",
                        exc,
                    )
                    with self._lock:
                        self._drafts[:0] = drafts
                        self._unwritten[:0] = journals
                        self._since = since
                    return False
            for journal in journals:
                journal.clear()
                journal.close()  # an empty journal is removed
            return True


def flush_all() -> None:
    """Write what waits in every runtime of this process (before a registry call, at exit)."""
    for observations in list(_open):
        if observations._since is not None:
            observations.flush()


@atexit.register
def _flush_at_exit() -> None:
    global _exiting  # noqa: PLW0603 - one flag per process
    _exiting = True
    flush_all()


def _forget_in_child() -> None:
    for observations in list(_open):
        observations._reset()


os.register_at_fork(after_in_child=_forget_in_child)
