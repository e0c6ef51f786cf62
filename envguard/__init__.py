"""envguard keeps training, testing and production apart in ML pipelines.

``import envguard`` is light: it imports none of MLflow, DVC, boto3, Great Expectations, pandas
or pyarrow, and loads its own modules only when a name below is first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "hookimpl": "envguard.hookspecs",
    "hookspec": "envguard.hookspecs",
    "EnvGuardError": "envguard.errors",
    "ConfigError": "envguard.errors",
    "PolicyError": "envguard.errors",
    "EnvironmentUnknown": "envguard.errors",
    "PluginError": "envguard.errors",
    "InputError": "envguard.errors",
    "StoreError": "envguard.errors",
    "Denied": "envguard.errors",
    "EnvGuardDenied": "envguard.errors",
    "Policy": "envguard.policy",
    "load_policy": "envguard.policy",
    "find_policy": "envguard.policy",
    "ResolvedEnvironment": "envguard.environments",
    "resolve_environment": "envguard.environments",
    "Decision": "envguard.decisions",
    "Reason": "envguard.decisions",
    "Outcome": "envguard.decisions",
    "DataLineage": "envguard.decisions",
    "PromotionRequest": "envguard.decisions",
    "Approval": "envguard.decisions",
    "DataMovement": "envguard.decisions",
    "decide_data_use": "envguard.decisions",
    "decide_promotion": "envguard.decisions",
    "decide_data_movement": "envguard.decisions",
    "PluginManager": "envguard.plugins",
    "Runtime": "envguard.runtime",
}

__all__ = [
    "Approval",
    "ConfigError",
    "DataLineage",
    "DataMovement",
    "Decision",
    "Denied",
    "EnvGuardDenied",
    "EnvGuardError",
    "EnvironmentUnknown",
    "InputError",
    "Outcome",
    "PluginError",
    "PluginManager",
    "Policy",
    "PolicyError",
    "PromotionRequest",
    "Reason",
    "ResolvedEnvironment",
    "Runtime",
    "StoreError",
    "__version__",
    "decide_data_movement",
    "decide_data_use",
    "decide_promotion",
    "find_policy",
    "hookimpl",
    "hookspec",
    "load_policy",
    "resolve_environment",
]

if TYPE_CHECKING:
    from envguard.decisions import (
        Approval,
        DataLineage,
        DataMovement,
        Decision,
        Outcome,
        PromotionRequest,
        Reason,
        decide_data_movement,
        decide_data_use,
        decide_promotion,
    )
    from envguard.environments import ResolvedEnvironment, resolve_environment
    from envguard.errors import (
        ConfigError,
        Denied,
        EnvGuardDenied,
        EnvGuardError,
        EnvironmentUnknown,
        InputError,
        PluginError,
        PolicyError,
        StoreError,
    )
    from envguard.hookspecs import hookimpl, hookspec
    from envguard.plugins import PluginManager
    from envguard.policy import Policy, find_policy, load_policy
    from envguard.runtime import Runtime


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'envguard' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
