"""The data-use gate: may this process use this data? Decide, record, alert.

Every integration that sees data being used (``envguard data check``, MLflow's ``log_input``,
DVC reads) calls :func:`check_data_use`. It resolves the data's lineage from the lineage store
and from the plugins (``envguard_resolve_origin``), decides under the policy, adds the plugins'
reasons (``envguard_check_data_use``), records the decision, and sends violations to the alert
hook. A decision that denies (or must be recorded to allow) and cannot be recorded is denied.

Hashing a large file is the slow part of the gate. A caller that has a file but no digest passes
``hash_file`` instead: the plugins are asked first (with ``digest=None``), and when one answers
with a ``digest`` and a ``digest_source`` (it knows the content's sha256 from a record it trusts,
such as DVC's state of size, mtime and inode), that digest is used and the file is never read.
Otherwise ``hash_file()`` computes the digest and the plugins are asked again with it.

A caller that records many uses (a training loop) may pass ``defer``: a record that is only
observational (an allowed use of data without production lineage) is handed to ``defer`` as an
:class:`~envguard.lineage.events.EventDraft` instead of being written at once, so that the caller
can write it later in one transaction with others, through a journal that survives a crash. A
record that guards production is always written before the decision returns, and the caller's
``urgent`` is called then: what the caller defers from then on may derive from production data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from envguard.decisions import DataLineage, Decision, Reason, conclude, decide_data_use
from envguard.errors import StoreError

if TYPE_CHECKING:
    from envguard.lineage.events import EventDraft, Link
    from envguard.runtime import Runtime

__all__ = ["ResolvedData", "check_data_use", "merge_lineage", "record_decision", "resolve_data"]


def merge_lineage(found: list[DataLineage], is_prod: Callable[[str], bool]) -> DataLineage | None:
    """Combine answers: a production finding wins; masking counts only with that finding."""
    if not found:
        return None
    prod = [f for f in found if f.origin_env and is_prod(f.origin_env)]
    if prod:
        unmasked = [f for f in prod if not f.masked_by]
        return unmasked[0] if unmasked else prod[0]
    return next((f for f in found if f.origin_env), found[0])


@dataclass(frozen=True)
class ResolvedData:
    """What the gates know of one piece of data: its lineage (subject, digest, origin, chain,
    masking proof), every digest it is known by, and the reasons its lineage may be wrong
    (a store that could not be read, a plugin that failed)."""

    lineage: DataLineage
    digests: list[str]
    reasons: tuple[Reason, ...]
    digest_source: str | None = None  # the trusted record a plugin took the digest from


def resolve_data(
    runtime: Runtime,
    subject: str,
    digest: str | None,
    *,
    also: Sequence[str] = (),
    hash_file: Callable[[], str] | None = None,
    entities: Sequence[str] = (),
) -> ResolvedData:
    """The lineage of ``subject`` from the lineage store and the plugins
    (``envguard_resolve_origin``); arguments as :func:`check_data_use`'s."""
    from envguard.lineage import dataset_entity
    from envguard.lineage.origin import resolve_lineage

    policy = runtime.policy
    found: list[DataLineage] = []
    reasons: list[Reason] = []
    plugin_found: list[DataLineage] | None = None
    source: str | None = None
    if digest is None and hash_file is not None:
        plugin_found, plugin_errors = runtime.plugins.resolve_origin(subject, None, policy)
        supplied = next((f for f in plugin_found if f.digest and f.digest_source), None)
        if supplied is not None:
            digest, source = supplied.digest, supplied.digest_source
            reasons.extend(plugin_errors)
        else:
            digest = hash_file()
            plugin_found = None
    digests = [d for d in (digest, *also) if d]
    if digests or entities:
        try:
            store = runtime.store
            found.extend(
                resolve_lineage(store, policy, subject, dataset_entity(d), d) for d in digests
            )
            found.extend(resolve_lineage(store, policy, subject, e, digest) for e in entities)
        except StoreError as exc:
            reasons.append(
                Reason(
                    "lineage-unavailable", str(exc), "make the lineage store reachable, then retry"
                )
            )
    if plugin_found is None:
        plugin_found, plugin_errors = runtime.plugins.resolve_origin(subject, digest, policy)
        reasons.extend(plugin_errors)
    found.extend(plugin_found)
    lineage = merge_lineage(
        found, lambda name: policy.has_environment(name) and policy.is_prod(name)
    ) or DataLineage(subject, digest)
    lineage = replace(lineage, subject=subject, digest=lineage.digest or digest)
    return ResolvedData(lineage, digests, tuple(reasons), source)


