"""``envguard dvc install|uninstall``: switch the DVC guard on or off for a Python environment.

The guard is a one-line ``.pth`` file in the ``site-packages`` folder of the interpreter that runs
``dvc`` (the one running envguard, unless ``--site-dir`` says otherwise). Python executes it at
start-up; it runs ``envguard_dvc/autoload.py`` (without importing the package), and if envguard
is gone it does nothing. Nothing
is written into any repository: a colleague without envguard, or with another environment, sees
the repository exactly as before. Both commands are idempotent.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PTH_LINE", "PTH_NAME", "InstallReport", "install", "site_dir", "uninstall"]

PTH_NAME = "envguard_dvc_guard.pth"  # sorts after editable-install .pth files (processed first)
AUTOLOAD_NAME = "envguard_dvc_autoload"
# One line, executed by Python's `site` at start-up: find the plugin's folder without importing
# the package, and run autoload.py from it. If envguard is gone, nothing happens.
_PTH_CODE = f"""\
try:
    import os
    from importlib.util import find_spec, module_from_spec, spec_from_file_location
    _s = find_spec('envguard_dvc')
    _f = os.path.join(list(_s.submodule_search_locations)[0], 'autoload.py') if _s else ''
    if _f and os.path.isfile(_f):
        _spec = spec_from_file_location('{AUTOLOAD_NAME}', _f)
        _m = module_from_spec(_spec)
        sys.modules['{AUTOLOAD_NAME}'] = _m
        _spec.loader.exec_module(_m)
except (ImportError, OSError):
    pass
"""
PTH_LINE = f"import sys; exec({_PTH_CODE!r})\n"


@dataclass(frozen=True)
class InstallReport:
    path: str
    changed: bool
    installed: bool
    dvc_command: str | None  # the `dvc` found on PATH
    same_interpreter: bool | None  # does that `dvc` run the interpreter the guard is in?

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "changed": self.changed,
            "installed": self.installed,
            "dvc_command": self.dvc_command,
            "same_interpreter": self.same_interpreter,
        }


def site_dir() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _dvc_command(folder: Path) -> tuple[str | None, bool | None]:
    """The `dvc` on PATH, and whether its interpreter is the one whose site folder is ``folder``."""
    found = shutil.which("dvc")
    if found is None:
        return found, None
    try:
        first = Path(found).read_bytes()[:512].split(b"\n", 1)[0].decode(errors="replace")
    except OSError:
        return found, None
    if not first.startswith("#!"):
        return found, None
    interpreter = Path(first[2:].strip().split()[0]).absolute()
    ours = Path(sys.executable).absolute()
    return found, interpreter == ours or interpreter.parent.parent == Path(sys.prefix).absolute()


def install(folder: Path | None = None) -> InstallReport:
    folder = folder or site_dir()
    path = folder / PTH_NAME
    try:
        changed = not path.is_file() or path.read_text() != PTH_LINE
    except OSError:
        changed = True
    if changed:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(PTH_LINE)
    return InstallReport(str(path), changed, True, *_dvc_command(folder))


def uninstall(folder: Path | None = None) -> InstallReport:
    folder = folder or site_dir()
    path = folder / PTH_NAME
    changed = path.exists()
    path.unlink(missing_ok=True)
    return InstallReport(str(path), changed, False, *_dvc_command(folder))


def installed(folder: Path | None = None) -> bool:
    return ((folder or site_dir()) / PTH_NAME).is_file()
