"""``envguard audit scan``: a sweep of the real systems, not only of envguard's own records.

The core owns the framework and the checks of the lineage log; plugins sweep the systems they
know through the :func:`~envguard.hookspecs.envguard_scan` hook (the MLflow plugin: registries and
runs; the S3 plugin: buckets; the DVC plugin: remotes) and answer with :class:`Finding` objects.

A finding has a stable id (the same standing problem has the same id on every scan), a severity,
the entity it concerns, the rule it breaks with the I&S-05 implementation guideline the rule
serves (and the auditing guideline whose evidence it is), the evidence, and a remedy. The rules
are listed in :data:`RULES`; a plugin may use its own rule ids (prefixed with its name), which
get the severity the plugin gives.

The sweep itself (calling the plugins, recording, alerting) is :func:`envguard.scan.sweep.scan`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

__all__ = [
    "RULES",
    "SEVERITIES",
    "Finding",
    "Rule",
    "ScanProgress",
    "unreachable",
]

#: Severities, most severe first.
SEVERITIES = ("critical", "high", "medium", "low")


@dataclass(frozen=True)
class Rule:
    """What a scan rule checks, how severe a breach is, and which I&S-05 guidelines it serves."""

    title: str
    severity: str
    guideline: int  # implementation guideline of I&S-05 (1-12)
    audit_guideline: int  # auditing guideline of I&S-05 (1-7): where the report shows it


RULES: dict[str, Rule] = {
    "registry-bypass": Rule(
        "a model version is in a production alias or stage without a recorded allow decision",
        "critical",
        12,
        5,
    ),
    "binding-mismatch": Rule(
        "a promoted model version's files no longer match the digests it was approved and "
        "promoted with",
        "critical",
        10,
        5,
    ),
    "run-untagged": Rule(
        "a run carries no (or an unknown) envguard environment tag", "medium", 1, 6
    ),
    "run-prod-data-unmasked": Rule(
        "a non-production run used data of production lineage without a masking proof",
        "high",
        5,
        4,
    ),
    "object-prod-in-non-prod": Rule(
        "an object of production origin sits in a non-production bucket or remote", "high", 11, 4
    ),
    "object-untagged": Rule("an object carries no envguard environment tag", "low", 4, 6),
    "bucket-unencrypted": Rule(
        "a non-production bucket holding production-lineage data has no default encryption",
        "high",
        6,
        4,
    ),
    "log-verify-failed": Rule(
        "the lineage log fails verification (altered, truncated or mis-signed)", "critical", 12, 6
    ),
    "scan-unreachable": Rule(
        "a system the policy names could not be read: the scan is incomplete", "high", 12, 6
    ),
    "scan-plugin-failed": Rule(
        "a plugin failed during the scan: what it sweeps is unchecked", "high", 12, 6
    ),
}


@dataclass(frozen=True)
class Finding:
    """One problem a scan found. ``detail`` makes the id unique when one entity breaks one rule
    several ways (a run that used two datasets); ``source`` is set by the sweep."""

    rule: str
    entity: str
    message: str
    remedy: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    severity: str = ""
    detail: str = ""
    environment: str | None = None
    source: str = ""

    @property
    def id(self) -> str:
        """``RULE:HEX``, the same for the same standing problem on every scan."""
        text = f"{self.rule}\n{self.entity}\n{self.detail}".encode()
        return f"{self.rule}:{hashlib.sha256(text).hexdigest()[:12]}"

    @property
    def level(self) -> str:
        known = RULES.get(self.rule)
        return self.severity or (known.severity if known else "medium")

    def with_source(self, source: str) -> Finding:
        return self if self.source else replace(self, source=source)

    def to_dict(self) -> dict[str, Any]:
        known = RULES.get(self.rule)
        return {
            "id": self.id,
            "severity": self.level,
            "rule": self.rule,
            "title": known.title if known else "",
            "guideline": known.guideline if known else None,
            "audit_guideline": known.audit_guideline if known else None,
            "entity": self.entity,
            "environment": self.environment,
            "message": self.message,
            "evidence": dict(self.evidence),
            "remedy": self.remedy,
            "source": self.source,
        }


def unreachable(entity: str, message: str, remedy: str, **evidence: Any) -> Finding:
    """A system the policy names could not be read (``scan-unreachable``: exit code 2)."""
    return Finding("scan-unreachable", entity, message, remedy, evidence)


class ScanProgress(Protocol):
    """How a sweep says how far it got: ``progress(label, done, total)``, as often as it likes
    (the command line draws a bar on a terminal, and keeps the last count of each label as the
    scan's coverage: "mlflow runs http://...: 1200"). ``total`` is None when unknown."""

    def __call__(self, label: str, done: int, total: int | None = None) -> None: ...
