"""DVC's own record of what it hashed, read without importing DVC: the fast path of
``envguard data check`` on DVC-tracked files.

DVC keeps a *state* database (``dvc_data.hashfile.state.State``): for each file it hashed, the
md5 it found and a token of the file's inode, mtime and size at that time. DVC itself trusts a
file's md5 while the token matches (that is how ``dvc status`` avoids re-hashing), and so does
envguard: a file modified since DVC hashed it has another token, and is hashed afresh.

The database lives in DVC's site cache (``/var/tmp/dvc/repo/TOKEN/hashes/local/cache.db``, a
``diskcache`` SQLite file), under a folder whose name DVC derives from the repository. Rather than
re-derive DVC's private formula, ``envguard dvc sync`` (which runs with DVC loaded) writes the
folder's path to ``.dvc/tmp/envguard.json``; without that pointer there is no fast path.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ["POINTER", "StateRecord", "find_repo_root", "recorded_md5", "write_pointer"]

POINTER = Path(".dvc") / "tmp" / "envguard.json"
STATE_VERSION = 1  # dvc_data's State.HASH_VERSION this reader understands


@dataclass(frozen=True)
class StateRecord:
    """DVC's md5 of a file whose inode, mtime and size still match what DVC recorded."""

    path: str
    md5: str
    hash_name: str
    size: int
    database: str


def find_repo_root(path: Path) -> Path | None:
    """The nearest folder at or above ``path`` holding a ``.dvc`` folder."""
    for folder in (path if path.is_dir() else path.parent, *path.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def write_pointer(root: Path, site_cache_dir: str) -> None:
    """Record where DVC keeps this repository's state (called by ``envguard dvc sync``)."""
    target = root / POINTER
    data = {"site_cache_dir": site_cache_dir}
    try:
        if json.loads(target.read_text()) == data:
            return
    except (OSError, ValueError):
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, target)


def _token(st: os.stat_result) -> str:
    """dvc_data's state checksum: fsspec's tokenize([inode, mtime, size]) as a decimal int."""
    text = str(([st.st_ino, st.st_mtime, st.st_size],))
    return str(int(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(), 16))


def recorded_md5(path: Path) -> StateRecord | None:  # noqa: PLR0911 - each way of not knowing
    """DVC's md5 of ``path`` when DVC's state holds it and the file is unchanged since; else
    None (not in a DVC repository, never hashed by DVC, modified, or no pointer yet)."""
    try:
        os.stat(path)  # first: most names asked about (a dataset's name) are no file
        resolved = path.resolve()
        st = resolved.stat()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return None
    root = find_repo_root(resolved)
    if root is None:
        return None
    try:
        pointer = json.loads((root / POINTER).read_text())
        database = Path(pointer["site_cache_dir"]) / "hashes" / "local" / "cache.db"
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not database.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute(
                "SELECT value FROM Cache WHERE key = ? AND raw = 1", (str(resolved),)
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    try:
        entry = json.loads(row[0])
        version = entry.get("version")
        checksum = entry["checksum"]
        (hash_name, md5), *_ = entry["hash_info"].items()
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if version is None:
        hash_name = "md5-dos2unix"  # as dvc_data reads entries written by DVC 2
    elif version > STATE_VERSION:
        return None
    if checksum != _token(st) or not isinstance(md5, str):
        return None
    return StateRecord(str(resolved), md5, hash_name, st.st_size, str(database))
