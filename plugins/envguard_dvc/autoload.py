"""Loaded at interpreter start-up by the ``.pth`` file ``envguard dvc install`` writes; costs a
few microseconds in processes that never import DVC.

It puts one finder at the front of ``sys.meta_path`` that watches three of DVC's modules
(``dvc.repo``, ``dvc.data_cloud``, ``dvc.api.data``). When DVC imports one of them, the module
loads as usual, and then :func:`envguard_dvc.guard.install_on` wraps the functions through which
DVC reads and writes remotes. Nothing else is imported here: not envguard, not DVC.
"""

from __future__ import annotations

import os
import sys
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any

__all__ = ["WATCHED", "GuardFinder"]

WATCHED = frozenset({"dvc.repo", "dvc.data_cloud", "dvc.api.data"})


class GuardFinder(MetaPathFinder):
    """Finds the watched modules as Python would, and guards them once they have loaded."""

    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in WATCHED:
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader: Loader = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _guard(fullname, module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _guard(name: str, module: ModuleType) -> None:
    if os.environ.get("ENVGUARD_DISABLE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return
    try:
        from envguard_dvc.guard import install_on
    except ImportError:  # envguard was removed, the .pth file stayed: DVC runs unguarded
        return
    install_on(name, module)


if not any(isinstance(finder, GuardFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, GuardFinder())
