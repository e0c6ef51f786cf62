"""``envguard data register|check|promote``: declare where data comes from; check whether it may
be used; move it into another environment under that environment's promotion rule."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import click

from envguard.cli.output import emit_json, style_outcome
from envguard.errors import InputError

if TYPE_CHECKING:
    from envguard.decisions import Decision

__all__ = ["data_group"]

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("data")
def data_group() -> None:
    """Register data's origin; check whether this environment may use it."""


def _existing_files(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
            if not found:
                raise InputError(str(path), "folder holds no files; name files or a data folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(str(path), "no such file or directory")
    return files


@data_group.command("register")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--env", "origin", required=True, help="The environment the data comes from.")
@json_option
def data_register(paths: tuple[Path, ...], origin: str, as_json: bool) -> None:
    """Record the origin environment of files (one event each, by content digest).

    The simplest way to declare production data sets: `envguard data register data/ --env prod`.
    """
    from envguard.digests import sha256_file
    from envguard.lineage import dataset_entity
    from envguard.runtime import current

    runtime = current()
    runtime.policy.environment(origin, "--env")
    files = _existing_files(paths)
    drafts = []
    rows: list[dict[str, object]] = []
    for path in files:
        digest = sha256_file(path)
        rows.append({"path": str(path), "sha256": digest, "origin": origin})
        drafts.append(
            runtime.draft(
                "dataset.registered",
                entities=[dataset_entity(digest)],
                payload={
                    "origin": origin,
                    "path": str(path.resolve()),
                    "bytes": path.stat().st_size,
                },
            )
        )
    events = runtime.store.append_many(drafts, required=True)
    for row, event in zip(rows, events, strict=True):
        row["seq"] = event.seq
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"registered {row['path']}  sha256:{str(row['sha256'])[:16]}…  origin {origin}  "
            f"(event {row['seq']})"
        )


@data_group.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def data_check(paths: tuple[Path, ...], as_json: bool) -> None:
    """May this environment use these files? Prints the lineage chain behind each verdict.

    Exit 0 when every file may be used, 1 when any has production lineage without a masking
    proof in a non-production environment (whatever the mode).
    """
    from envguard.digests import sha256_file
    from envguard.gate import check_data_use
    from envguard.runtime import current

    runtime = current()
    env = runtime.environment
    results = []
    for path in _existing_files(paths):
        # The gate hashes the file only when no plugin knows its digest from a trusted record.
        decision = check_data_use(
            runtime, str(path), None, hash_file=functools.partial(sha256_file, path)
        )
        results.append(decision)
    if as_json:
        emit_json([d.to_dict() for d in results])
    else:
        for decision in results:
            click.echo(
                f"{style_outcome(decision.outcome.value)} {decision.subject} "
                f"in {env.name} ({env.tier})"
            )
            for reason in decision.reasons:
                click.echo(f"  - {reason.rule}: {reason.message}")
                click.echo(f"    fix: {reason.remedy}")
    if any(d.violated for d in results):
        raise SystemExit(1)


@data_group.command("promote")
@click.argument("dataset", metavar="PATH|sha256:HEX")
@click.option("--to", "to", required=True, metavar="ENV", help="The environment to move it into.")
@click.option("--dry-run", is_flag=True, help="Evaluate and print; record nothing.")
@json_option
def data_promote(dataset: str, to: str, dry_run: bool, as_json: bool) -> int:
    """Move a dataset into another environment, under that environment's promotion rule.

    The rule of [promotion.ENV] applies as to a model version: approvals (envguard approve
    PATH --to ENV --key-file KEY), separation of duties, allowed source environments, and
    lineage (production data into a non-production environment only with a masking proof).
    On allow the move is recorded (data.moved): later gates find the dataset in ENV. Exit 0
    allowed, 1 denied (every reason and its fix printed).
    """
    from envguard.movement import promote_data
    from envguard.runtime import current

    evaluation = promote_data(current(), dataset, to, dry_run=dry_run)
    decision = evaluation.decision
    if as_json:
        emit_json({**evaluation.to_dict(), "dry_run": dry_run, "moved": _moved(decision, dry_run)})
    else:
        move = evaluation.move
        click.echo(
            f"{style_outcome(decision.outcome.value)} {dataset} ({move.subject[:19]}…) "
            f"from {move.from_env or 'an unknown environment'} to {move.to_env}"
        )
        for reason in decision.reasons:
            click.echo(f"  - {reason}")
        if _moved(decision, dry_run):
            click.echo(f"moved: {dataset} is now in {move.to_env!r} (event data.moved)")
        elif dry_run and decision.allowed:
            click.echo("dry run: nothing recorded")
    return 0 if decision.allowed else 1


def _moved(decision: Decision, dry_run: bool) -> bool:
    return decision.allowed and not dry_run
