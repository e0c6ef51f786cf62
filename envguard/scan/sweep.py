"""The sweep: the lineage log's own checks, every plugin's ``envguard_scan``, then the record.

Fail closed: a plugin that raises gives a ``scan-plugin-failed`` finding (an
:class:`~envguard.errors.EnvGuardError`, the plugin's way to say "unreachable" or "bad input",
gives ``scan-unreachable``), and a broken plugin gives one too; nothing is a silent pass.

Recording: each finding that is *new* is recorded once as a ``violation.found`` event (entity
``finding:ID`` plus the entity it concerns) and sent to ``envguard_on_violation``. A finding
already open (recorded by an earlier scan and not resolved since) is reported again but not
recorded or alerted again, so that a daily scan does not bury the log and the alert channel under
the same standing problems. Each scan ends with a ``scan.completed`` event: counts, the new ids
and the ids *resolved* (open before, not found now). A finding is resolved only by a scan whose
sweep of the same source completed without error; it is recorded (and alerted) again if it
comes back later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from envguard.decisions import Reason, conclude
from envguard.errors import EnvGuardError
from envguard.scan import RULES, SEVERITIES, Finding, ScanProgress

if TYPE_CHECKING:
    from envguard.decisions import Decision
    from envguard.policy import Policy
    from envguard.runtime import Runtime

__all__ = ["CORE", "ProgressLine", "ScanReport", "finding_decision", "open_findings", "scan"]

log = logging.getLogger(__name__)

CORE = "core"
FOUND_KIND = "violation.found"
COMPLETED_KIND = "scan.completed"
_ERROR_RULES = {"scan-unreachable", "scan-plugin-failed"}


@dataclass
class ScanReport:
    """What one scan found, what it swept, and what it recorded."""

    findings: list[Finding] = field(default_factory=list)
    new: set[str] = field(default_factory=set)
    resolved: list[str] = field(default_factory=list)
    swept: dict[str, int] = field(default_factory=dict)  # label -> how many items
    recorded: bool = False

    @property
    def unreachable(self) -> bool:
        return any(f.rule == "scan-unreachable" for f in self.findings)

    @property
    def exit_code(self) -> int:
        """2 when a system could not be read, 1 on any other finding, 0 when clean."""
        return 2 if self.unreachable else (1 if self.findings else 0)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for f in self.findings if f.level == s) for s in SEVERITIES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": not self.findings,
            "counts": self.counts(),
            "swept": dict(self.swept),
            "new": len(self.new),
            "resolved": list(self.resolved),
            "findings": [{**f.to_dict(), "new": f.id in self.new} for f in self.findings],
        }


class _Coverage:
    """The progress callback handed to the sweeps: keeps the last count of each label and
    forwards to the caller's display."""

    def __init__(self, display: ScanProgress | None) -> None:
        self.display = display
        self.counts: dict[str, int] = {}

    def __call__(self, label: str, done: int, total: int | None = None) -> None:
        self.counts[label] = done
        if self.display is not None:
            self.display(label, done, total)


def scan(
    runtime: Runtime,
    progress: ScanProgress | None = None,
    *,
    record: bool = True,
    alert_all: bool = False,
) -> ScanReport:
    """Sweep everything the policy knows; record and alert new findings (see the module)."""
    from envguard.scan.lineage_checks import check_data_uses, check_log

    policy = runtime.policy
    store = runtime.store
    coverage = _Coverage(progress)
    found: list[Finding] = []
    failed_sources: set[str] = set()
    for check in (check_log, check_data_uses):
        try:
            found.extend(f.with_source(CORE) for f in check(policy, store, coverage))
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is a finding
            failed_sources.add(CORE)
            found.append(_failure(CORE, check.__name__, exc))
    for name, result in runtime.plugins.scan(policy, store, coverage):
        if isinstance(result, BaseException):
            failed_sources.add(name)
            found.append(_failure(name, "envguard_scan", result))
        else:
            found.extend(f.with_source(name) for f in result)
    for info in runtime.plugins.plugin_infos():
        if info.status == "broken":
            failed_sources.add(info.name)
            found.append(
                Finding(
                    "scan-plugin-failed",
                    f"plugin:{info.name}",
                    f"plugin {info.name!r} is installed but broken ({info.reason}): what it "
                    f"sweeps is unchecked",
                    "fix it (envguard plugins) or uninstall it",
                    source=info.name,
                )
            )
    report = ScanReport(_unique(found), swept=coverage.counts)
    failed_sources.update(f.source for f in report.findings if f.rule in _ERROR_RULES)
    if record:
        _record(runtime, report, failed_sources, alert_all)
    return report


