"""The policy: which environments exist, what belongs to each, and what crossing a boundary needs.

Found, in this order: the file ``ENVGUARD_CONFIG`` names; ``envguard.toml`` in the working
directory or the nearest parent; ``[tool.envguard]`` in the nearest ``pyproject.toml``.
:func:`load_policy` reads and validates it and reports every problem at once
(:class:`~envguard.errors.PolicyError`). The policy's sha256 is taken over a canonical JSON form of
its table (sorted keys, no whitespace), so comments and formatting do not change it.

A policy that validated is cached (:mod:`envguard.policy.cache`): a warm start builds the
:class:`Policy` from the cached, validated table, without importing pydantic. The questions
integrations ask on every run (tiers, locations, aliases, the lineage store) read that table;
:attr:`Policy.spec`, the pydantic model, is built on first use.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import EnvironmentUnknown, PolicyError
from envguard.policy_source import CONFIG_ENV_VAR, POLICY_FILENAME, PolicySource, find_policy
from envguard.uris import normalize_uri, parse_location

if TYPE_CHECKING:
    from envguard.policy.schema import EnvironmentSpec, PolicySpec, PromotionRule

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

log = logging.getLogger(__name__)


def load_policy(
    source: PolicySource | Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    cache: bool = True,
) -> Policy:
    """Find (unless given), read and validate the policy. ``cache=False`` validates in full even
    when the policy cache holds it (``envguard policy validate``)."""
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
    return parse_policy(text, source, cache=cache)


def parse_policy(
    text: str,
    source: PolicySource,
    *,
    cache: bool = True,
) -> Policy:
    """Validate ``text`` (the policy file's content) as the policy of ``source``. With ``cache``,
    a policy validated before (same text, table and envguard code) is taken from the cache; a
    policy that validates is written to the cache either way."""
    from envguard.policy import cache as policy_cache

    key = policy_cache.cache_key(text, source.table)
    # The cache belongs to the user running this process: its folder comes from the process's own
    # XDG_CACHE_HOME, whatever variables load_policy's caller asked envguard to act under.
    entry = policy_cache.entry_path(key)
    if cache:
        try:
            sha256, data = policy_cache.read_entry(entry, key)
        except LookupError as exc:
            log.debug("policy cache miss: %s", exc)
        else:
            return Policy(None, source, sha256, data=data, cache_entry=entry)
    policy = _validated(text, source)
    policy_cache.write_entry(entry, key, policy.sha256, policy.data)
    return policy


def _validated(text: str, source: PolicySource) -> Policy:
    import tomllib

    from envguard.policy.validation import validate

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
    spec = validate(raw, file, source.table)
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return Policy(spec, source, hashlib.sha256(canonical.encode()).hexdigest())


def __getattr__(name: str) -> Any:
    if name == "schema_fields":  # imports pydantic: only when asked for
        from envguard.policy.validation import schema_fields

        return schema_fields
    raise AttributeError(f"module 'envguard.policy' has no attribute {name!r}")


class Policy:
    """A validated policy with the questions integrations ask of it.

    Built from the validated model (``spec``) or, on a warm start, from the validated table
    (``data``, as ``spec.model_dump(mode="json")`` gives it) alone: the accessors below read the
    table, and :attr:`spec` is rebuilt from it on first use.
    """

    def __init__(
        self,
        spec: PolicySpec | None,
        source: PolicySource,
        sha256: str,
        *,
        data: dict[str, Any] | None = None,
        cache_entry: Path | None = None,
    ) -> None:
        if data is None:
            if spec is None:
                raise TypeError("Policy needs its spec or its validated table")
            data = spec.model_dump(mode="json")
        self._spec = spec
        self.data: dict[str, Any] = data
        #: the policy cache's file this policy was read from (None: validated in this process)
        self.cache_entry = cache_entry
        self.source = source
        self.sha256 = sha256

    def __repr__(self) -> str:
        return f"<Policy {self.source.path} sha256={self.sha256[:12]}>"

    @property
    def spec(self) -> PolicySpec:
        """The policy as its pydantic model (imports pydantic; built on first use)."""
        if self._spec is None:
            from envguard.policy.validation import rebuild

            self._spec = rebuild(self.data, str(self.path), str(self.cache_entry))
        return self._spec

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def base_dir(self) -> Path:
        """The folder relative paths in the policy are resolved against."""
        return self.source.path.parent

    @property
    def mode(self) -> str:
        mode: str = self.data["mode"]
        return mode

    @property
    def default_env(self) -> str | None:
        """The environment used when ``ENVGUARD_ENV`` is not set."""
        name: str | None = self.data["default_env"]
        return name

    @property
    def strict_uris(self) -> bool:
        """Refuse locations that no environment lists."""
        return bool(self.data["strict_uris"])

    def resolve_path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    # -- environments ---------------------------------------------------------------------------
    @property
    def _environments(self) -> dict[str, dict[str, Any]]:
        envs: dict[str, dict[str, Any]] = self.data["environments"]
        return envs

    @property
    def environment_names(self) -> list[str]:
        return list(self._environments)

    def has_environment(self, name: str) -> bool:
        return name in self._environments

    def check_environment(self, name: str, source: str = "the caller") -> None:
        """:class:`EnvironmentUnknown` unless the policy declares ``name``."""
        if name not in self._environments:
            raise EnvironmentUnknown(name, self.environment_names, source)

    def environment(self, name: str, source: str = "the caller") -> EnvironmentSpec:
        self.check_environment(name, source)
        return self.spec.environments[name]

    def tier(self, name: str) -> str:
        self.check_environment(name)
        tier: str = self._environments[name]["tier"]
        return tier

    def is_prod(self, name: str) -> bool:
        return self.tier(name) == "prod"

    def locations(self, name: str, *fields: str) -> list[str]:
        """The locations environment ``name`` lists in ``fields`` (``s3``, ``dvc_remotes``,
        ``mlflow_tracking_uris``, ``artifact_locations``, ``hosts``, ...), in that order."""
        env = self._environments[name]
        return [item for field in fields for item in env[field]]

    def promotion_rule(self, env: str) -> PromotionRule | None:
        return self.spec.promotion.get(env)

    # -- registry -------------------------------------------------------------------------------
    @cached_property
    def _aliases(self) -> dict[str, str]:
        return {k.casefold(): v for k, v in self.data["registry"]["aliases"].items()}

    @cached_property
    def _stages(self) -> dict[str, str]:
        return {k.casefold(): v for k, v in self.data["registry"]["stages"].items()}

    def env_for_alias(self, alias: str) -> str | None:
        return self._aliases.get(alias.casefold())

    def env_for_stage(self, stage: str) -> str | None:
        return self._stages.get(stage.casefold())

    def env_for_model(self, name: str) -> str | None:
        env: str | None = self.data["registry"]["models"].get(name)
        return env

    def resolve_target(self, target: str) -> str:
        """An environment named directly, by alias or by stage -> the environment's name."""
        if target in self._environments:
            return target
        env = self.env_for_alias(target) or self.env_for_stage(target)
        if env is None:
            raise EnvironmentUnknown(target, self.environment_names, "the target")
        return env

    # -- roles ----------------------------------------------------------------------------------
    def roles_of(self, identity: str) -> set[str]:
        return set(self.data["roles"].get(identity, ()))

    def holders(self, role: str) -> set[str]:
        return {who for who, roles in self.data["roles"].items() if role in roles}

    # -- locations ------------------------------------------------------------------------------
    def env_for_location(self, uri: str) -> str | None:
        """The environment whose S3 buckets/prefixes or artifact locations contain ``uri``."""
        loc = parse_location(uri)
        best: tuple[int, str] | None = None
        for name in self._environments:
            for claimed in self.locations(name, "s3", "artifact_locations"):
                c = parse_location(claimed)
                if c.contains(loc) and (best is None or len(c.path) > best[0]):
                    best = (len(c.path), name)
        return best[1] if best else None

    def env_for_mlflow_uri(self, uri: str) -> str | None:
        wanted = normalize_uri(uri)
        for name in self._environments:
            claimed = self.locations(name, "mlflow_tracking_uris", "mlflow_registry_uris")
            if wanted in {normalize_uri(u) for u in claimed}:
                return name
        return None

    def env_for_dvc_remote(self, name: str, url: str | None = None) -> str | None:
        """A DVC remote's environment, by its name, else by its URL (exact or containing)."""
        for env_name, env in self._environments.items():
            if name in env["dvc_remotes"]:
                return env_name
        if url:
            wanted = normalize_uri(url)
            for env_name, env in self._environments.items():
                if wanted in {normalize_uri(r) for r in env["dvc_remotes"]}:
                    return env_name
            return self.env_for_location(url) if "://" in url else None
        return None

    def env_for_host(self, host_or_url: str) -> str | None:
        wanted = normalize_uri(host_or_url).lower()
        for name, env in self._environments.items():
            if wanted in {normalize_uri(h).lower() for h in env["hosts"]}:
                return name
        return None

    # -- lineage store --------------------------------------------------------------------------
    @property
    def lineage_url(self) -> str:
        """``lineage.url`` as written (a relative SQLite path is relative to the policy)."""
        url: str = self.data["lineage"]["url"]
        return url

    @property
    def lineage_spool_dir(self) -> Path:
        """``lineage.spool_dir``, resolved against the policy's folder."""
        return self.resolve_path(self.data["lineage"]["spool_dir"])

    @property
    def checkpoint_every(self) -> int:
        every: int = self.data["lineage"]["checkpoint_every"]
        return every

    # -- this installation's signing key -------------------------------------------------------
    @property
    def signing_key_env(self) -> str:
        """``signing.key_env``: the variable that holds the private key."""
        name: str = self.data["signing"]["key_env"]
        return name

    @property
    def signing_key_file(self) -> Path:
        """``signing.key_file``, resolved against the policy's folder."""
        return self.resolve_path(self.data["signing"]["key_file"])

    def to_dict(self) -> dict[str, Any]:
        """The validated policy with every default filled in (JSON types; a copy)."""
        return copy.deepcopy(self.data)
