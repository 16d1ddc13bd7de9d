"""Right call facts: each answered ring keeps its seat's own talk time (a transfer splits a
call between seats), and every reason and call that fed a callback is kept.

Revision ID: 0006
Revises: 0002 (the lead re-chains it after the other branches' migrations)
Created: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ring_attempts") as batch:
        batch.add_column(sa.Column("talk_s", sa.Float(), nullable=True))
    op.create_table(
        "callback_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_callback_calls"),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["callbacks.id"],
            name="fk_callback_calls_callback_id_callbacks",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "callback_id", "reason", "call_id", name="uq_callback_calls_callback_id_reason_call_id"
        ),
    )
    op.create_index("ix_callback_calls_callback_id", "callback_calls", ["callback_id"])
    # The callbacks listed before this migration keep their one reason and call.
    op.execute(
        "INSERT INTO callback_calls (callback_id, reason, call_id, added_at) "
        "SELECT id, reason, call_id, requested_at FROM callbacks"
    )


def downgrade() -> None:  # forward-only project; kept for Alembic's tooling
    op.drop_table("callback_calls")
    with op.batch_alter_table("ring_attempts") as batch:
        batch.drop_column("talk_s")
