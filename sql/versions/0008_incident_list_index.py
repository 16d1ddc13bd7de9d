"""The open-incident list reads the newest rows of a status in index order: (status, created_at,
id) replaces the status-only index (its leading column serves every status lookup).

Revision ID: 0008
Revises: 0007
Created: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_incidents_status_created_at_id", "incidents", ["status", "created_at", "id"]
    )
    op.drop_index("ix_incidents_status", table_name="incidents")


def downgrade() -> None:  # forward-only project; kept for Alembic's tooling
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.drop_index("ix_incidents_status_created_at_id", table_name="incidents")
