"""Which environment this process runs in.

In order: ``ENVGUARD_ENV``; the policy's ``default_env``; the first plugin whose
``envguard_detect_environment`` hook answers. A name the policy does not declare is an error that
names the declared ones, never a silent fallback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from envguard.errors import ConfigError, EnvironmentUnknown

if TYPE_CHECKING:
    from envguard.plugins import PluginManager
    from envguard.policy import Policy

__all__ = ["ENV_VAR", "ResolvedEnvironment", "resolve_environment"]

ENV_VAR = "ENVGUARD_ENV"


@dataclass(frozen=True)
class ResolvedEnvironment:
    """The environment this process runs in, and how envguard knows."""

    name: str
    tier: str
    source: str  # "ENVGUARD_ENV", "policy default_env", "plugin NAME"

    @property
    def is_prod(self) -> bool:
        return self.tier == "prod"


def resolve_environment(
    policy: Policy,
    plugins: PluginManager | None = None,
    environ: Mapping[str, str] | None = None,
) -> ResolvedEnvironment:
    environ = os.environ if environ is None else environ
    name = environ.get(ENV_VAR, "").strip()
    source = ENV_VAR
    if not name and policy.default_env:
        name, source = policy.default_env, f"default_env in {policy.path.name}"
    if not name and plugins is not None:
        detected = plugins.detect_environment(policy)
        if detected is not None:
            name, source = detected
    if not name:
        raise ConfigError(
            f"no environment: set {ENV_VAR} to one of "
            f"{', '.join(policy.environment_names)}, or set default_env in {policy.path}"
        )
    if not policy.has_environment(name):
        raise EnvironmentUnknown(name, policy.environment_names, source)
    return ResolvedEnvironment(name, policy.tier(name), source)