def _failure(source: str, where: str, exc: BaseException) -> Finding:
    if isinstance(exc, EnvGuardError):
        return Finding(
            "scan-unreachable",
            f"plugin:{source}",
            f"{where} could not complete: {exc}",
            "make the system reachable (or fix the input the message names), then scan again",
            {"error": type(exc).__name__},
            source=source,
        )
    log.error("plugin %s failed in %s", source, where, exc_info=exc)
    return Finding(
        "scan-plugin-failed",
        f"plugin:{source}",
        f"{where} of {source!r} failed ({type(exc).__name__}: {exc}): what it sweeps is unchecked",
        f"fix or disable the plugin (ENVGUARD_DISABLED_PLUGINS={source}); run with --debug "
        f"for the traceback",
        {"error": type(exc).__name__},
        source=source,
    )


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    """One finding per id (the first), most severe first, then by rule and entity."""
    by_id: dict[str, Finding] = {}
    for finding in findings:
        by_id.setdefault(finding.id, finding)
    order = {s: n for n, s in enumerate(SEVERITIES)}
    return sorted(by_id.values(), key=lambda f: (order.get(f.level, 9), f.rule, f.entity))


def finding_decision(finding: Finding, policy: Policy) -> Decision:
    """The finding as a decision, the shape ``envguard_on_violation`` and the report know."""
    known = RULES.get(finding.rule)
    reason = Reason(
        finding.rule, finding.message, finding.remedy, guideline=known.guideline if known else None
    )
    return conclude("scan", finding.entity, [reason], policy, finding.environment)


def open_findings(runtime: Runtime) -> dict[str, str]:
    """Finding id -> source, for every finding recorded by a scan and not resolved since."""
    store = runtime.store
    opened: list[tuple[int, str, str]] = []
    for event in store.events(kind=FOUND_KIND):
        finding = event.payload.get("finding")
        if isinstance(finding, dict) and finding.get("id"):
            opened.append((event.seq, str(finding["id"]), str(finding.get("source", ""))))
    closed: dict[str, int] = {}
    for event in store.events(kind=COMPLETED_KIND):
        for fid in event.payload.get("resolved", ()):
            closed[str(fid)] = event.seq
    found: dict[str, str] = {}
    for seq, fid, source in opened:
        if closed.get(fid, 0) > seq:
            found.pop(fid, None)
        else:
            found[fid] = source
    return found


def _record(runtime: Runtime, report: ScanReport, failed: set[str], alert_all: bool) -> None:
    policy = runtime.policy
    already = open_findings(runtime)
    current = {f.id for f in report.findings}
    report.new = current - set(already)
    report.resolved = sorted(
        fid for fid, source in already.items() if fid not in current and source not in failed
    )
    drafts = []
    alerts: list[Finding] = []
    for finding in report.findings:
        if finding.id not in report.new:
            if alert_all:
                alerts.append(finding)
            continue
        decision = finding_decision(finding, policy)
        alerts.append(finding)
        drafts.append(
            runtime.draft(
                FOUND_KIND,
                entities=[f"finding:{finding.id}", finding.entity],
                payload={
                    "decision": decision.to_dict(),
                    "finding": finding.to_dict(),
                    "subject": finding.entity,
                },
            )
        )
    summary = {
        "findings": len(report.findings),
        "counts": report.counts(),
        "swept": report.swept,
        "new": sorted(report.new),
        "resolved": report.resolved,
        "open": len(current),
    }
    drafts.append(runtime.draft(COMPLETED_KIND, payload=json.loads(json.dumps(summary))))
    runtime.store.append_many(drafts)
    report.recorded = True
    for finding in alerts:
        runtime.plugins.on_violation(finding_decision(finding, policy), policy)


class ProgressLine:
    """A one-line progress display for a terminal: ``label [#####     ] done/total``."""

    def __init__(self, stream: Any, every: float = 0.2) -> None:
        self.stream, self.every = stream, every
        self.last, self.label = 0.0, ""

    def __call__(self, label: str, done: int, total: int | None = None) -> None:
        import time

        now = time.monotonic()
        final = total is not None and done >= total
        if now - self.last < self.every and not final and label == self.label:
            return
        self.last, self.label = now, label
        if total:
            width = 24
            filled = min(width, width * done // total)
            bar = f" [{'#' * filled}{' ' * (width - filled)}] {done}/{total}"
        else:
            bar = f" {done}"
        self.stream.write(f"\r\033[K{label[:60]}{bar}")
        self.stream.flush()
