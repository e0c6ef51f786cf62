"""envguard's DVC integration (extra ``dvc``): remotes mapped to environments, lineage from
``.dvc`` files and ``dvc.lock``, origin tags on stored objects, guards on reads and writes
across environments.

DVC is imported only inside the functions that use it. The guard's start-up code
(:mod:`envguard_dvc.autoload`) is loaded by file, without this package, so that Python processes
that never use DVC do not pay for envguard's plugin machinery.
"""

from __future__ import annotations

from envguard_dvc.hooks import (
    envguard_add_commands,
    envguard_resolve_origin,
    envguard_scan,
    envguard_tracked_files,
)

__all__ = [
    "envguard_add_commands",
    "envguard_resolve_origin",
    "envguard_scan",
    "envguard_tracked_files",
]
