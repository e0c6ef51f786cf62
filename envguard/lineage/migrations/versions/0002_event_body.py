"""Store each event's canonical body, the bytes its hash covers, instead of its parts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

The ``entities``, ``links`` and ``payload`` columns become one ``body`` column holding the
canonical JSON that the chain hash was computed over (the hashes do not change). Verification
then reads one column per event instead of rebuilding the body from eight, and readers parse
the record itself. The scalar columns stay, as indexes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from envguard.lineage.events import body_text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 5000


def upgrade() -> None:
    op.add_column("events", sa.Column("body", sa.Text, nullable=True))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT seq, time, actor, environment, kind, entities, links, payload, "
                "policy_sha256 FROM events WHERE seq > :last ORDER BY seq LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            break
        conn.execute(
            sa.text("UPDATE events SET body = :body WHERE seq = :seq"),
            [
                {
                    "seq": seq,
                    "body": body_text(
                        actor=actor,
                        entities_json=entities,
                        environment=env,
                        kind=kind,
                        links_json=links,
                        payload_json=payload,
                        policy_sha256=policy,
                        time=time,
                    ),
                }
                for seq, time, actor, env, kind, entities, links, payload, policy in rows
            ],
        )
        last = rows[-1][0]
    with op.batch_alter_table("events") as batch:
        batch.drop_column("entities")
        batch.drop_column("links")
        batch.drop_column("payload")
        batch.alter_column("body", existing_type=sa.Text, nullable=False)


def downgrade() -> None:
    import json

    from envguard.lineage.events import canonical_json

    for name in ("entities", "links", "payload"):
        op.add_column("events", sa.Column(name, sa.Text, nullable=True))
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.text("SELECT seq, body FROM events WHERE seq > :last ORDER BY seq LIMIT :n"),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            break
        updates = []
        for seq, body in rows:
            event = json.loads(body)
            parts = {k: canonical_json(event[k]) for k in ("entities", "links", "payload")}
            updates.append({"seq": seq, **parts})
        conn.execute(
            sa.text(
                "UPDATE events SET entities = :entities, links = :links, payload = :payload "
                "WHERE seq = :seq"
            ),
            updates,
        )
        last = rows[-1][0]
    with op.batch_alter_table("events") as batch:
        for name in ("entities", "links", "payload"):
            batch.alter_column(name, existing_type=sa.Text, nullable=False)
        batch.drop_column("body")
