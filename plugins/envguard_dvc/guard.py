"""The DVC guard: inside the ``dvc`` process (and any Python process using ``dvc.api``), refuse
production data in a non-production environment, and tag what ``dvc push`` stored.

DVC has no plugin API. :mod:`envguard_dvc.autoload` (loaded by the ``.pth`` file of ``envguard dvc
install``) calls :func:`install_on` when DVC imports ``dvc.repo``, ``dvc.data_cloud`` or
``dvc.api.data``, and this module wraps, without changing what they do:

- ``Repo.fetch`` / ``pull`` / ``push`` / ``imp`` / ``imp_url`` / ``get`` and ``dvc.api``'s
  ``open``/``read`` (through ``dvc.api.data._open``): they mark the operation under way;
- ``DataCloud.get_remote``: every remote DVC resolves during such an operation is checked against
  the policy, before any byte moves. In a non-production environment, reading a production remote
  (fetch, pull, import, get, read) or writing to one (push) is refused with an error DVC prints as
  its own (``ERROR: envguard deny: ...``, exit 1), naming the remote, the environment and the fix;
- during ``Repo.push`` to an S3 remote: S3 stores each object DVC uploads with its tags (the
  remote's environment as env and origin), set in the upload request itself by botocore event
  handlers on DVC's S3 client, which also record the keys S3 confirmed
  (:mod:`envguard_dvc.upload_tags`);
- after ``Repo.push`` (also when it failed part-way): ``envguard dvc sync`` and a tag sweep of the
  remotes pushed to, so that objects DVC skipped because they were there already, objects not
  confirmed as tagged on upload, and content of another origin, are inventoried and tagged
  (``PutObjectTagging``, in parallel, retried). Tagging fails open: a failure is printed and
  recorded, never the push's.

The guard is active only where an envguard policy is found (``ENVGUARD_CONFIG``, or walking up
from the working directory), and not when ``ENVGUARD_DISABLE=1``. A policy that is found but
invalid fails closed: the operation is refused.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dvc.exceptions import DvcException

from envguard.errors import ConfigError, Denied, EnvGuardError

if TYPE_CHECKING:
    from envguard.decisions import Decision
    from envguard.runtime import Runtime
    from envguard_dvc.upload_tags import UploadTagger

__all__ = ["DvcGuardDenied", "DvcGuardError", "install_on"]

log = logging.getLogger(__name__)

READS = frozenset({"fetch", "pull", "import", "get", "read"})
WRITES = frozenset({"push"})

_operation: ContextVar[str | None] = ContextVar("envguard_dvc_operation", default=None)
_pushed: ContextVar[dict[str, UploadTagger | None] | None] = ContextVar(
    "envguard_dvc_pushed", default=None
)
_MARK = "__envguard_guarded__"


class DvcGuardDenied(Denied, DvcException):  # type: ignore[misc] # DVC is untyped
    """The guard refused a DVC operation; DVC prints it as its own error (exit 1)."""


class DvcGuardError(ConfigError, DvcException):  # type: ignore[misc] # DVC is untyped
    """The guard could not decide (the policy is broken): the operation is refused."""

    def __init__(self, message: str) -> None:
        super().__init__(f"envguard: {message}")


def install_on(name: str, module: ModuleType) -> None:
    """Wrap the functions of a DVC module that has just loaded (idempotent)."""
    if name == "dvc.repo":
        repo = module.Repo
        for attr, op in (
            ("fetch", "fetch"),
            ("pull", "pull"),
            ("imp", "import"),
            ("imp_url", "import"),
        ):
            _wrap_attr(repo, attr, functools.partial(_in_operation, op))
        _wrap_attr(repo, "push", _pushing)
        raw = repo.__dict__.get("get")
        if isinstance(raw, staticmethod) and not getattr(raw.__func__, _MARK, False):
            repo.get = staticmethod(_in_operation("get", raw.__func__))
    elif name == "dvc.data_cloud":
        _wrap_attr(module.DataCloud, "get_remote", _checking)
    elif name == "dvc.api.data":
        _wrap_attr(module, "_open", _reading)


def _wrap_attr(owner: Any, attr: str, wrapper: Callable[[Any], Any]) -> None:
    function = getattr(owner, attr, None)
    if function is None or getattr(function, _MARK, False):
        return
    wrapped = wrapper(function)
    setattr(wrapped, _MARK, True)
    setattr(owner, attr, wrapped)


def _in_operation(op: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _operation.get() is not None:  # nested (pull -> fetch): the outer operation counts
            return function(*args, **kwargs)
        token = _operation.set(op)
        try:
            return function(*args, **kwargs)
        finally:
            _operation.reset(token)

    setattr(wrapper, _MARK, True)
    return wrapper


def _reading(function: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """``dvc.api.data._open`` is a generator: the remote is resolved while it runs."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Iterator[Any]:
        token = _operation.set(_operation.get() or "read")
        try:
            yield from function(*args, **kwargs)
        finally:
            _operation.reset(token)

    return wrapper