def check_data_use(
    runtime: Runtime,
    subject: str,
    digest: str | None,
    *,
    run: str | None = None,
    record: bool = True,
    also: Sequence[str] = (),
    hash_file: Callable[[], str] | None = None,
    entities: Sequence[str] = (),
    defer: Callable[[EventDraft], None] | None = None,
    urgent: Callable[[], None] | None = None,
    details: Mapping[str, object] | None = None,
) -> Decision:
    """Decide whether this process may use ``subject`` (sha256 ``digest`` when known; else
    ``hash_file()`` computes it unless a plugin supplies it, see the module's docstring;
    ``also``: other digests of the same data, e.g. of the file a DataFrame was read from;
    ``entities``: other lineage entities naming the same content, e.g. ``dvc-md5:HEX`` as a DVC
    file records it; ``defer`` and ``urgent``: see the module's docstring; ``details``: what
    the caller knows of the data, recorded with the decision, e.g. MLflow's own digest).
    One decision, recorded once, whatever number of digests."""
    from envguard.lineage import dataset_entity

    policy = runtime.policy
    env = runtime.environment
    resolved = resolve_data(
        runtime, subject, digest, also=also, hash_file=hash_file, entities=entities
    )
    lineage, digests, reasons = resolved.lineage, resolved.digests, list(resolved.reasons)
    core = decide_data_use(policy, env.name, lineage)
    reasons = [*core.reasons, *reasons, *runtime.plugins.check_data_use(env, lineage, policy)]
    decision = conclude("data-use", subject, reasons, policy, env.name)
    if record:
        named = [*(dataset_entity(d) for d in digests), *entities]
        decision = _record(runtime, decision, lineage, run, named, defer, details)
        if urgent is not None and _has_prod_lineage(runtime, lineage):
            urgent()
    if decision.violated:
        runtime.plugins.on_violation(decision, policy)
    return decision


def _record(
    runtime: Runtime,
    decision: Decision,
    lineage: DataLineage,
    run: str | None,
    named: Sequence[str],
    defer: Callable[[EventDraft], None] | None,
    details: Mapping[str, object] | None = None,
) -> Decision:
    from envguard.lineage import Link

    entities = list(dict.fromkeys(named))
    # Only a use that happens links the data to the run; a refused one names both, no edge.
    links = [Link(e, run, "used-by") for e in entities] if run and decision.allowed else []
    guards_prod = _has_prod_lineage(runtime, lineage)
    return record_decision(
        runtime,
        decision,
        kind="dataset.used" if decision.allowed else "decision",
        entities=[*entities, *([run] if run and not links else [])],
        links=links,
        payload={
            "subject": lineage.subject,
            "origin": lineage.origin_env,
            "chain": list(lineage.chain),
            "masked_by": lineage.masked_by,
            **({"details": dict(details)} if details else {}),
        },
        required=(decision.violated and runtime.policy.mode == "enforce") or guards_prod,
        defer=defer,
    )


def _has_prod_lineage(runtime: Runtime, lineage: DataLineage) -> bool:
    return lineage.origin_env is not None and runtime.policy.is_prod(lineage.origin_env)


def record_decision(
    runtime: Runtime,
    decision: Decision,
    *,
    kind: str = "decision",
    entities: Sequence[str] = (),
    links: Sequence[Link] = (),
    payload: Mapping[str, object] | None = None,
    required: bool = False,
    defer: Callable[[EventDraft], None] | None = None,
) -> Decision:
    """Record ``decision`` in the lineage log. When the record is ``required`` and cannot be
    written, the decision becomes a denial naming the store (fail closed); otherwise the event
    is spooled and the decision stands. A record that is not ``required`` goes to ``defer``
    when one is given (the caller writes it later; see the module's docstring)."""
    draft = runtime.draft(
        kind,
        entities=entities,
        links=links,
        payload={"decision": decision.to_dict(), **(payload or {})},
    )
    if defer is not None and not required:
        defer(draft)
        return decision
    try:
        runtime.store.append(draft, required=required)
    except StoreError as exc:
        reason = Reason("record-required", str(exc), "make the lineage store writable, then retry")
        return conclude(
            decision.action,
            decision.subject,
            [*decision.reasons, reason],
            runtime.policy,
            decision.environment,
        )
    return decision
