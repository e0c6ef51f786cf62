"""The spool: where observational events wait while the lineage store cannot be written.

Each batch is one JSON-lines file, written to a temporary name, flushed to disk and renamed, so a
crash never leaves half a batch. File names sort by time, so replay preserves order. A replayer
claims a file by renaming it, so two processes never replay the same batch twice.

A :class:`Journal` holds the observational events a process defers (see ``defer`` in
:mod:`envguard.gate`) until it writes them in one transaction: one line each, written as the event
happens, under a hidden name that replay does not claim. When the process has died with events
still in its journal, the next replay adopts the journal as a batch, so a crash loses nothing
(an event written to the store just before a crash may be recorded twice, never lost).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

__all__ = ["Journal", "Spool"]


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, items: list[dict[str, Any]]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(3)}"
        tmp = self.folder / f".{name}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            for item in items:
                handle.write(json.dumps(item, sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        final = self.folder / f"{name}.jsonl"
        tmp.rename(final)
        return final

    def files(self) -> list[Path]:
        """The spooled batches, oldest first (one directory read: this runs before every
        append); a dead process's journal is adopted as a batch on the way."""
        try:
            names = os.listdir(self.folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        adopted = False
        for name in names:
            if name.startswith(".journal-") and name.endswith(".part"):
                adopted = self._adopt(self.folder / name) or adopted
        if adopted:
            names = os.listdir(self.folder)
        return sorted(
            self.folder / n for n in names if n.endswith(".jsonl") and not n.startswith(".")
        )

    def _adopt(self, journal: Path) -> bool:
        """Make a dead process's journal a batch (an empty one is removed); True if it did."""
        try:
            pid = int(journal.name.split("-")[1])
        except (IndexError, ValueError):
            return False
        if _alive(pid):
            return False
        try:
            if journal.stat().st_size == 0:
                journal.unlink()
                return False
            journal.rename(self.folder / f"{time.time_ns():020d}-{pid}-journal.jsonl")
        except FileNotFoundError:
            return False  # another process adopted it
        return True

    def journal(self) -> Journal:
        return Journal(self.folder)

    def count(self) -> int:
        total = 0
        for path in self.files():
            with path.open(encoding="utf-8") as handle:
                total += sum(1 for line in handle if line.strip())
        return total

    def pending(self) -> list[tuple[Path, list[dict[str, Any]]]]:
        """Claim every spooled batch (oldest first) for replay."""
        claimed: list[tuple[Path, list[dict[str, Any]]]] = []
        for path in self.files():
            mine = path.with_name(f"{path.name}.replaying-{os.getpid()}")
            try:
                path.rename(mine)
            except FileNotFoundError:
                continue  # another process claimed it
            items = [json.loads(line) for line in mine.read_text("utf-8").splitlines() if line]
            claimed.append((mine, items))
        return claimed

    def done(self, paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    def release(self, paths: list[Path]) -> None:
        """Give claimed batches back (the replay failed): they are replayed next time."""
        for path in paths:
            original = path.with_name(path.name.split(".replaying-")[0])
            path.rename(original)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


class Journal:
    """This process's deferred events, one JSON line each, until they are in the store."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / f".journal-{os.getpid()}-{secrets.token_hex(3)}.part"
        self._handle: Any = None

    def add(self, item: dict[str, Any]) -> None:
        """Append one event; written through to the OS (no fsync: a process crash keeps it)."""
        if self._handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps(item, sort_keys=True) + "\n")
        self._handle.flush()

    def clear(self) -> None:
        """Forget the journal's events: they are in the store (or in a spooled batch)."""
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()

    def close(self) -> None:
        """Close and remove an empty journal; one that still holds events stays for replay."""
        if self._handle is None:
            return
        empty = self._handle.tell() == 0
        self._handle.close()
        self._handle = None
        if empty:
            self.path.unlink(missing_ok=True)
