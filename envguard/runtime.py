"""The process's view of envguard: its policy, plugins, environment and actor, loaded lazily.

Integrations (MLflow's hooks, boto3's events, the DVC guard) ask :func:`current` for the runtime of
this process; the CLI builds one per command. Nothing is loaded until it is first needed, and each
part is loaded once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envguard.environments import ResolvedEnvironment
    from envguard.lineage.events import EventDraft, Link
    from envguard.lineage.sql import SqlLineageStore
    from envguard.plugins import PluginManager
    from envguard.policy import Policy

__all__ = ["Runtime", "current", "reset"]


class Runtime:
    """Policy, plugins, environment and actor for one process (or one CLI command)."""

    def __init__(
        self,
        policy_path: Path | str | None = None,
        environ: Mapping[str, str] | None = None,
        plugins: PluginManager | None = None,
    ) -> None:
        self._policy_path = Path(policy_path) if policy_path else None
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        if plugins is not None:
            self.__dict__["plugins"] = plugins

    @cached_property
    def policy(self) -> Policy:
        from envguard.policy import load_policy

        return load_policy(self._policy_path, environ=self.environ)

    @cached_property
    def plugins(self) -> PluginManager:
        from envguard.plugins import PluginManager

        return PluginManager(self.environ).load_entry_points()

    @cached_property
    def environment(self) -> ResolvedEnvironment:
        from envguard.environments import resolve_environment

        return resolve_environment(self.policy, self.plugins, self.environ)

    @cached_property
    def actor(self) -> str:
        return self.plugins.identity(self.policy)

    @cached_property
    def store(self) -> SqlLineageStore:
        """The policy's lineage store, opened (and created or upgraded) on first use."""
        from envguard.lineage import open_store

        return open_store(self.policy, self.environ)

    def draft(
        self,
        kind: str,
        *,
        entities: Sequence[str] = (),
        links: Sequence[Link] = (),
        payload: Mapping[str, Any] | None = None,
        environment: str | None = None,
    ) -> EventDraft:
        """An event draft stamped with this process's actor, environment and policy."""
        from envguard.lineage.events import EventDraft

        return EventDraft(
            kind,
            entities=entities,
            links=links,
            payload=dict(payload or {}),
            actor=self.actor,
            environment=environment or self.environment.name,
            policy_sha256=self.policy.sha256,
        )


_current: Runtime | None = None


def current() -> Runtime:
    """The runtime of this process, created on first use from the environment variables."""
    global _current  # noqa: PLW0603 - one runtime per process, created lazily
    if _current is None:
        _current = Runtime()
    return _current


def reset() -> None:
    """Forget the process's runtime (tests, or after changing ``ENVGUARD_*`` variables)."""
    global _current  # noqa: PLW0603
    _current = None
