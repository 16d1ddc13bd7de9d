"""Incidents keep their resolution, the second-line assignee's mailbox and where a suspension
started from; at most one open callback per number.

Revision ID: 0002
Revises: 0001
Created: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch.add_column(sa.Column("assignee_email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("suspended_from", sa.String(32), nullable=True))
    # One open promise per caller: a second request while one is open is the same promise.
    op.create_index(
        "uq_callbacks_open_number",
        "callbacks",
        ["caller_number"],
        unique=True,
        sqlite_where=sa.text("status IN ('open', 'in_progress')"),
        postgresql_where=sa.text("status IN ('open', 'in_progress')"),
    )


def downgrade() -> None:  # forward-only project; kept for Alembic's tooling
    op.drop_index("uq_callbacks_open_number", table_name="callbacks")
    with op.batch_alter_table("incidents") as batch:
        for column in ("suspended_from", "suspended_at", "assignee_email", "resolution"):
            batch.drop_column(column)
