"""What the guarded tracking and registry stores share: MLflow's own store object, given a
subclass of its own class with envguard's mixin in front, and the store's URI checked against
this process's environment once per runtime."""

from __future__ import annotations

from typing import Any, ClassVar

from envguard_mlflow import guards
from envguard_mlflow.facts import ProcessFacts, current_facts

__all__ = ["GuardedStore", "guard_store"]

# The mixin's super() is the concrete MLflow store class it is mixed before (untyped for mypy).
_Base: Any = object


class GuardedStore(_Base):  # type: ignore[misc]  # mixed into untyped MLflow classes
    """Base of the store mixins: ``_envguard_kind`` names the URI checked ("tracking", ...)."""

    _envguard_kind: ClassVar[str]
    _envguard_uri: str
    _envguard_checked_for: ProcessFacts | None

    def _envguard_facts(self) -> ProcessFacts | None:
        """This process's facts (None: act as plain MLflow), the store's URI checked against
        them once: again only when the runtime changes (a test switching ``ENVGUARD_ENV``)."""
        facts = current_facts()
        if facts is not None and facts is not self._envguard_checked_for:
            guards.check_location(facts, self._envguard_uri, self._envguard_kind)
            self._envguard_checked_for = facts
            self._envguard_new_facts()
        return facts

    def _envguard_new_facts(self) -> None:
        """Called when the store is first used under a runtime: drop what depended on the last."""


_guarded_classes: dict[tuple[type, type], type] = {}


def guard_store(store: Any, uri: str, mixin: type[GuardedStore]) -> Any:
    """Give ``store`` (built by MLflow) a subclass of its own class with ``mixin`` in front."""
    if isinstance(store, mixin):
        return store
    cls = type(store)
    guarded = _guarded_classes.get((mixin, cls))
    if guarded is None:
        guarded = type(f"Guarded{cls.__name__}", (mixin, cls), {})
        _guarded_classes[(mixin, cls)] = guarded
    store.__class__ = guarded
    store._envguard_uri = uri
    store._envguard_checked_for = None
    return store
