"""The files a DVC repository tracks, and the md5 DVC recorded for each, read without DVC.

``.dvc`` files and ``dvc.lock`` list every output with the md5 DVC computed when it was added or
produced. :func:`tracked_files` reads them (YAML only: DVC itself is not imported, nothing is
hashed) and maps each output file's absolute path to its content entity (``dvc-md5:HEX``), so that
an integration watching reads can gate a DVC-tracked file by the digest DVC already has. An output
directory contributes its files when DVC's cache holds the directory's listing (``HEX.dir``).

A file changed since DVC recorded it is still judged by the recorded content: the path is DVC's
name for that content, so production data that a user overwrote in place is not thereby cleared
(fails closed); ``dvc add`` / ``dvc commit`` record the new content.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from envguard_dvc.entities import content_entity
from envguard_dvc.state import find_repo_root

__all__ = ["tracked_files"]

_SKIP_DIRS = {".git", ".dvc", ".venv", "venv", "node_modules", "__pycache__", "mlruns"}
_MAX_DIRS = 20_000  # a walk this long is a data folder, not a repository's .dvc files


def _stage_files(root: Path) -> list[Path]:
    """Every ``*.dvc`` file and ``dvc.lock`` in the repository (hidden folders skipped)."""
    found: list[Path] = []
    for seen, (folder, dirs, files) in enumerate(os.walk(root)):
        if seen >= _MAX_DIRS:
            break
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
        found.extend(Path(folder) / f for f in files if f.endswith(".dvc") or f == "dvc.lock")
    return found


def _outs(stage_file: Path) -> list[dict[str, Any]]:
    from ruamel.yaml import YAML  # DVC's own YAML library (a dependency of dvc)
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe", pure=True).load(stage_file.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, YAMLError):
        return []  # DVC reports a broken stage file itself; nothing recorded to reuse here
    if not isinstance(data, dict):
        return []
    if stage_file.name == "dvc.lock":
        stages = data.get("stages") or {}
        outs = [o for s in stages.values() if isinstance(s, dict) for o in s.get("outs") or ()]
    else:
        outs = list(data.get("outs") or ())
    return [o for o in outs if isinstance(o, dict) and isinstance(o.get("path"), str)]


def _dir_listing(root: Path, md5: str) -> list[dict[str, Any]]:
    """DVC's listing of an output directory (``HEX.dir`` in the local cache), else empty."""
    for cache in (root / ".dvc" / "cache" / "files" / "md5", root / ".dvc" / "cache"):
        listing = cache / md5[:2] / md5[2:]
        try:
            entries = json.loads(listing.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    return []


def tracked_files(start: Path) -> dict[str, str]:
    """Absolute path -> ``dvc-md5:HEX`` for every output recorded in the repository holding
    ``start`` (empty outside a DVC repository)."""
    root = find_repo_root(start.resolve())
    if root is None:
        return {}
    tracked: dict[str, str] = {}
    for stage_file in _stage_files(root):
        for out in _outs(stage_file):
            md5 = out.get("md5")
            if not isinstance(md5, str):
                continue
            hash_name = "md5" if out.get("hash") == "md5" else "md5-dos2unix"
            path = os.path.realpath(stage_file.parent / out["path"])
            if not md5.endswith(".dir"):
                tracked[path] = content_entity(md5, hash_name)
                continue
            for entry in _dir_listing(root, md5):
                rel, file_md5 = entry.get("relpath"), entry.get("md5")
                if isinstance(rel, str) and isinstance(file_md5, str):
                    tracked[os.path.join(path, rel)] = content_entity(file_md5, hash_name)
    return tracked
