"""The lineage and audit log: every use, derivation, proof, approval and decision envguard sees.

:class:`LineageStore` is the interface; :class:`~envguard.lineage.sql.SqlLineageStore` is its one
implementation (SQLite file by default, PostgreSQL by URL). Open the policy's store with
:func:`open_store`. The hash chain is documented in :mod:`envguard.lineage.events`; verification
in :mod:`envguard.lineage.verify`. SQLAlchemy is imported only when a store needs it: a store in a
plain local SQLite file serves the usual reads and appends without it (:mod:`.sqlite_direct`).

Entity names used across envguard:

=========================  ==============================================
``sha256:HEX``             a dataset or file, by the sha256 of its content
``run:ID``                 an MLflow run
``models:/NAME/VERSION``   a registered model version
``model:ID``               an MLflow logged model
``dvc-stage:REPO:NAME``    a DVC pipeline stage
``s3://BUCKET/KEY``        a stored object (also ``dvc-remote:NAME/HASH``)
``proof:HEX``              a masking proof (sha256 of its envelope)
``approval:ID``            an approval
=========================  ==============================================
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from envguard.lineage.events import KINDS, Event, EventDraft, Link

if TYPE_CHECKING:
    from envguard.lineage.sql import Checkpoint, Edge, SqlLineageStore
    from envguard.policy import Policy

__all__ = [
    "KINDS",
    "LINEAGE_URL_ENV_VAR",
    "SCHEMA_REVISION",
    "Event",
    "EventDraft",
    "LineageStore",
    "Link",
    "dataset_entity",
    "open_store",
    "store_url",
]

LINEAGE_URL_ENV_VAR = "ENVGUARD_LINEAGE_URL"

#: The alembic revision this code expects (the newest in migrations/versions). Here rather than
#: in :mod:`envguard.lineage.schema`, so that checking it does not import SQLAlchemy.
SCHEMA_REVISION = "0002"


def dataset_entity(sha256: str) -> str:
    return sha256 if sha256.startswith("sha256:") else f"sha256:{sha256}"


class LineageStore(Protocol):
    """What envguard asks of a lineage store."""

    safe_url: str

    def append(self, draft: EventDraft, *, required: bool = True) -> Event | None: ...

    def append_many(
        self, drafts: Sequence[EventDraft], *, required: bool = True
    ) -> list[Event]: ...

    def events(
        self,
        *,
        kind: str | None = None,
        entity: str | None = None,
        since: str | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> Iterator[Event]: ...

    def head(self) -> tuple[int, str]: ...

    def ancestors(self, entity: str, depth: int | None = None) -> list[Edge]: ...

    def descendants(self, entity: str, depth: int | None = None) -> list[Edge]: ...

    def path(self, src: str, dst: str, max_depth: int = 64) -> list[Edge] | None: ...

    def touching(self, entity: str) -> list[Event]: ...

    def checkpoint(self) -> Checkpoint: ...

    def checkpoints(self) -> list[Checkpoint]: ...

    def close(self) -> None: ...


def store_url(policy: Policy, environ: Mapping[str, str] | None = None) -> str:
    """The store's URL: ``ENVGUARD_LINEAGE_URL``, else ``lineage.url``; a relative SQLite path
    is made absolute against the policy's folder."""
    environ = os.environ if environ is None else environ
    url = environ.get(LINEAGE_URL_ENV_VAR) or policy.lineage_url
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        path = policy.resolve_path(url[len(prefix) :])
        path.parent.mkdir(parents=True, exist_ok=True)
        url = prefix + str(path)
    return url


def open_store(
    policy: Policy, environ: Mapping[str, str] | None = None, *, sign: bool = True
) -> SqlLineageStore:
    """Open (creating or upgrading) the policy's lineage store, signing checkpoints with this
    installation's key (loaded when the first checkpoint is signed)."""
    from envguard.keys import LazySigner
    from envguard.lineage.sql import SqlLineageStore

    return SqlLineageStore(
        store_url(policy, environ),
        checkpoint_every=policy.checkpoint_every,
        signer=LazySigner(policy, environ) if sign else None,
        spool_dir=policy.lineage_spool_dir,
    )