def _pushing(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(repo: Any, *args: Any, **kwargs: Any) -> Any:
        if _operation.get() is not None:
            return function(repo, *args, **kwargs)
        token = _operation.set("push")
        pushed: dict[str, UploadTagger | None] = {}  # remote -> what S3 tagged on upload
        token_pushed = _pushed.set(pushed)
        # A push of the whole workspace that succeeded leaves every workspace output on the
        # remote: the sweep after it need not list the remote again.
        whole = not kwargs.get("targets") and not args
        succeeded = False
        try:
            result = function(repo, *args, **kwargs)
            succeeded = True
            return result
        finally:
            _operation.reset(token)
            _pushed.reset(token_pushed)
            for tagger in pushed.values():
                if tagger is not None:
                    tagger.detach()
            if pushed:
                target = kwargs.get("remote")
                _after_push(repo, pushed, listed=not (succeeded and whole), remote_arg=target)

    return wrapper


def _checking(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(cloud: Any, *args: Any, **kwargs: Any) -> Any:
        remote = function(cloud, *args, **kwargs)
        op = _operation.get()
        if op is not None:
            settings = cloud.repo.config.get("remote", {}).get(remote.name, {})
            check(op, remote.name, str(settings.get("url", remote.path)))
            pushed = _pushed.get()
            if op == "push" and pushed is not None:
                known = pushed.get(remote.name)
                pushed[remote.name] = _tag_on_upload(remote, dict(settings), known)
        return remote

    return wrapper


def _tag_on_upload(
    remote: Any, settings: dict[str, Any], tagger: UploadTagger | None
) -> UploadTagger | None:
    """Have S3 tag each object this push uploads to an S3 remote, in the upload request itself
    (:mod:`envguard_dvc.upload_tags`), with the remote's environment as env and origin: right for
    all but content of another origin, which the sweep after the push corrects. DVC may resolve
    a remote more than once (each with its own client): every client gets the same tagger."""
    runtime = _runtime()
    if runtime is None:
        return None
    from envguard_dvc.remotes import remote_info
    from envguard_dvc.storage import ENV_TAG, ORIGIN_TAG
    from envguard_dvc.upload_tags import UploadTagger

    info = remote_info(remote.name, settings, runtime.policy)
    if info.kind != "s3" or info.env is None:
        return tagger
    if tagger is None:
        tagger = UploadTagger({ENV_TAG: info.env, ORIGIN_TAG: info.env})
    try:
        client = remote.fs.fs.s3  # DVC's s3fs instance and its aiobotocore client
        client.meta.events  # noqa: B018 - a client without an event system is not tagged here
    except Exception as exc:  # noqa: BLE001 - the sweep after the push tags every object
        log.info("envguard: not tagging on upload to %s (%s); the sweep will", remote.name, exc)
        return tagger
    tagger.attach(client)
    return tagger


def _runtime() -> Runtime | None:
    """This process's runtime when a policy applies here; None when envguard is not in use."""
    import os

    from envguard.errors import PolicyError
    from envguard.policy import CONFIG_ENV_VAR, find_policy
    from envguard.runtime import current

    if not os.environ.get(CONFIG_ENV_VAR):
        try:
            find_policy()
        except PolicyError:
            return None
    runtime = current()
    try:
        runtime.policy  # noqa: B018 - load now: a broken policy must refuse, not pass
        runtime.environment  # noqa: B018
    except EnvGuardError as exc:
        raise DvcGuardError(f"{exc}; the DVC operation is refused until this is fixed") from None
    return runtime


def decide(runtime: Runtime, op: str, name: str, url: str) -> Decision | None:
    """The decision on ``dvc OP`` with remote ``name``; None when no rule applies."""
    from envguard.decisions import Reason, conclude

    policy = runtime.policy
    env = runtime.environment
    remote_env = policy.env_for_dvc_remote(name, url)
    reasons: list[Reason] = []
    if remote_env is None:
        if policy.strict_uris:
            reasons.append(
                Reason(
                    "dvc-remote-unknown",
                    f"dvc {op} uses remote {name!r} ({url}), which no environment of the policy "
                    f"lists, and strict_uris is on",
                    f"add {name!r} to environments.ENV.dvc_remotes in {policy.path}",
                    guideline=3,
                )
            )
    elif policy.is_prod(remote_env) and not env.is_prod:
        if op in WRITES:
            reasons.append(
                Reason(
                    "dvc-write-prod",
                    f"dvc {op} to remote {name!r} ({url}) would write into production "
                    f"environment {remote_env!r} from {env.name!r} (non-production)",
                    f"push to a non-production remote (dvc push -r REMOTE), or run it in "
                    f"{remote_env!r} (ENVGUARD_ENV={remote_env}) through your release process",
                    guideline=9,
                )
            )
        else:
            reasons.append(
                Reason(
                    "dvc-read-prod",
                    f"dvc {op} from remote {name!r} ({url}) would read production data of "
                    f"environment {remote_env!r} into {env.name!r} (non-production)",
                    f"use a masked copy: in {remote_env!r}, envguard mask FILE -o MASKED and "
                    f"push MASKED to a non-production remote; or run this in {remote_env!r} "
                    f"(ENVGUARD_ENV={remote_env})",
                    guideline=5,
                )
            )
    if not reasons:
        return None
    return conclude(f"dvc-{op}", f"remote {name}", reasons, policy, env.name)


def check(op: str, name: str, url: str) -> None:
    """Refuse (raise :class:`DvcGuardDenied`) when the policy forbids ``dvc OP`` on a remote."""
    from envguard.decisions import Outcome

    runtime = _runtime()
    if runtime is None:
        return
    decision = decide(runtime, op, name, url)
    if decision is None:
        return
    try:
        draft = runtime.draft(
            "decision",
            entities=[f"dvc-remote:{name}"],
            payload={"decision": decision.to_dict(), "operation": op, "remote": name, "url": url},
        )
        runtime.store.append(draft, required=False)
    except EnvGuardError as exc:
        log.warning("envguard: could not record the decision: %s", exc)
    runtime.plugins.on_violation(decision, runtime.policy)
    if decision.outcome is Outcome.DENY:
        raise DvcGuardDenied(decision)
    sys.stderr.write(decision.explain() + "\n")


def _after_push(
    repo: Any, pushed: dict[str, UploadTagger | None], *, listed: bool, remote_arg: str | None
) -> None:
    """Sync and tag after ``dvc push``. Fails open: a failure is printed, and recorded by the
    sweep where it could get that far; the push's own outcome stands."""
    try:
        runtime = _runtime()
    except DvcGuardError as exc:
        sys.stderr.write(f"{exc}\n")
        return
    if runtime is None:
        return
    from envguard_dvc.operations import sync_repo, tag_remotes
    from envguard_dvc.remotes import default_remote

    try:
        _report, outputs = sync_repo(runtime, repo)
        default = remote_arg or default_remote(repo)
        for name, tagger in sorted(pushed.items()):
            # What DVC pushed to `name`: outputs naming it, and those naming no remote when it
            # is the push's remote (-r) or the default.
            mine = [o for o in outputs if (o.remote or default) == name]
            (report,) = tag_remotes(
                runtime,
                repo,
                [name],
                uploaded=tagger,
                expected=None if listed or tagger is None else mine,
            )
            sys.stderr.write(_summary(report.to_dict()) + "\n")
    except Exception as exc:  # noqa: BLE001 - tagging fails open; the push already happened
        sys.stderr.write(
            f"envguard: tagging after dvc push failed: {exc}\n"
            f"  fix: run `envguard dvc tag` once the cause is fixed (`envguard dvc status`)\n"
        )


def _summary(report: dict[str, Any]) -> str:
    line = (
        f"envguard: remote {report['remote']!r} ({report['env']}): {report['listed']} objects, "
        f"{report['tagged']} tagged now ({report['on_upload']} by S3 on upload, "
        f"{report['tagged'] - report['on_upload']} by PutObjectTagging), "
        f"{report['unchanged']} already tagged"
    )
    if report["failed"]:
        line += f", {len(report['failed'])} FAILED (envguard dvc status; envguard dvc tag)"
    if report["missing"]:
        line += f", {len(report['missing'])} vanished while tagging"
    return line
