"""The DVC plugin's hook implementations (loaded when envguard registers the plugin)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envguard.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

    from envguard.decisions import DataLineage
    from envguard.policy import Policy
    from envguard.scan import Finding, ScanProgress

__all__ = [
    "envguard_add_commands",
    "envguard_resolve_origin",
    "envguard_scan",
    "envguard_tracked_files",
]


@hookimpl
def envguard_add_commands(cli: click.Group) -> None:
    """``envguard dvc ...``."""
    from envguard_dvc.commands import dvc_group

    cli.add_command(dvc_group)


@hookimpl
def envguard_tracked_files(root: str, policy: Policy) -> dict[str, str] | None:
    """The outputs recorded in the DVC repository holding ``root``, by the md5 DVC recorded
    (see :mod:`envguard_dvc.tracked`); None outside a DVC repository."""
    from envguard_dvc.tracked import tracked_files

    return tracked_files(Path(root)) or None


@hookimpl
def envguard_resolve_origin(subject: str, digest: str | None, policy: Policy) -> DataLineage | None:
    """A DVC-tracked file's lineage, by the md5 DVC recorded for it.

    Answers only for a local file that DVC's state knows unchanged (same inode, mtime and size as
    when DVC hashed it; see :mod:`envguard_dvc.state`). The lineage is walked from the content's
    ``dvc-md5`` entity, so an origin found through DVC (an object inventoried in a production
    remote, a stage fed by production data) counts even where no sha256 was ever recorded. When
    ``envguard dvc sync`` has linked the md5 to a sha256, that sha256 is returned as ``digest``
    with a ``digest_source``: the gate then does not read the file at all.
    """
    if "://" in subject:
        return None
    from envguard_dvc.state import recorded_md5

    record = recorded_md5(Path(subject))
    if record is None:
        return None
    from envguard.lineage.origin import resolve_lineage
    from envguard.runtime import current
    from envguard_dvc.entities import content_entity

    store = current().store
    entity = content_entity(record.md5, record.hash_name)
    sha = next(
        (
            dst[len("sha256:") :]
            for _src, dst, relation in store.edges_out_of([entity])
            if relation == "same-content" and dst.startswith("sha256:")
        ),
        None,
    )
    lineage = resolve_lineage(store, policy, subject, entity, digest or sha)
    if digest is None and sha is not None:
        source = (
            f"DVC state: md5 {record.md5} of {record.path}, unchanged since DVC hashed it "
            f"(inode, mtime, size); sha256 linked by envguard dvc sync"
        )
        return replace(lineage, digest=sha, digest_source=source)
    return lineage


@hookimpl
def envguard_scan(policy: Policy, store: Any, progress: ScanProgress) -> list[Finding]:
    """Sweep the policy's DVC remotes (see :mod:`envguard_dvc.scan`)."""
    from envguard_dvc.scan import sweep

    return sweep(policy, store, progress)
