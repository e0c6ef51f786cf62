"""Where the policy is: found without importing the policy's schema (so that callers such as
the pytest plugin can tell cheaply whether a project uses envguard at all).

In this order: the file ``ENVGUARD_CONFIG`` names; ``envguard.toml`` in the working directory or
the nearest parent; ``[tool.envguard]`` in the nearest ``pyproject.toml``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from envguard.errors import PolicyError

__all__ = ["CONFIG_ENV_VAR", "POLICY_FILENAME", "PolicySource", "find_policy"]

CONFIG_ENV_VAR = "ENVGUARD_CONFIG"
POLICY_FILENAME = "envguard.toml"


@dataclass(frozen=True)
class PolicySource:
    """Where a policy was found: the file, the table inside it, and how it was chosen."""

    path: Path
    table: str  # "" for envguard.toml, "tool.envguard" inside pyproject.toml
    how: str  # "ENVGUARD_CONFIG", "envguard.toml", "pyproject.toml"


def find_policy(
    start: Path | None = None, environ: Mapping[str, str] | None = None
) -> PolicySource:
    """Locate the policy, or raise :class:`PolicyError` saying where envguard looked."""
    environ = os.environ if environ is None else environ
    named = environ.get(CONFIG_ENV_VAR)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise PolicyError.single(
                str(path), "", f"{CONFIG_ENV_VAR} names this file, but it does not exist"
            )
        table = "tool.envguard" if path.name == "pyproject.toml" else ""
        return PolicySource(path.resolve(), table, CONFIG_ENV_VAR)
    here = (start or Path.cwd()).resolve()
    pyproject: Path | None = None
    for folder in (here, *here.parents):
        candidate = folder / POLICY_FILENAME
        if candidate.is_file():
            return PolicySource(candidate, "", POLICY_FILENAME)
        project = folder / "pyproject.toml"
        if pyproject is None and project.is_file() and _has_tool_table(project):
            pyproject = project
    if pyproject is not None:
        return PolicySource(pyproject, "tool.envguard", "pyproject.toml")
    raise PolicyError.single(
        str(here),
        "",
        f"no policy found: create {POLICY_FILENAME} here or in a parent folder "
        f"(`envguard policy init`), add [tool.envguard] to pyproject.toml, "
        f"or set {CONFIG_ENV_VAR}",
    )


def _has_tool_table(path: Path) -> bool:
    import tomllib  # here: only a search that meets a pyproject.toml needs it

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("tool"), dict) and "envguard" in data["tool"]
