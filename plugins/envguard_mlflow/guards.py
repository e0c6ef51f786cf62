"""The client-side rules: environment crossing, protected ``envguard.*`` tags, and the spool.

Each rule turns what it finds into :class:`~envguard.decisions.Reason` objects and lets
:func:`~envguard_mlflow.facts.decide` conclude under the policy's mode, so that ``warn`` and
``audit`` policies behave as documented and every violation reaches ``envguard_on_violation``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

from envguard.decisions import Reason
from envguard_mlflow.facts import TAG_PREFIX, ProcessFacts, decide

__all__ = ["RUN_DECLARATIONS", "check_location", "check_tags", "record_artifact"]

log = logging.getLogger(__name__)

# ``envguard.*`` run tags that a user writes, as a declaration the server checks (envguard does not
# know the value itself): ``envguard.evaluates`` marks an evaluation run of a model version, the
# evidence a promotion rule's ``require_evaluation_in`` asks for.
RUN_DECLARATIONS: Mapping[str, re.Pattern[str]] = {
    "envguard.evaluates": re.compile(r"models:/[^/]+/[^/]+"),
}


def _location_env(facts: ProcessFacts, uri: str, kind: str) -> str | None:
    policy = facts.policy
    if kind in ("tracking", "registry"):
        return policy.env_for_mlflow_uri(uri)
    return policy.env_for_location(uri) if ("://" in uri or uri.startswith("/")) else None


def check_location(facts: ProcessFacts, uri: str, kind: str) -> None:
    """Refuse an MLflow ``kind`` URI ("tracking", "registry" or "artifact") that the policy gives
    to an environment of another tier, or (``strict_uris``) that it gives to none."""
    policy = facts.policy
    here = facts.environment
    owner = _location_env(facts, uri, kind)
    reasons: list[Reason] = []
    if owner is None:
        if policy.strict_uris and kind != "artifact":
            reasons.append(
                Reason(
                    "unlisted-uri",
                    f"MLflow {kind} URI {uri} belongs to no environment, and the policy "
                    f"({policy.path}) sets strict_uris",
                    f"use a URI listed for {here.name!r} (mlflow_{kind}_uris), or list this one",
                    guideline=2,
                )
            )
    elif policy.tier(owner) != here.tier:
        reasons.append(
            Reason(
                "environment-crossing",
                f"this process runs in {here.name!r} ({here.tier}, from {here.source}), but the "
                f"MLflow {kind} {'location' if kind == 'artifact' else 'URI'} {uri} belongs to "
                f"{owner!r} ({policy.tier(owner)})",
                f"point MLflow at a location of {here.name!r}, or run with ENVGUARD_ENV set to "
                f"an environment of tier {policy.tier(owner)!r} where that is allowed",
                guideline=2,
            )
        )
    decide(facts, f"mlflow-{kind}", uri, reasons)


def check_tags(
    facts: ProcessFacts,
    tags: Iterable[tuple[str, str]],
    expected: Mapping[str, str],
    subject: str,
    declared: Mapping[str, re.Pattern[str]] | None = None,
) -> None:
    """Refuse ``envguard.*`` tags that differ from ``expected`` or that envguard does not write.

    ``expected`` maps each key envguard itself writes on ``subject`` to its value; ``declared``
    maps keys the user may write to the form their value must have (:data:`RUN_DECLARATIONS`).
    """
    reasons: list[Reason] = []
    for key, value in tags:
        if not key.startswith(TAG_PREFIX):
            continue
        form = (declared or {}).get(key)
        if form is not None and key not in expected:
            if not form.fullmatch(value):
                reasons.append(
                    Reason(
                        "protected-tag",
                        f"{subject}: tag {key}={value!r} does not have the form {form.pattern!r}",
                        f"set {key} to models:/NAME/VERSION, the version this run evaluates",
                        guideline=3,
                    )
                )
            continue
        if key not in expected:
            reasons.append(
                Reason(
                    "protected-tag",
                    f"{subject}: tag {key!r} is reserved for envguard, which did not write it",
                    f"use a tag name outside the {TAG_PREFIX!r} namespace",
                    guideline=3,
                )
            )
        elif expected[key] != value:
            reasons.append(
                Reason(
                    "protected-tag",
                    f"{subject}: tag {key}={value!r} contradicts envguard, which knows "
                    f"{key}={expected[key]!r}",
                    f"do not set {TAG_PREFIX}* tags by hand; envguard writes them",
                    guideline=3,
                )
            )
    decide(facts, "tag-write", subject, reasons)


def refuse_tag_delete(facts: ProcessFacts, key: str, subject: str) -> None:
    if key.startswith(TAG_PREFIX):
        reason = Reason(
            "protected-tag",
            f"{subject}: tag {key!r} is written by envguard and may not be deleted",
            "leave envguard's tags in place; they are the run's provenance",
            guideline=3,
        )
        decide(facts, "tag-delete", subject, [reason])


_RUN_IN_URI = re.compile(r"/([0-9a-f]{32})/artifacts(?:/|$)")


def record_artifact(
    facts: ProcessFacts,
    *,
    artifact_uri: str,
    path: str,
    size: int,
    sha256: str,
    owner: str | None = None,
) -> None:
    """Record one logged artifact file in the lineage log (``artifact.logged``): its digest,
    the run or model it belongs to, and this process's environment. Observational: when the
    store is unreachable the event waits in its spool; the user's run is never affected."""
    from envguard.lineage import Link

    if owner is None:
        match = _RUN_IN_URI.search(artifact_uri)
        owner = f"run:{match.group(1)}" if match else None
    data = f"sha256:{sha256}"
    source = owner or f"{artifact_uri.rstrip('/')}/{path}"
    draft = facts.runtime.draft(
        "artifact.logged",
        entities=[data, source],
        links=[Link(source, data, "logged")],
        payload={
            "artifact_uri": artifact_uri,
            "path": path,
            "size": size,
            "sha256": sha256,
            "tier": facts.environment.tier,
            "host": facts.host,
            "git_commit": facts.git_commit,
        },
    )
    facts.observations.add(draft)  # written with the run's other records, never dropped
