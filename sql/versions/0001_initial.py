"""Initial schema: people and seats, callers, calls and ring attempts, incidents and their
history and numbering, callbacks, mail outbox, audit log, spy sessions, calendar and roster
overrides, web sessions.

Revision ID: 0001
Revises:
Created: 2026-11-22

Forward-only and self-contained (imports nothing from ctid): times are timestamptz on
PostgreSQL and naive-UTC text on SQLite (ctid.db.schema.UtcDateTime does the conversion).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _index(table: str, *columns: str) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns))


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("employee_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("employee_id", name="uq_users_employee_id"),
    )

    op.create_table(
        "seats",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("tier", sa.String(32), nullable=False),
        sa.Column("interface", sa.String(128), nullable=False),
        sa.Column("staffed_by", sa.String(32), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_seats"),
        sa.UniqueConstraint("interface", name="uq_seats_interface"),
    )

    op.create_table(
        "callers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("employee_id", sa.String(32), nullable=True),
        sa.Column("department", sa.String(128), nullable=True),
        sa.Column("office_location", sa.String(128), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("vip", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_callers"),
    )
    _index("callers", "employee_id")

    op.create_table(
        "caller_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caller_id", sa.Integer(), nullable=False),
        sa.Column("number_normalized", sa.String(64), nullable=False),
        sa.Column("raw", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), server_default="other", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_caller_phones"),
        sa.ForeignKeyConstraint(
            ["caller_id"],
            ["callers.id"],
            name="fk_caller_phones_caller_id_callers",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "caller_id", "number_normalized", name="uq_caller_phones_caller_id_number_normalized"
        ),
    )
    _index("caller_phones", "number_normalized")

    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("caller_id", sa.Integer(), nullable=True),
        sa.Column("caller_number", sa.String(64), nullable=True),
        sa.Column("caller_name", sa.String(128), nullable=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("request_type", sa.String(32), nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("impact", sa.String(32), nullable=True),
        sa.Column("urgency", sa.String(32), nullable=True),
        sa.Column("priority", sa.String(32), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner_seat", sa.String(64), nullable=True),
        sa.Column("owner_employee", sa.String(32), nullable=True),
        sa.Column("owner_group", sa.String(64), nullable=True),
        sa.Column("sla_response_due", _ts(), nullable=True),
        sa.Column("sla_resolve_due", _ts(), nullable=True),
        sa.Column("responded_at", _ts(), nullable=True),
        sa.Column("resolved_at", _ts(), nullable=True),
        sa.Column("closed_at", _ts(), nullable=True),
        sa.Column("flags", _json(), server_default="[]", nullable=False),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("satisfaction_comment", sa.Text(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("number", name="uq_incidents_number"),
        sa.ForeignKeyConstraint(
            ["caller_id"],
            ["callers.id"],
            name="fk_incidents_caller_id_callers",
            ondelete="SET NULL",
        ),
    )
    _index("incidents", "caller_id")
    _index("incidents", "caller_number")
    _index("incidents", "status")
    _index("incidents", "owner_seat")
    _index("incidents", "created_at")

    op.create_table(
        "incident_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=True),
        sa.Column("detail", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incident_history"),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name="fk_incident_history_incident_id_incidents"
        ),
    )
    _index("incident_history", "incident_id", "at")

    op.create_table(
        "incident_number_counters",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_incident_number_counters"),
    )

    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=True),
        sa.Column("caller_name", sa.String(128), nullable=True),
        sa.Column("caller_id", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("ivr_choice", sa.String(32), nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("queued_at", _ts(), nullable=True),
        sa.Column("answered_at", _ts(), nullable=True),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("answered_by_seat", sa.String(64), nullable=True),
        sa.Column("answer_ring", sa.Integer(), nullable=True),
        sa.Column("within_rings", sa.Boolean(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("talk_s", sa.Float(), nullable=True),
        sa.Column("capped", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("transferred_to", sa.String(64), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.UniqueConstraint("call_id", name="uq_calls_call_id"),
        sa.ForeignKeyConstraint(
            ["caller_id"], ["callers.id"], name="fk_calls_caller_id_callers", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_calls_incident_id_incidents",
            ondelete="SET NULL",
        ),
    )
    _index("calls", "caller_number")
    _index("calls", "caller_id")
    _index("calls", "started_at")
    _index("calls", "incident_id")

    op.create_table(
        "ring_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("seat_id", sa.String(64), nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("ring_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ring_attempts"),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.call_id"],
            name="fk_ring_attempts_call_id_calls",
            ondelete="CASCADE",
        ),
    )
    _index("ring_attempts", "call_id")
    _index("ring_attempts", "seat_id")

    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caller_number", sa.String(64), nullable=False),
        sa.Column("caller_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("status", sa.String(32), server_default="open", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("worked_by", sa.String(32), nullable=True),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_callbacks"),
        sa.ForeignKeyConstraint(
            ["caller_id"],
            ["callers.id"],
            name="fk_callbacks_caller_id_callers",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_callbacks_incident_id_incidents",
            ondelete="SET NULL",
        ),
    )
    _index("callbacks", "caller_number")
    _index("callbacks", "status", "requested_at")

    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("to_addr", sa.String(1000), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("status", sa.String(32), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", _ts(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("sent_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mail_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_mail_outbox_dedupe_key"),
    )
    _index("mail_outbox", "status", "next_attempt_at")

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=True),
        sa.Column("detail", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    _index("audit_log", "at")
    _index("audit_log", "action")

    op.create_table(
        "spy_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supervisor", sa.String(32), nullable=False),
        sa.Column("seat_id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("started_at", _ts(), nullable=True),
        sa.Column("stopped_at", _ts(), nullable=True),
        sa.Column("action_id", sa.String(64), nullable=True),
        sa.Column("spy_channel", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_spy_sessions"),
    )
    _index("spy_sessions", "requested_at")
    _index("spy_sessions", "action_id")

    op.create_table(
        "roster_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seat_id", sa.String(64), nullable=False),
        sa.Column("staffed_by", sa.String(32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roster_overrides"),
    )
    _index("roster_overrides", "day", "seat_id")

    op.create_table(
        "lunch_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("iso_week", sa.String(8), nullable=True),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lunch_overrides"),
    )
    _index("lunch_overrides", "day")
    _index("lunch_overrides", "iso_week")

    op.create_table(
        "holidays",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("day", name="pk_holidays"),
    )

    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("last_seen_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_web_sessions"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_web_sessions_user_id_users", ondelete="CASCADE"
        ),
    )
    _index("web_sessions", "user_id")
    _index("web_sessions", "expires_at")


def downgrade() -> None:
    raise NotImplementedError("ctid migrations are forward-only")
