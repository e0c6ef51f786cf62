"""The plugin index: which plugins the installed distributions declare, kept between commands.

Finding plugins means importing :mod:`importlib.metadata` (with :mod:`email` and :mod:`zipfile`),
reading the entry points of every installed distribution, and checking the requirements of
envguard's extras (with :mod:`packaging`): about a third of a short command such as
``envguard data check``, the same answer every time until a distribution is installed, upgraded or
removed. That answer (each entry point of the group ``envguard``: its name, its object, its
distribution and version, and why it is inactive when its extra is not installed) is kept in
``$XDG_CACHE_HOME/envguard/plugins/`` (``~/.cache`` by default), one file per ``sys.path``.

The file records the modification time (in nanoseconds) of every entry of ``sys.path``. Installing,
upgrading or removing a distribution adds, renames or deletes a ``*.dist-info`` folder in one of
them, which changes that time: the same signal :mod:`importlib` relies on to cache what a folder
holds. Any difference, or a file that is unreadable, corrupt, written by envguard's other code, not
the user's own or writable by others, and the plugins are found again through
:mod:`importlib.metadata` and the file rewritten (folder 0700, file 0600, atomically; failing to
write is logged at debug level only). Nothing is loaded from the index but the names: each plugin
is still imported and registered at every start, so a plugin that fails to import is reported
``broken`` as before, and ``ENVGUARD_DISABLED_PLUGINS`` applies as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

from envguard import user_cache

__all__ = ["DeclaredPlugin", "declared_plugins", "index_folder", "load_object"]

log = logging.getLogger(__name__)

FORMAT = "envguard-plugin-index/1"


@dataclass(frozen=True)
class DeclaredPlugin:
    """One entry point of the group ``envguard``, as its distribution declares it."""

    name: str
    value: str  # ``module`` or ``module:attribute``
    distribution: str | None
    version: str | None
    missing: str | None  # the install command when its extra is not installed, else None


def index_folder(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_CACHE_HOME/envguard/plugins`` (see :mod:`envguard.user_cache`)."""
    return user_cache.folder("plugins", environ)


@cache
def _code_digest() -> str:
    """sha256 over the code that finds plugins and decides which are inactive."""
    h = hashlib.sha256(FORMAT.encode())
    for name in ("plugins.py", "plugin_index.py"):
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()


def _stamp(path: list[str]) -> list[list[Any]]:
    """Each ``sys.path`` entry with its modification time (None when it does not exist)."""
    stamp: list[list[Any]] = []
    for entry in path:
        try:
            mtime: int | None = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = None
        stamp.append([entry, os.path.abspath(entry or "."), mtime])
    return stamp


def declared_plugins(
    discover: Callable[[], list[DeclaredPlugin]], environ: Mapping[str, str] | None = None
) -> list[DeclaredPlugin]:
    """The plugins ``discover()`` finds, from the index when nothing on ``sys.path`` changed."""
    folder = index_folder(environ)
    if folder is None:
        return discover()
    path = list(sys.path)
    key = hashlib.sha256(json.dumps([_code_digest(), path]).encode()).hexdigest()
    file = folder / f"{key}.json"
    stamp = _stamp(path)
    try:
        return _read(file, key, stamp)
    except LookupError as exc:
        log.debug("plugin index miss: %s", exc)
    found = discover()
    _write(file, {"format": FORMAT, "key": key, "stamp": stamp, "plugins": found})
    return found


def _read(file: Path, key: str, stamp: list[list[Any]]) -> list[DeclaredPlugin]:
    try:
        entry = json.loads(user_cache.read_private(file))
        if entry["format"] != FORMAT or entry["key"] != key:
            raise LookupError(f"{file}: not this index")
        if entry["stamp"] != stamp:
            raise LookupError(f"{file}: sys.path changed since it was written")
        return [DeclaredPlugin(**item) for item in entry["plugins"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LookupError(f"{file}: {type(exc).__name__}: {exc}") from None


def _write(file: Path, entry: dict[str, Any]) -> None:
    entry = {**entry, "plugins": [asdict(p) for p in entry["plugins"]]}
    user_cache.write_private(file, json.dumps(entry).encode())


def load_object(value: str) -> object:
    """What an entry point's value names (``module`` or ``module:attr.attr``), as
    :meth:`importlib.metadata.EntryPoint.load` loads it."""
    module, _, attrs = value.partition(":")
    found: object = import_module(module.strip())
    for attr in filter(None, attrs.strip().split(".")):
        found = getattr(found, attr)
    return found
