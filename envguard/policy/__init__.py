"""The policy: which environments exist, what belongs to each, and what crossing a boundary needs.

Found, in this order: the file ``ENVGUARD_CONFIG`` names; ``envguard.toml`` in the working
directory or the nearest parent; ``[tool.envguard]`` in the nearest ``pyproject.toml``.
:func:`load_policy` reads and validates it and reports every problem at once
(:class:`~envguard.errors.PolicyError`). The policy's sha256 is taken over a canonical JSON form of
its table (sorted keys, no whitespace), so comments and formatting do not change it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from envguard.errors import EnvironmentUnknown, PolicyError, PolicyProblem
from envguard.policy.checks import check_references, problems_from_validation
from envguard.policy.schema import EnvironmentSpec, PolicySpec, PromotionRule
from envguard.policy_source import CONFIG_ENV_VAR, POLICY_FILENAME, PolicySource, find_policy
from envguard.uris import normalize_uri, parse_location

__all__ = [
    "CONFIG_ENV_VAR",
    "POLICY_FILENAME",
    "Policy",
    "PolicySource",
    "find_policy",
    "load_policy",
    "parse_policy",
    "schema_fields",
]


def load_policy(
    source: PolicySource | Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Policy:
    """Find (unless given), read and validate the policy."""
    if source is None:
        source = find_policy(environ=environ)
    elif not isinstance(source, PolicySource):
        path = Path(source)
        table = "tool.envguard" if path.name == "pyproject.toml" else ""
        source = PolicySource(path.resolve(), table, "path")
    try:
        text = source.path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError.single(str(source.path), "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError.single(str(source.path), "", f"cannot read: {exc}") from None
    return parse_policy(text, source)


def parse_policy(text: str, source: PolicySource) -> Policy:
    file = str(source.path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError.single(file, "", f"invalid TOML: {exc}") from None
    raw: Any = data
    if source.table:
        for part in source.table.split("."):
            raw = raw.get(part) if isinstance(raw, dict) else None
        if not isinstance(raw, dict):
            raise PolicyError.single(file, source.table, "table not found")
    if not raw:
        raise PolicyError.single(
            file,
            source.table,
            "the policy is empty: declare at least one environment "
            "([environments.NAME] with tier = 'prod' or 'non-prod')",
        )
    problems: list[PolicyProblem] = []
    spec: PolicySpec | None = None
    try:
        spec = PolicySpec.model_validate(raw)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, file, source.table, _ALLOWED))
    problems.extend(check_references(raw, file, source.table))
    if problems or spec is None:
        raise PolicyError(_dedupe(problems))
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return Policy(spec, source, hashlib.sha256(canonical.encode()).hexdigest())


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


class Policy:
    """A validated policy with the questions integrations ask of it."""

    def __init__(self, spec: PolicySpec, source: PolicySource, sha256: str) -> None:
        self.spec = spec
        self.source = source
        self.sha256 = sha256

    def __repr__(self) -> str:
        return f"<Policy {self.source.path} sha256={self.sha256[:12]}>"

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the policy are resolved against."""
        return self.source.path.parent

    @property
    def mode(self) -> str:
        return self.spec.mode

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    # -- environments ---------------------------------------------------------------------------
    @property
    def environment_names(self) -> list[str]:
        return list(self.spec.environments)

    def environment(self, name: str, source: str = "the caller") -> EnvironmentSpec:
        try:
            return self.spec.environments[name]
        except KeyError:
            raise EnvironmentUnknown(name, self.environment_names, source) from None

    def tier(self, name: str) -> str:
        return self.environment(name).tier

    def is_prod(self, name: str) -> bool:
        return self.environment(name).tier == "prod"

    def promotion_rule(self, env: str) -> PromotionRule | None:
        return self.spec.promotion.get(env)

    # -- registry -------------------------------------------------------------------------------
    @cached_property
    def _aliases(self) -> dict[str, str]:
        return {k.casefold(): v for k, v in self.spec.registry.aliases.items()}

    @cached_property
    def _stages(self) -> dict[str, str]:
        return {k.casefold(): v for k, v in self.spec.registry.stages.items()}

    def env_for_alias(self, alias: str) -> str | None:
        return self._aliases.get(alias.casefold())

    def env_for_stage(self, stage: str) -> str | None:
        return self._stages.get(stage.casefold())

    def env_for_model(self, name: str) -> str | None:
        return self.spec.registry.models.get(name)

    def resolve_target(self, target: str) -> str:
        """An environment named directly, by alias or by stage -> the environment's name."""
        if target in self.spec.environments:
            return target
        env = self.env_for_alias(target) or self.env_for_stage(target)
        if env is None:
            raise EnvironmentUnknown(target, self.environment_names, "the target")
        return env

    # -- roles ----------------------------------------------------------------------------------
    def roles_of(self, identity: str) -> set[str]:
        return set(self.spec.roles.get(identity, ()))

    def holders(self, role: str) -> set[str]:
        return {who for who, roles in self.spec.roles.items() if role in roles}

    # -- locations ------------------------------------------------------------------------------
    def env_for_location(self, uri: str) -> str | None:
        """The environment whose S3 buckets/prefixes or artifact locations contain ``uri``."""
        loc = parse_location(uri)
        best: tuple[int, str] | None = None
        for name, env in self.spec.environments.items():
            for claimed in (*env.s3, *env.artifact_locations):
                c = parse_location(claimed)
                if c.contains(loc) and (best is None or len(c.path) > best[0]):
                    best = (len(c.path), name)
        return best[1] if best else None

    def env_for_mlflow_uri(self, uri: str) -> str | None:
        wanted = normalize_uri(uri)
        for name, env in self.spec.environments.items():
            if wanted in {
                normalize_uri(u) for u in (*env.mlflow_tracking_uris, *env.mlflow_registry_uris)
            }:
                return name
        return None

    def env_for_dvc_remote(self, name: str, url: str | None = None) -> str | None:
        """A DVC remote's environment, by its name, else by its URL (exact or containing)."""
        for env_name, env in self.spec.environments.items():
            if name in env.dvc_remotes:
                return env_name
        if url:
            wanted = normalize_uri(url)
            for env_name, env in self.spec.environments.items():
                if wanted in {normalize_uri(r) for r in env.dvc_remotes}:
                    return env_name
            return self.env_for_location(url) if "://" in url else None
        return None

    def env_for_host(self, host_or_url: str) -> str | None:
        wanted = normalize_uri(host_or_url).lower()
        for name, env in self.spec.environments.items():
            if wanted in {normalize_uri(h).lower() for h in env.hosts}:
                return name
        return None

    def to_dict(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json")
