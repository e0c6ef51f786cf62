"""Full validation of a policy table: the schema (pydantic) and the checks it cannot express.

Imported only when a policy is validated (a cold start, ``envguard policy validate``, or the first
use of :attr:`Policy.spec <envguard.policy.Policy.spec>`): a warm start reads the validated policy
from the cache (:mod:`envguard.policy.cache`) and never imports pydantic.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from envguard.errors import PolicyError, PolicyProblem
from envguard.policy.checks import check_references, problems_from_validation
from envguard.policy.schema import PolicySpec

__all__ = ["rebuild", "schema_fields", "validate"]


def validate(raw: Any, file: str, table: str) -> PolicySpec:
    """The validated policy, or :class:`PolicyError` listing every problem of ``raw``."""
    problems: list[PolicyProblem] = []
    spec: PolicySpec | None = None
    try:
        spec = PolicySpec.model_validate(raw)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, file, table, _ALLOWED))
    problems.extend(check_references(raw, file, table))
    if problems or spec is None:
        raise PolicyError(_dedupe(problems))
    return spec


def rebuild(data: dict[str, Any], file: str, cache_entry: str) -> PolicySpec:
    """The model of a table that validated before (a policy cache entry, as
    ``spec.model_dump(mode="json")`` gave it); :class:`PolicyError` if it no longer fits the
    schema (only a cache entry altered by hand, or pydantic changed under it)."""
    try:
        return PolicySpec.model_validate(data)
    except ValidationError as exc:
        raise PolicyError.single(
            file,
            "",
            f"its cached validated form ({cache_entry}) does not fit the schema "
            f"({exc.error_count()} problem(s)); delete that file and run the command again",
        ) from None


def _dedupe(problems: list[PolicyProblem]) -> list[PolicyProblem]:
    seen: set[PolicyProblem] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]


def schema_fields(model: type[BaseModel] = PolicySpec) -> dict[tuple[str, ...], list[str]]:
    """Every table path of the schema (``*`` for a name the user chooses) -> its field names."""
    out: dict[tuple[str, ...], list[str]] = {}

    def walk(current: type[BaseModel], path: tuple[str, ...]) -> None:
        out[path] = list(current.model_fields)
        for name, info in current.model_fields.items():
            target = _model_in(info.annotation)
            if target is None:
                continue
            mapped = _is_dict(info.annotation)
            walk(target, (*path, name, "*") if mapped else (*path, name))

    walk(model, ())
    return out


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for arg in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _is_dict(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is dict


_ALLOWED = schema_fields()
