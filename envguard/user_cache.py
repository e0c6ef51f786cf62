"""Files envguard keeps in the user's cache folder between commands (the validated-policy cache,
the plugin index): where they live, and how they are read and written.

``$XDG_CACHE_HOME/envguard/NAME`` (``~/.cache`` when the variable is unset or not absolute); no
folder, and so no cache, when there is no home folder either (no ``HOME``, no password entry).
A file is written atomically (temporary file, then ``os.replace``), folder 0700, file 0600, and
failing to write is logged at debug level only: a cache never stops a command. A file is read
only when this user owns it and nobody else may write it, like Python's own ``.pyc`` files: it
is as trusted as the user's cache folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["folder", "read_private", "write_private"]

log = logging.getLogger(__name__)


def folder(name: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_CACHE_HOME/envguard/NAME``; None when there is no home folder to fall back on."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME", "")
    try:
        root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    except RuntimeError:
        return None
    return root / "envguard" / name


def read_private(path: Path) -> bytes:
    """The bytes of ``path``; :class:`LookupError` when it is missing, unreadable, not owned
    by this user, or writable by others."""
    try:
        with path.open("rb") as file:
            st = os.fstat(file.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                raise LookupError(f"{path}: not owned by this user, or writable by others")
            return file.read()
    except OSError as exc:
        raise LookupError(f"{path}: {exc}") from None


def write_private(path: Path, body: bytes) -> None:
    """Write ``body`` to ``path`` atomically (folders 0700, file 0600); failing is logged."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(body)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("cache: cannot write %s: %s", path, exc)
        with contextlib.suppress(OSError):
            tmp.unlink()
