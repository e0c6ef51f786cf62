"""``envguard audit verify|checkpoint|log|lineage``: the auditor's view of the lineage log."""

from __future__ import annotations

from pathlib import Path

import click

from envguard.cli.output import emit_json

__all__ = ["audit_group"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


class _AuditGroup(click.Group):
    """``audit``'s own commands, plus those plugins add to it (``audit export``)."""

    def _plugins(self, ctx: click.Context) -> None:
        add = getattr(ctx.find_root().command, "_add_plugin_commands", None)
        if add is not None:
            add()

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._plugins(ctx)
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._plugins(ctx)
            command = super().get_command(ctx, cmd_name)
        return command


@click.group("audit", cls=_AuditGroup)
def audit_group() -> None:
    """Verify, checkpoint, list and query the lineage log."""


@audit_group.command("verify")
@click.option(
    "--indexes",
    is_flag=True,
    help="Also check what is derived from the events (their query columns, the entity index "
    "and the lineage graph) against the events: slower, every event's body is parsed.",
)
@json_option
def audit_verify(indexes: bool, as_json: bool) -> None:
    """Re-verify the whole hash chain and every signed checkpoint. Exit 1 on any finding."""
    from envguard.lineage.verify import checkpoint_verifier, verify_store
    from envguard.runtime import current

    runtime = current()
    store = runtime.store
    report = verify_store(store, checkpoint_verifier(runtime.policy), indexes=indexes)
    report.pending_spool = store.spool.count() if store.spool else 0
    if as_json:
        emit_json({"store": store.safe_url, **report.to_dict()})
    else:
        state = (
            click.style("intact", fg="green", bold=True)
            if report.ok
            else click.style("NOT intact", fg="red", bold=True)
        )
        checked = ", indexes checked" if indexes else ""
        click.echo(
            f"{store.safe_url}: {report.events} events, {report.checkpoints} signed "
            f"checkpoints{checked}: {state}"
        )
        for finding in report.findings:
            click.echo(f"  - event {finding.seq}: {finding.problem}: {finding.message}")
        if report.pending_spool:
            click.echo(
                f"  {report.pending_spool} event(s) spooled, waiting for the store "
                f"(replayed on the next successful write)"
            )
    if not report.ok:
        raise SystemExit(1)


@audit_group.command("checkpoint")
@json_option
def audit_checkpoint(as_json: bool) -> None:
    """Sign a checkpoint of the log's current head now."""
    from envguard.runtime import current

    checkpoint = current().store.checkpoint()
    if as_json:
        emit_json(checkpoint.to_dict())
        return
    click.echo(
        f"checkpoint at event {checkpoint.seq}: head {checkpoint.head_hash} "
        f"signed by key {checkpoint.keyid[:16]}…"
    )


@audit_group.command("log")
@click.option("--kind", help="Only events of this kind (e.g. dataset.used).")
@click.option("--entity", help="Only events concerning this entity (sha256:…, run:…, models:/…).")
@click.option("--since", help="Only events at or after this UTC time (ISO 8601).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@json_option
def audit_log(
    kind: str | None, entity: str | None, since: str | None, limit: int | None, as_json: bool
) -> None:
    """List events of the lineage log, oldest first."""
    from envguard.runtime import current

    events = current().store.events(kind=kind, entity=entity, since=_since(since), limit=limit)
    if as_json:
        emit_json([e.to_dict() for e in events])
        return
    for event in events:
        click.echo(
            f"{event.seq:>7} {event.time} {event.kind:<20} {event.environment:<8} "
            f"{event.actor:<12} {' '.join(event.entities)}"
        )


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    from datetime import UTC, datetime

    from envguard.errors import InputError

    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            "--since",
            f"{value!r} is not an ISO 8601 time (e.g. 2026-11-26 or 2026-11-26T10:00:00Z)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@audit_group.command("lineage")
@click.argument("entity")
@click.option("--depth", type=click.IntRange(min=1), default=None, help="How far to walk.")
@click.option(
    "--json",
    "fmt",
    flag_value="json",
    help="Print the answer as JSON (envguard.audit-lineage/v1, see docs/audit.md).",
)
@click.option("--dot", "fmt", flag_value="dot", help="Print the lineage graph as Graphviz DOT.")
@click.option("--tree", "fmt", flag_value="tree", help="Print an indented tree (the default).")
def audit_lineage(entity: str, depth: int | None, fmt: str | None) -> None:
    """Where ENTITY came from, who made, evaluated and approved it, and every promotion.

    ENTITY: models:/NAME/VERSION, a run (run:ID or the bare id), a dataset digest (sha256:HEX)
    or a path (its content digest; DVC's record is used when the file is unchanged)."""
    import sys

    from envguard.lineage.provenance import gather_provenance, name_entity
    from envguard.runtime import current

    runtime = current()
    answer = gather_provenance(runtime, name_entity(runtime, entity), depth)
    if fmt == "json":
        emit_json(answer)
    elif fmt == "dot":
        from envguard.cli.lineage_view import render_dot

        click.echo(render_dot(answer))
    else:
        from envguard.cli.lineage_view import render_tree

        click.echo(render_tree(answer, color=sys.stdout.isatty()))


@audit_group.command("report")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the HTML report.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the evidence as JSON to this file.",
)
def audit_report(output: Path, json_path: Path | None) -> None:
    """Write the I&S-05 evidence report: one self-contained HTML file organised by the seven
    auditing guidelines, answering AI-CAIQ I&S-05.1 with evidence."""
    import json

    from envguard.report import gather, render_html
    from envguard.runtime import current

    evidence = gather(current())
    _write(output, render_html(evidence))
    if json_path is not None:
        _write(json_path, json.dumps(evidence, indent=2, sort_keys=True))
    click.echo(
        f"I&S-05.1: {evidence['caiq']['answer']}; report written to {output}"
        + (f" (evidence: {json_path})" if json_path else "")
    )


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader never sees half a report."""
    from envguard.errors import InputError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise InputError(str(path), f"cannot write the report: {exc.strerror}") from None


@audit_group.command("scan")
@click.option(
    "--no-record",
    is_flag=True,
    help="Report only: record nothing in the lineage log and send no alert.",
)
@click.option(
    "--alert-all",
    is_flag=True,
    help="Alert every finding, also those already open from an earlier scan.",
)
@json_option
def audit_scan(no_record: bool, alert_all: bool, as_json: bool) -> None:
    """Sweep the real systems the policy knows (MLflow registries and runs, S3 buckets, DVC
    remotes, the lineage log) for violations. Exit 1 on any finding, 2 when a system could not
    be read."""
    import sys

    from envguard.runtime import current
    from envguard.scan.sweep import ProgressLine, scan

    runtime = current()
    runtime.policy  # noqa: B018 - a broken policy fails here, with its message (exit 2)
    tty = sys.stderr.isatty()
    report = scan(
        runtime,
        ProgressLine(sys.stderr) if tty else None,
        record=not no_record,
        alert_all=alert_all,
    )
    if tty:
        click.echo("\r\033[K", nl=False, err=True)
    if as_json:
        emit_json({"store": runtime.store.safe_url, **report.to_dict()})
    else:
        _print_scan(report)
    if report.exit_code:
        raise SystemExit(report.exit_code)


_SEVERITY_COLOURS = {"critical": "red", "high": "red", "medium": "yellow", "low": "cyan"}


def _print_scan(report: object) -> None:
    from envguard.scan.sweep import ScanReport

    assert isinstance(report, ScanReport)
    swept = ", ".join(f"{label}: {n}" for label, n in report.swept.items()) or "nothing"
    click.echo(f"swept {swept}")
    for f in report.findings:
        data = f.to_dict()
        level = click.style(f.level.upper(), fg=_SEVERITY_COLOURS.get(f.level), bold=True)
        mark = "" if f.id in report.new else " (open since an earlier scan)"
        click.echo(f"{level} {f.id}{mark}")
        click.echo(f"  rule:     {f.rule} (I&S-05 guideline {data['guideline']}): {data['title']}")
        click.echo(f"  entity:   {f.entity}")
        click.echo(f"  evidence: {f.message}")
        click.echo(f"  fix:      {f.remedy}")
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items() if n)
    if report.findings:
        state = click.style(f"{len(report.findings)} finding(s)", fg="red", bold=True)
        click.echo(f"{state}: {counts}; {len(report.new)} new")
    else:
        click.echo(click.style("clean: no finding", fg="green", bold=True))
    if report.resolved:
        click.echo(f"resolved since the last scan: {', '.join(report.resolved)}")
