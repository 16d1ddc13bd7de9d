"""Seat states owned by ctid (one row per change, for time-in-state reports) and the desk's
incident drafts, one per call.

Revision ID: 0007
Revises: 0002
Created: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "seat_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seat_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_seat_states"),
    )
    op.create_index("ix_seat_states_at", "seat_states", ["at"])
    op.create_index("ix_seat_states_seat_id_at", "seat_states", ["seat_id", "at"])
    op.create_table(
        "desk_drafts",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("seat_id", sa.String(64), nullable=False),
        sa.Column("employee_id", sa.String(32), nullable=False),
        sa.Column("fields", _json(), nullable=False),
        sa.Column("number", sa.String(64), nullable=True),
        sa.Column("saved", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_desk_drafts"),
    )
    op.create_index("ix_desk_drafts_seat_id", "desk_drafts", ["seat_id"])


def downgrade() -> None:  # forward-only project; kept for Alembic's tooling
    op.drop_index("ix_desk_drafts_seat_id", table_name="desk_drafts")
    op.drop_table("desk_drafts")
    op.drop_index("ix_seat_states_seat_id_at", table_name="seat_states")
    op.drop_index("ix_seat_states_at", table_name="seat_states")
    op.drop_table("seat_states")
