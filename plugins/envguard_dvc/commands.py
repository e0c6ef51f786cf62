"""``envguard dvc status|sync|tag|install|uninstall``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["dvc_group"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("dvc")
def dvc_group() -> None:
    """DVC remotes by environment: status, lineage sync, origin tags, the guard."""


def _emit(data: Any) -> None:
    from envguard.cli.output import emit_json

    emit_json(data)


@dvc_group.command("status")
@json_option
def status(as_json: bool) -> None:
    """Each remote of this repository: URL, environment, inventory and tags.

    Exit 1 when a remote has objects whose tagging failed or an environment the policy does not
    give it.
    """
    from envguard.runtime import current
    from envguard_dvc.operations import remote_status
    from envguard_dvc.remotes import open_repo

    runtime = current()
    rows = remote_status(runtime, open_repo())
    if as_json:
        _emit(rows)
    else:
        if not rows:
            click.echo("no DVC remotes (dvc remote add -d NAME URL)")
        for row in rows:
            env = f"{row['env']} ({row['tier']})" if row["env"] else "UNKNOWN"
            star = " (default)" if row["default"] else ""
            click.echo(f"{row['remote']}{star}  {row['url']}  env {env}")
            if row["problem"]:
                click.echo(f"  problem: {row['problem']}")
            click.echo(
                f"  objects: {row['inventoried']} inventoried, {row['tagged']} tagged, "
                f"{row['untagged']} untagged, {len(row['failed'])} failed"
            )
            for md5, error in row["failed"].items():
                click.echo(f"  failed: {md5}: {error}")
            missing = len(row["workspace_not_inventoried"])
            click.echo(
                f"  workspace: {row['workspace_outputs']} output(s), "
                f"{missing} not inventoried in this remote"
            )
    if any(row["failed"] or not row["env"] for row in rows):
        raise SystemExit(1)


@dvc_group.command("sync")
@json_option
def sync(as_json: bool) -> None:
    """Record this repository's digests (md5 <-> sha256) and pipeline lineage (dvc.lock).

    Idempotent: unchanged stages and known digests are not recorded again.
    """
    from envguard.runtime import current
    from envguard_dvc.operations import sync_repo
    from envguard_dvc.remotes import open_repo

    report, _outputs = sync_repo(current(), open_repo())
    if as_json:
        _emit(report.to_dict())
        return
    click.echo(
        f"recorded {report.digests} digest(s), {report.directories} directory listing(s), "
        f"{report.stages} stage run(s); {report.unchanged_stages} stage(s) unchanged"
    )
    for problem in report.problems:
        click.echo(f"  problem: {problem}")


@dvc_group.command("tag")
@click.argument("remotes", nargs=-1)
@click.option("--retag", is_flag=True, help="Write every object's tags, even those recorded.")
@json_option
def tag(remotes: tuple[str, ...], retag: bool, as_json: bool) -> None:
    """Inventory and tag the objects of REMOTES (default: every remote of this repository).

    S3 objects get the tags envguard.env and envguard.origin; a local remote gets a manifest.
    Exit 1 when any object could not be tagged (it is recorded: envguard dvc status).
    """
    from envguard.runtime import current
    from envguard_dvc.operations import sync_repo, tag_remotes, taggable
    from envguard_dvc.remotes import open_repo

    runtime = current()
    repo = open_repo()
    sync_repo(runtime, repo)
    reports = tag_remotes(runtime, repo, list(remotes) or taggable(runtime, repo), retag=retag)
    if as_json:
        _emit([r.to_dict() for r in reports])
    else:
        for r in reports:
            click.echo(
                f"{r.remote} ({r.env}) {r.where}: {r.listed} object(s), {r.inventoried} newly "
                f"inventoried, {r.tagged} tagged, {r.unchanged} already tagged, "
                f"{len(r.failed)} failed, {len(r.missing)} vanished"
            )
            for key, error in sorted(r.failed.items()):
                click.echo(f"  failed: {key}: {error}")
            for key in r.missing:
                click.echo(f"  vanished since listed (not tagged): {key}")
            if not r.recorded:
                click.echo("  the lineage store is unreachable: the outcome was spooled")
    if any(r.failed for r in reports):
        raise SystemExit(1)


@dvc_group.command("install")
@click.option("--site-dir", type=click.Path(path_type=Path), help="Install into this folder.")
@json_option
def install(site_dir: Path | None, as_json: bool) -> None:
    """Turn the DVC guard on for this Python environment (a .pth file; idempotent)."""
    from envguard_dvc import install as installer

    _report(installer.install(site_dir), as_json)


@dvc_group.command("uninstall")
@click.option("--site-dir", type=click.Path(path_type=Path), help="Remove from this folder.")
@json_option
def uninstall(site_dir: Path | None, as_json: bool) -> None:
    """Turn the DVC guard off for this Python environment (idempotent)."""
    from envguard_dvc import install as installer

    _report(installer.uninstall(site_dir), as_json)


def _report(report: Any, as_json: bool) -> None:
    if as_json:
        _emit(report.to_dict())
        return
    state = "installed" if report.installed else "removed"
    verb = state if report.changed else f"already {'installed' if report.installed else 'absent'}"
    click.echo(f"DVC guard {verb}: {report.path}")
    if report.dvc_command is None:
        click.echo("  note: no `dvc` command on PATH")
    elif report.same_interpreter is False:
        click.echo(
            f"  warning: {report.dvc_command} runs another Python; install envguard there too, "
            f"or the guard does not apply to it"
        )
