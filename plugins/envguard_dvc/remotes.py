"""A repository's DVC remotes and the environment the policy assigns to each.

A remote belongs to the environment whose ``dvc_remotes`` list its name or its URL (exactly, or a
bucket/prefix containing it through the environment's ``s3`` list); see
:meth:`envguard.policy.Policy.env_for_dvc_remote`. A remote no environment claims has no
environment: envguard refuses to tag it, says so in ``envguard dvc status``, and (with
``strict_uris = true``) refuses to read or write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.errors import InputError
from envguard.uris import parse_location

if TYPE_CHECKING:
    from dvc.repo import Repo

    from envguard.policy import Policy

__all__ = ["RemoteInfo", "open_repo", "remote_info", "remotes_of"]


@dataclass(frozen=True)
class RemoteInfo:
    """One DVC remote: its name, URL, environment (None when the policy does not say) and DVC's
    settings for it (endpoint, credentials, region)."""

    name: str
    url: str
    env: str | None
    settings: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kind(self) -> str:
        """``s3``, ``local`` or the URL's scheme (envguard tags ``s3`` and ``local`` remotes)."""
        if "://" not in self.url:
            return "local"
        scheme = self.url.split("://", 1)[0].lower()
        return "s3" if scheme in {"s3", "s3a", "s3n"} else scheme

    @property
    def bucket(self) -> str:
        return parse_location(self.url).authority

    @property
    def prefix(self) -> str:
        """The key prefix of the remote inside its bucket, without a trailing ``/``."""
        return parse_location(self.url).path

    def unknown_message(self, policy: Policy) -> str:
        return (
            f"no environment of the policy lists this remote; add {self.name!r} or "
            f"{self.url!r} to environments.ENV.dvc_remotes in {policy.path}"
        )


def open_repo(start: Path | None = None) -> Repo:
    """The DVC repository at or above ``start``, or an :class:`InputError` that says why not."""
    from dvc.exceptions import DvcException, NotDvcRepoError
    from dvc.repo import Repo

    where = str(start or Path.cwd())
    try:
        return Repo(str(start) if start else None)
    except NotDvcRepoError:
        raise InputError(where, "not inside a DVC repository (run `dvc init` first)") from None
    except DvcException as exc:
        raise InputError(where, f"DVC cannot open the repository: {exc}") from None


def remote_info(name: str, settings: dict[str, Any], policy: Policy) -> RemoteInfo:
    url = str(settings.get("url", ""))
    return RemoteInfo(name, url, policy.env_for_dvc_remote(name, url), dict(settings))


def remotes_of(repo: Repo, policy: Policy) -> list[RemoteInfo]:
    """Every remote in the repository's DVC configuration (all levels merged), by name."""
    configured: dict[str, dict[str, Any]] = dict(repo.config.get("remote", {}))
    return [remote_info(name, configured[name], policy) for name in sorted(configured)]


def default_remote(repo: Repo) -> str | None:
    value = repo.config.get("core", {}).get("remote")
    return str(value) if value else None
