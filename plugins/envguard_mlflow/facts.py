"""What envguard knows about this process, once: environment, tier, policy, actor, host, code.

Everything here is computed on first use and cached for the life of the process (until
:func:`envguard.runtime.reset`), because a training loop may create hundreds of runs and none of
these facts changes between them: ``git rev-parse`` runs once, the policy is read once.

:func:`current_facts` returns ``None`` when envguard is off for this process:
``ENVGUARD_DISABLE=1``, an MLflow server process (the server-side gate is a separate app), or no
envguard configuration at all (no policy found, and neither ``ENVGUARD_ENV`` nor
``ENVGUARD_CONFIG`` set). Any other problem (a policy that does not parse, an ``ENVGUARD_ENV`` the
policy does not declare) raises, so that the first MLflow call fails with envguard's message
before anything is written.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from envguard.decisions import Decision, Reason
    from envguard.environments import ResolvedEnvironment
    from envguard.policy import Policy
    from envguard.runtime import Runtime
    from envguard_mlflow.observations import Observations

__all__ = [
    "SERVER_MARKER_ENV_VAR",
    "TAG_PREFIX",
    "ProcessFacts",
    "apply_decision",
    "current_facts",
    "standing_aside",
]

log = logging.getLogger(__name__)

TAG_PREFIX = "envguard."
#: Set by ``mlflow server`` for its worker processes: there the client-side guard stands aside.
SERVER_MARKER_ENV_VAR = "_MLFLOW_SERVER_BOOT_ID"


def _git_commit(start: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=start,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) in (40, 64) else None


def _code_dir() -> Path:
    """The folder of the script being run (as MLflow's git context uses), else the cwd."""
    main = sys.argv[0] if sys.argv else ""
    if main and os.path.isfile(main):
        return Path(main).resolve().parent
    return Path.cwd()


@dataclass
class ProcessFacts:
    """The facts of one process that envguard writes on runs, models and datasets."""

    runtime: Runtime

    @property
    def policy(self) -> Policy:
        return self.runtime.policy

    @property
    def environment(self) -> ResolvedEnvironment:
        return self.runtime.environment

    @cached_property
    def host(self) -> str:
        return socket.gethostname()

    @cached_property
    def git_commit(self) -> str | None:
        return _git_commit(_code_dir())

    @cached_property
    def tags(self) -> dict[str, str]:
        """The tags every run, logged model and dataset input gets, in a stable order."""
        env = self.environment
        tags = {
            "envguard.env": env.name,
            "envguard.tier": env.tier,
            "envguard.policy_sha256": self.policy.sha256,
            "envguard.actor": self.runtime.actor,
            "envguard.host": self.host,
        }
        if self.git_commit:
            tags["envguard.git_commit"] = self.git_commit
        return tags

    @cached_property
    def env_tags(self) -> dict[str, str]:
        """The environment part of :attr:`tags`: what a dataset input carries."""
        keys = ("envguard.env", "envguard.tier", "envguard.policy_sha256")
        return {k: self.tags[k] for k in keys}

    @cached_property
    def observations(self) -> Observations:
        """This process's deferred observational records (written once per run)."""
        from envguard_mlflow.observations import Observations

        return Observations(self.runtime)

    @cached_property
    def tracked_files(self) -> dict[str, str]:
        """Files the plugins track under the working directory (path -> recorded content), whose
        reads a run in a non-production environment gates (:mod:`envguard_mlflow.reads`)."""
        if self.environment.tier == "prod":
            return {}
        return self.runtime.plugins.tracked_files(os.getcwd(), self.policy)

    def spool_path(self) -> Path:
        """Where this process appends its records for the lineage store to pick up."""
        return self.policy.lineage_spool_dir / "mlflow.jsonl"


_cache: tuple[Runtime, ProcessFacts | None] | None = None


def _not_configured(runtime: Runtime) -> bool:
    """No ``ENVGUARD_ENV``/``ENVGUARD_CONFIG`` and no policy file: found by the light locator,
    so that a process without envguard configuration never imports the policy's schema."""
    from envguard.errors import PolicyError
    from envguard.policy_source import CONFIG_ENV_VAR, find_policy

    if runtime.environ.get("ENVGUARD_ENV") or runtime.environ.get(CONFIG_ENV_VAR):
        return False
    try:
        find_policy(environ=runtime.environ)
    except PolicyError:
        return True
    return False


def _is_mlflow_server_command() -> bool:
    """True in the ``mlflow server`` command itself, which builds the backend stores before it
    starts its workers (they carry SERVER_MARKER_ENV_VAR): a server is not a training client;
    the server-side gate guards it."""
    import sys

    argv = sys.argv
    return (
        len(argv) > 1
        and argv[1] == "server"
        and "mlflow"
        in os.path.basename(
            os.path.dirname(argv[0]) if argv[0].endswith("__main__.py") else argv[0]
        )
    )


def _disabled(environ: Mapping[str, str]) -> bool:
    """``envguard.plugins.client_side_disabled`` without importing the plugin manager (pluggy,
    the hook specs): a process with envguard off pays nothing for it at MLflow's first use."""
    return environ.get("ENVGUARD_DISABLE", "").strip().lower() in {"1", "true", "yes", "on"}


def current_facts() -> ProcessFacts | None:
    """This process's facts, or ``None`` when envguard is off here (see the module's docstring)."""
    global _cache  # noqa: PLW0603 - one cache per process, tied to the runtime it came from
    from envguard import runtime as runtime_module

    runtime = runtime_module.current()
    if _cache is not None and _cache[0] is runtime:
        return _cache[1]
    facts: ProcessFacts | None = None
    if (
        _disabled(runtime.environ)
        or runtime.environ.get(SERVER_MARKER_ENV_VAR)
        or _is_mlflow_server_command()
    ):
        facts = None
    elif _not_configured(runtime):
        log.debug("envguard: no policy and no ENVGUARD_ENV/ENVGUARD_CONFIG; MLflow runs plain")
    else:
        facts = ProcessFacts(runtime)
        facts.tags  # noqa: B018 - resolve everything now, so that errors surface at the first call
    _cache = (runtime, facts)
    return facts


@contextmanager
def standing_aside() -> Iterator[None]:
    """Within, this process's MLflow calls run plain: the audit scan reads the servers of every
    environment, and an auditor's read is not a crossing between environments."""
    global _cache  # noqa: PLW0603
    from envguard import runtime as runtime_module

    saved = _cache
    _cache = (runtime_module.current(), None)
    try:
        yield
    finally:
        _cache = saved


def apply_decision(decision: Decision, facts: ProcessFacts) -> None:
    """Enforce a decision under the policy's mode: deny raises, warn warns, audit records."""
    from envguard.decisions import Outcome

    if decision.violated:
        facts.runtime.plugins.on_violation(decision, facts.policy)  # fails open by itself
    if decision.outcome is Outcome.WARN:
        warnings.warn(decision.explain(), stacklevel=3)
    elif decision.outcome is Outcome.RECORD:
        log.info("%s", decision.explain())
    decision.enforce()


def decide(
    facts: ProcessFacts, action: str, subject: str, reasons: list[Reason]
) -> Decision | None:
    """A decision for ``reasons`` (None when there are none), already applied."""
    if not reasons:
        return None
    from envguard.decisions import conclude

    decision = conclude(action, subject, reasons, facts.policy, facts.environment.name)
    apply_decision(decision, facts)
    return decision
