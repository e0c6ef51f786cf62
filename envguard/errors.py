"""The exceptions envguard raises.

One root, so that a caller can catch everything envguard means to raise with one clause::

    EnvGuardError                  root; the CLI maps it to an exit code and one clear message
    ├── ConfigError                configuration is unusable (exit 2)
    │   ├── PolicyError            the policy file is missing or invalid; carries every problem
    │   ├── EnvironmentUnknown     an environment name the policy does not declare
    │   └── PluginError            a plugin could not be loaded or misbehaved
    ├── InputError                 bad input: a URI, a path, a proof, data (exit 2)
    ├── StoreError                 the lineage store cannot be opened or written
    └── Denied                     a decision denied an action; carries every reason (exit 1)

    EnvGuardDenied (BaseException) every denial: catch this one in user code
    ├── Denied                     (also an EnvGuardError, above)
    └── DeniedUnderAutologging     a denial raised where a library swallows ``Exception``

Nothing below the CLI prints or exits: it raises one of these, and the CLI decides how to show
it. ``except EnvGuardDenied`` catches every denial envguard raises, wherever it is raised.

Why a second root outside ``Exception``: some libraries run code that calls envguard inside a
blanket ``except Exception`` that logs and carries on. MLflow's autologging is one: its
``safe_patch`` turns any ``Exception`` raised while it logs (not by the training function itself)
into a warning, so a refused production dataset would let ``fit()`` train and return. A denial
raised there is a :class:`DeniedUnderAutologging`, which derives from ``BaseException`` (as
``KeyboardInterrupt`` and ``SystemExit`` do, for the same reason: it must stop the program's
work, not be logged by a generic handler) and from :class:`EnvGuardDenied`, so that
``except EnvGuardDenied`` still catches it. Everywhere else a denial is a plain :class:`Denied`
(an ``Exception``), as before. Both carry ``decision`` and the same message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envguard.decisions import Decision

__all__ = [
    "ConfigError",
    "Denied",
    "DeniedUnderAutologging",
    "EnvGuardDenied",
    "EnvGuardError",
    "EnvironmentUnknown",
    "InputError",
    "PluginError",
    "PolicyError",
    "PolicyProblem",
    "StoreError",
]


class EnvGuardDenied(BaseException):
    """Every denial envguard raises (see the module's docstring for why it is a BaseException:
    it is never raised itself, only :class:`Denied` and :class:`DeniedUnderAutologging` are)."""

    decision: Decision


class EnvGuardError(Exception):
    """Root of every exception envguard raises on purpose."""

    #: Exit code the CLI uses for this kind of error.
    exit_code: int = 2


class ConfigError(EnvGuardError):
    """The configuration (policy, environment, plugins) is unusable."""


@dataclass(frozen=True)
class PolicyProblem:
    """One problem in a policy: where it is and what was expected."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class PolicyError(ConfigError):
    """The policy is missing or invalid. ``problems`` lists every problem found, not the first."""

    def __init__(self, problems: Iterable[PolicyProblem]) -> None:
        self.problems: tuple[PolicyProblem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("PolicyError needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, field: str, message: str) -> PolicyError:
        return cls([PolicyProblem(file, field, message)])

    @property
    def file(self) -> str:
        return self.problems[0].file

    @property
    def field(self) -> str:
        return self.problems[0].field


class EnvironmentUnknown(ConfigError):
    """An environment name that the policy does not declare."""

    def __init__(self, name: str, known: Sequence[str], source: str) -> None:
        self.name = name
        self.known = tuple(known)
        self.source = source
        super().__init__(
            f"unknown environment {name!r} (from {source}); the policy declares: "
            f"{', '.join(self.known) or 'none'}. Set ENVGUARD_ENV to one of them."
        )


class PluginError(ConfigError):
    """A plugin failed to load, or a hook implementation misbehaved."""

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r}: {message}")


class InputError(EnvGuardError):
    """Bad input: a URI, a path, a proof or data that envguard cannot use.

    ``subject`` names the file, field or object; the message says what to do about it.
    """

    def __init__(self, subject: str, message: str) -> None:
        self.subject = subject
        super().__init__(f"{subject}: {message}")


class StoreError(EnvGuardError):
    """The lineage store cannot be opened, read or written."""


class Denied(EnvGuardError, EnvGuardDenied):
    """A decision denied an action. ``decision.reasons`` holds every reason, each with a remedy."""

    exit_code = 1

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.explain())


class DeniedUnderAutologging(EnvGuardDenied):
    """A denial raised inside MLflow autologging, whose ``safe_patch`` swallows every
    ``Exception`` its logging code raises: not an ``Exception``, so it stops the user's ``fit()``
    (see the module's docstring). ``except EnvGuardDenied`` catches it."""

    exit_code = 1

    def __init__(self, decision: Decision, note: str = "") -> None:
        self.decision = decision
        self.note = note
        super().__init__(decision.explain() + (f"\n{note}" if note else ""))
