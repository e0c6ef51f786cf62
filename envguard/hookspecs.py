"""Every hook a plugin may implement, in one place.

Plugins are found through the entry-point group ``envguard`` (bundled plugins are registered the
same way as a third party's) and implement hooks with ``@envguard.hookimpl``. Each hook below says
when it is called, what each parameter is, what it may return and how results combine.

Security hooks fail closed: if an implementation of :func:`envguard_check_data_use`,
:func:`envguard_check_promotion`, :func:`envguard_check_data_movement` or
:func:`envguard_resolve_origin` raises, the action is denied and the reason names the plugin.
Observation hooks (:func:`envguard_on_event`, :func:`envguard_on_violation`) fail open: an error is
logged and the event is kept, never dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from envguard.decisions import (
        DataLineage,
        DataMovement,
        Decision,
        PromotionRequest,
        Reason,
    )
    from envguard.environments import ResolvedEnvironment
    from envguard.lineage import LineageStore
    from envguard.policy import Policy
    from envguard.scan import Finding, ScanProgress

PROJECT = "envguard"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec(firstresult=True)
def envguard_detect_environment(policy: Policy) -> str | None:
    """Name the environment this process runs in, when neither ``ENVGUARD_ENV`` nor the policy's
    ``default_env`` says.

    Called once per process, lazily, the first time envguard needs the environment.

    :param policy: the loaded policy.
    :return: an environment name the policy declares, or ``None`` to let the next plugin answer.
        The first non-``None`` result wins; a name the policy does not declare is an error.
    """


@hookspec(firstresult=True)
def envguard_identity(policy: Policy) -> str | None:
    """Name the identity (user or service) acting in this process.

    Called when envguard records an event or evaluates an approval on the client side. The
    server-side gate takes the authenticated user instead and does not call this hook.

    :param policy: the loaded policy.
    :return: an identity string (``alice@acme.com``), or ``None``. First non-``None`` wins; the
        built-in fallback is ``ENVGUARD_ACTOR``, else the operating-system user.
    """


@hookspec
def envguard_roles(identity: str, policy: Policy) -> list[str] | None:
    """Add roles held by ``identity`` beyond those the policy's ``[roles]`` table lists
    (from a directory service, say).

    :return: role names, or ``None``. Results of all plugins are combined (union) with the policy's.
    """


@hookspec
def envguard_resolve_origin(subject: str, digest: str | None, policy: Policy) -> DataLineage | None:
    """Say where a dataset, file or URI comes from.

    Called by the data-use gate before deciding. ``subject`` is what the user named (a path, an
    ``s3://`` URI, a DVC-tracked file); ``digest`` its sha256 when known. The gate may call it
    first with ``digest=None`` for a file it has not hashed: a plugin that knows the file's sha256
    from a record it trusts returns it as ``digest`` with ``digest_source`` naming the record, and
    the gate does not read the file.

    :return: a :class:`~envguard.decisions.DataLineage`, or ``None`` when the plugin knows nothing.
        All results are combined: if any plugin finds production lineage, the data has it (a
        masking proof counts only when it comes with that same finding). Fails closed.
    """


@hookspec
def envguard_tracked_files(root: str, policy: Policy) -> dict[str, str] | None:
    """Name the files under ``root`` whose content the plugin knows by a recorded digest, so that
    an integration can gate the moment a process reads one without hashing it.

    Called once per process by integrations that watch reads (the MLflow plugin, when a run
    starts in a folder ``root``); the answer is kept for the life of the process. Keep it cheap:
    read records, do not hash data.

    :return: a mapping from each file's absolute, resolved path to the lineage entity of the
        content recorded for it (the DVC plugin: ``dvc-md5:HEX`` from ``.dvc`` files and
        ``dvc.lock``), or ``None``. All plugins' mappings are merged. A plugin that raises is
        reported: the integration refuses to start the run (fails closed).
    """


@hookspec
def envguard_check_data_use(
    env: ResolvedEnvironment, data: DataLineage, policy: Policy
) -> list[Reason] | None:
    """Add reasons to deny a process in ``env`` the use of ``data``, beyond the core's rules.

    :return: reasons (empty or ``None`` for none). All plugins' reasons are combined. Fails closed.
    """


@hookspec
def envguard_check_promotion(request: PromotionRequest, policy: Policy) -> list[Reason] | None:
    """Add reasons to deny a model version's promotion, beyond the core's rules.

    Called by the server-side gate, by the registry store wrapper of a local registry (no
    server), and by ``envguard promote`` before the move.

    :return: reasons (empty or ``None`` for none). All plugins' reasons are combined. Fails closed.
    """


@hookspec
def envguard_check_data_movement(move: DataMovement, policy: Policy) -> list[Reason] | None:
    """Add reasons to deny moving data between environments (I&S-05 guideline 9).

    Called by ``envguard data promote`` (:mod:`envguard.movement`) after the core's rules,
    ``move`` holding every fact: the dataset (``sha256:HEX``), where it is and where it goes,
    the actor, its lineage, its approvals and who registered or produced it.

    :return: reasons (empty or ``None`` for none). All plugins' reasons are combined. Fails closed.
    """


@hookspec
def envguard_on_event(event: dict[str, object]) -> None:
    """Observe an event after the lineage store has recorded it (for exporters such as
    OpenLineage).

    ``event`` is the recorded event as a JSON-ready dict (sequence, time, actor, environment,
    kind, entities, payload, hashes). Return value ignored. Fails open: errors are logged.
    """


@hookspec
def envguard_on_violation(decision: Decision, policy: Policy) -> None:
    """Receive every decision that found a violation (deny, warn or record), at a gate or in a
    scan: the place for alert sinks (log, webhook, file).

    Return value ignored. Fails open: errors are logged, the decision stands.
    """


@hookspec
def envguard_scan(
    policy: Policy, store: LineageStore, progress: ScanProgress
) -> list[Finding] | None:
    """Sweep the real systems this plugin knows (registries, runs, buckets, remotes the policy
    names) for ``envguard audit scan``, and report what breaks the policy.

    Called once per scan, after the core's checks of the lineage log. Read the systems, change
    nothing. Call ``progress(label, done, total)`` on long sweeps (``total`` None when unknown);
    the last ``done`` of each label is reported as the scan's coverage.

    :param policy: the loaded policy (which systems exist, and their environments).
    :param store: the lineage store (allow decisions, approvals, inventoried origins).
    :param progress: the progress callback.
    :return: :class:`~envguard.scan.Finding` objects (empty or ``None`` for none). All plugins'
        findings are combined; one id is reported once. Fails closed: an implementation that
        raises gives a ``scan-plugin-failed`` finding, or ``scan-unreachable`` (exit code 2) when
        it raises an :class:`~envguard.errors.EnvGuardError` (a system it cannot reach).
    """


@hookspec
def envguard_add_commands(cli: click.Group) -> None:
    """Add commands or command groups to the ``envguard`` command line.

    Called once when the CLI starts. Keep the plugin's module light: import heavy libraries inside
    the command's function, so that ``envguard --help`` stays fast.
    """
