"""The URLs of the DVC remotes a policy names by name, as DVC itself resolves them.

A policy may list a DVC remote by name (``dvc_remotes = ["prod-data"]``); a test reaches it by
its URL (an S3 bucket and prefix, or a folder). The URL comes from the DVC repository that holds
the test suite: the ``.dvc`` folder at or above the suite's root, read with DVC's own
configuration API (:class:`dvc.config.Config`: system, global, ``.dvc/config`` and
``.dvc/config.local``, each shadowing the one before; a relative path is taken relative to the
file that holds it). DVC is imported only when a production environment names a remote by name.
Without DVC, ``.dvc/config`` and ``.dvc/config.local`` are read as DVC writes them (INI), and
the system and global levels are not.
"""

from __future__ import annotations

import configparser
import os
import re
from pathlib import Path

from envguard.errors import InputError

__all__ = ["find_dvc_dir", "remote_urls"]

_SECTION = re.compile(r"""^\s*'?\s*remote\s+"(?P<name>[^"]+)"\s*'?\s*$""")


def find_dvc_dir(start: Path) -> Path | None:
    """The ``.dvc`` folder of the DVC repository at or above ``start``."""
    for folder in (start, *start.parents):
        candidate = folder / ".dvc"
        if candidate.is_dir():
            return candidate
    return None


def remote_urls(dvc_dir: Path) -> dict[str, str]:
    """Remote name -> URL (a local remote's path made absolute). Raises
    :class:`~envguard.errors.InputError` when the configuration cannot be read."""
    try:
        from dvc.config import Config
        from dvc.config import ConfigError as DvcConfigError
    except ImportError:
        return _from_ini(dvc_dir)
    try:
        config = Config(dvc_dir=str(dvc_dir), validate=True)
    except DvcConfigError as exc:
        raise InputError(str(dvc_dir), f"DVC cannot read its configuration: {exc}") from None
    found: dict[str, str] = {}
    for name, settings in dict(config.get("remote", {})).items():
        url = settings.get("url") if isinstance(settings, dict) else None
        if url:
            found[str(name)] = str(url)
    return found


def _from_ini(dvc_dir: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for filename in ("config", "config.local"):  # the local file shadows the repo's
        path = dvc_dir / filename
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as exc:
            raise InputError(str(path), f"unreadable DVC configuration: {exc}") from None
        for section in parser.sections():
            match = _SECTION.match(section)
            url = parser.get(section, "url", fallback=None)
            if match is None or not url:
                continue
            if "://" not in url and not os.path.isabs(url):
                url = os.path.abspath(os.path.join(dvc_dir, url))
            found[match["name"]] = url
    return found
