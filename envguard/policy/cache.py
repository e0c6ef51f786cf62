"""The validated-policy cache: a warm start uses a policy without validating it again.

Validating a policy means importing pydantic and building the schema's classes, most of a short
command's start-up. A policy that validated is therefore kept, as JSON (its canonical sha256 and
the validated table with every default filled in), in ``$XDG_CACHE_HOME/envguard/policies/``
(``~/.cache/envguard/policies/`` by default), one file per key. The key is a sha256 over a format
tag, the policy's text, the table it was read from, and the source of the modules that decide
what is valid (this package's modules), so that a changed policy or a changed envguard misses.

Like Python's checked-hash ``.pyc`` files, an entry is as trusted as the user's cache folder:
envguard writes it (folder 0700, file 0600, atomically), and reads only a file that the user owns
and that nobody else may write. An entry that cannot be read, is corrupt or does not match its
key is ignored; the policy is then validated in full and the entry replaced. Failing to write
is not an error (logged at debug level). An invalid policy is never cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from envguard import user_cache

__all__ = ["FORMAT", "cache_folder", "cache_key", "entry_path", "read_entry", "write_entry"]

FORMAT = "envguard-policy-cache/1"
#: the modules whose code decides whether a policy is valid and what it means
_VALIDITY_MODULES = ("__init__.py", "schema.py", "checks.py", "validation.py", "cache.py")


def cache_folder(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_CACHE_HOME/envguard/policies`` (see :mod:`envguard.user_cache`)."""
    return user_cache.folder("policies", environ)


@cache
def _code_digest() -> bytes:
    """sha256 over the source of the modules that decide validity (read once per process)."""
    folder = Path(__file__).parent
    h = hashlib.sha256()
    for name in _VALIDITY_MODULES:
        data = (folder / name).read_bytes()
        h.update(b"%s\0%d\0" % (name.encode(), len(data)))
        h.update(data)
    return h.digest()


def cache_key(text: str, table: str) -> str:
    """The entry's key: format tag, policy text, source table, and the validating code."""
    h = hashlib.sha256()
    for part in (FORMAT.encode(), text.encode("utf-8"), table.encode("utf-8"), _code_digest()):
        h.update(b"%d\0" % len(part))
        h.update(part)
    return h.hexdigest()


def entry_path(key: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file that holds (or would hold) the entry of ``key``; None without a cache folder."""
    folder = cache_folder(environ)
    return None if folder is None else folder / f"{key}.json"


def read_entry(path: Path | None, key: str) -> tuple[str, dict[str, Any]]:
    """The cached ``(sha256, validated table)`` in ``path``; :class:`LookupError` when there is
    no usable entry (missing, unreadable, not ours, corrupt or for another key)."""
    if path is None:
        raise LookupError("no cache folder (no XDG_CACHE_HOME and no home folder)")
    try:
        entry = json.loads(user_cache.read_private(path))
    except ValueError as exc:  # not JSON or not UTF-8
        raise LookupError(f"{path}: {exc}") from None
    if not (
        isinstance(entry, dict)
        and entry.get("format") == FORMAT
        and entry.get("key") == key
        and isinstance(entry.get("sha256"), str)
        and len(entry["sha256"]) == 64
        and isinstance(entry.get("spec"), dict)
        and isinstance(entry["spec"].get("environments"), dict)
    ):
        raise LookupError(f"{path}: not an entry for this policy")
    return entry["sha256"], entry["spec"]


def write_entry(path: Path | None, key: str, sha256: str, spec: dict[str, Any]) -> None:
    """Store a validated policy in ``path``, atomically; failing to is logged, not raised."""
    if path is None:
        return
    # Keys keep their order: the order of environments is the policy's (messages list them so).
    body = json.dumps({"format": FORMAT, "key": key, "sha256": sha256, "spec": spec}).encode()
    user_cache.write_private(path, body)
