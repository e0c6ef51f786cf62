"""The spool: where observational events wait while the lineage store cannot be written.

Each batch is one JSON-lines file, written to a temporary name, flushed to disk and renamed, so a
crash never leaves half a batch. File names sort by time, so replay preserves order. A replayer
claims a file by renaming it, so two processes never replay the same batch twice.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

__all__ = ["Spool"]


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
        if not self.folder.is_dir():
            return []
        return sorted(self.folder.glob("*.jsonl"))

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
