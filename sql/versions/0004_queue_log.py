"""The queue_log's read position and reconciled calls; the write journal's applied marks.

Revision ID: 0004
Revises: 0003
Created: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_log_positions",
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_queue_log_positions"),
    )
    op.create_table(
        "queue_log_calls",
        sa.Column("log_key", sa.String(96), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("log_key", name="pk_queue_log_calls"),
    )
    op.create_index("ix_queue_log_calls_call_id", "queue_log_calls", ["call_id"])
    op.create_table(
        "journal_marks",
        sa.Column("journal_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("journal_id", name="pk_journal_marks"),
    )


def downgrade() -> None:  # forward-only project; kept for Alembic's tooling
    op.drop_table("journal_marks")
    op.drop_index("ix_queue_log_calls_call_id", table_name="queue_log_calls")
    op.drop_table("queue_log_calls")
    op.drop_table("queue_log_positions")
