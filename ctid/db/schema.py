"""ctid's tables as SQLAlchemy 2 declarative models, the `UtcDateTime` column type, and the
atomic daily incident counter. `sql/versions/` (Alembic) is the DDL's source of truth; these
models must match it (a test compares them on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ctid.core.errors import StoreError

# Deterministic constraint names, so a later migration can drop or alter a constraint by name
# on both backends (SQLite has no ALTER CONSTRAINT; batch mode needs the name).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class NaiveDatetimeError(StoreError, ValueError):
    """A datetime without a time zone was written to a `UtcDateTime` column."""


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, always UTC-aware in Python.

    SQLite has no time zones, so it stores naive UTC text (which still sorts correctly);
    PostgreSQL stores `timestamptz`. Naive datetimes are refused on write, because there is no
    telling whether they meant site time or UTC. Values always come back aware in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise NaiveDatetimeError(f"expected an aware datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise NaiveDatetimeError(f"refusing naive datetime {value.isoformat()}: pass it aware")
        utc = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSON on SQLite (text), JSONB on PostgreSQL (indexable, compact).
JsonType = JSON().with_variant(postgresql.JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


metadata = Base.metadata

# Short names for the column shapes used over and over.
_ID = 64  # seat ids, queue names, actors
_EMP = 32  # employee ids (工号)
_NUM = 64  # phone numbers as received
_NAME = 128
_EMAIL = 254
_CODE = 32  # status / kind / outcome vocabularies, stored as plain strings


def _true() -> Any:
    return sa.true()


def _false() -> Any:
    return sa.false()


# --------------------------------------------------------------------------- people and seats


class User(Base):
    """A person who logs in to the web (agents, supervisors, ops). `role`: agent|supervisor|ops."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(_EMP), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(_NAME), nullable=False)
    role: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(_EMAIL), nullable=True)
    active: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=_true()
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class Seat(Base):
    """A seat as configured (`id` = config seat id). `tier`: ordinary|expert.

    `staffed_by` is an employee id, deliberately not a foreign key: the roster may name someone
    before they have a login.
    """

    __tablename__ = "seats"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    name: Mapped[str] = mapped_column(String(_NAME), nullable=False)
    tier: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    interface: Mapped[str] = mapped_column(String(_NAME), nullable=False, unique=True)
    staffed_by: Mapped[str | None] = mapped_column(String(_EMP), nullable=True)
    active: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=True, server_default=_true()
    )
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class Caller(Base):
    """Someone who contacts the desk (an IT user of the group)."""

    __tablename__ = "callers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(_NAME), nullable=False)
    # Not unique: directory imports carry duplicates that people clean up later.
    employee_id: Mapped[str | None] = mapped_column(String(_EMP), nullable=True, index=True)
    department: Mapped[str | None] = mapped_column(String(_NAME), nullable=True)
    office_location: Mapped[str | None] = mapped_column(String(_NAME), nullable=True)
    email: Mapped[str | None] = mapped_column(String(_EMAIL), nullable=True)
    vip: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=_false()
    )
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class CallerPhone(Base):
    """A caller's number. `kind`: office|mobile|extension|other. Looked up by normalized number."""

    __tablename__ = "caller_phones"
    __table_args__ = (UniqueConstraint("caller_id", "number_normalized"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("callers.id", ondelete="CASCADE"), nullable=False
    )
    number_normalized: Mapped[str] = mapped_column(String(_NUM), nullable=False, index=True)
    raw: Mapped[str] = mapped_column(String(_NUM), nullable=False)
    kind: Mapped[str] = mapped_column(
        String(_CODE), nullable=False, default="other", server_default="other"
    )


# --------------------------------------------------------------------------- calls


class Call(Base):
    """One hotline call, keyed by `call_id` (the first Asterisk Linkedid ctid saw).

    `outcome` (null while live): answered|abandoned|short_abandon|after_hours|callback|...;
    seat columns hold config seat ids (not foreign keys, so history survives roster edits).
    """

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(_ID), nullable=False, unique=True)
    caller_number: Mapped[str | None] = mapped_column(String(_NUM), nullable=True, index=True)
    caller_name: Mapped[str | None] = mapped_column(String(_NAME), nullable=True)
    caller_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("callers.id", ondelete="SET NULL"), nullable=True, index=True
    )
    queue: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    ivr_choice: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    category: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    answered_by_seat: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    answer_ring: Mapped[int | None] = mapped_column(Integer, nullable=True)
    within_rings: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    talk_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    capped: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=_false()
    )
    transferred_to: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True, index=True
    )


class RingAttempt(Base):
    """One seat ringing for one call. `outcome`: answered|no_answer|cut|caller_left|other."""

    __tablename__ = "ring_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # References calls.call_id (the Linkedid), so the tracker can write it knowing only CallId.
    call_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("calls.call_id", ondelete="CASCADE"), nullable=False, index=True
    )
    seat_id: Mapped[str] = mapped_column(String(_ID), nullable=False, index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    ring_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # An answered ring: how long this seat talked on its own leg (a transfer splits a call).
    talk_s: Mapped[float | None] = mapped_column(Float, nullable=True)


# --------------------------------------------------------------------------- incidents


class Incident(Base):
    """An incident ticket (ITIL). Every vocabulary is a plain string validated by ctid.tickets:

    channel phone|web|email|im|monitoring; request_type fault|service_request|consultation|
    new_requirement|complaint; category software|hardware|network|database|business_application|
    other; status new|assigned|in_progress|handed_to_expert|escalated|dispatched|accepted|
    rejected|suspended|resolved|closed|reopened.
    `version` is the ORM's optimistic lock (UPDATE ... WHERE version = ?).
    """

    __tablename__ = "incidents"
    __table_args__ = (Index(None, "status", "created_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(_CODE), nullable=False, unique=True)
    caller_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("callers.id", ondelete="SET NULL"), nullable=True, index=True
    )
    caller_number: Mapped[str | None] = mapped_column(String(_NUM), nullable=True, index=True)
    caller_name: Mapped[str | None] = mapped_column(String(_NAME), nullable=True)
    channel: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    request_type: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    category: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    impact: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    urgency: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    priority: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    status: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    summary: Mapped[str] = mapped_column(String(500), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    owner_seat: Mapped[str | None] = mapped_column(String(_ID), nullable=True, index=True)
    owner_employee: Mapped[str | None] = mapped_column(String(_EMP), nullable=True)
    owner_group: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    sla_response_due: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    sla_resolve_due: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    responded_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    flags: Mapped[list[str]] = mapped_column(
        JsonType, nullable=False, default=list, server_default="[]"
    )
    satisfaction: Mapped[int | None] = mapped_column(Integer, nullable=True)
    satisfaction_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)
    assignee_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    suspended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    suspended_from: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    # The knowledge article a first-line resolution followed (reports: resolution by article).
    kb_article_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("kb_articles.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # Set when this incident was a duplicate withdrawn into another (one incident per problem).
    merged_into_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's own protocol


class IncidentHistory(Base):
    """Append-only log of what happened to an incident (never updated or deleted)."""

    __tablename__ = "incident_history"
    __table_args__ = (Index(None, "incident_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(Integer, ForeignKey("incidents.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    actor: Mapped[str] = mapped_column(String(_ID), nullable=False)
    action: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    detail: Mapped[Any] = mapped_column(JsonType, nullable=True)


class IncidentContact(Base):
    """A contact about an existing incident: a later call attached to it (`kind` call) or an IVR
    status query (`kind` status_query). The call an incident was opened from is not repeated
    here: it is the earliest `calls` row pointing at the incident."""

    __tablename__ = "incident_contacts"
    __table_args__ = (UniqueConstraint("incident_id", "call_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, index=True
    )
    # The Linkedid, loosely referenced: a ringing call has no `calls` row yet.
    call_id: Mapped[str | None] = mapped_column(String(_ID), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    actor: Mapped[str] = mapped_column(String(_ID), nullable=False)


class IncidentNote(Base):
    """A work note: `kind` internal (staff only) or caller (also mailed to the caller through the
    outbox; `mail_key` is that mail's dedupe key)."""

    __tablename__ = "incident_notes"
    __table_args__ = (Index(None, "incident_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    author: Mapped[str] = mapped_column(String(_ID), nullable=False)
    kind: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    mail_key: Mapped[str | None] = mapped_column(String(200), nullable=True)


class IncidentNumberCounter(Base):
    """The last incident sequence number handed out for a (site-local) day."""

    __tablename__ = "incident_number_counters"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, nullable=False)


async def next_incident_seq(db: AsyncSession | AsyncConnection, day: date, count: int = 1) -> int:
    """Hand out the next sequence number for `day` (1, 2, ...), atomically; with `count` > 1 the
    first of `count` consecutive numbers.

    One `INSERT .. ON CONFLICT DO UPDATE .. RETURNING` statement, so two desks creating incidents
    at once never get the same number: PostgreSQL serialises on the row; SQLite on its write
    lock (WAL + busy_timeout). Runs in the caller's transaction; the number is burnt if it rolls
    back (gaps are fine, duplicates are not).
    """
    bind = db.get_bind() if isinstance(db, AsyncSession) else db
    name = bind.dialect.name
    counter = IncidentNumberCounter
    stmt: postgresql.Insert | sqlite.Insert
    if name == "postgresql":
        stmt = postgresql.insert(counter).values(day=day, last=count)
        stmt = stmt.on_conflict_do_update(
            index_elements=["day"], set_={"last": counter.last + count}
        )
    elif name == "sqlite":
        stmt = sqlite.insert(counter).values(day=day, last=count)
        stmt = stmt.on_conflict_do_update(
            index_elements=["day"], set_={"last": counter.last + count}
        )
    else:  # pragma: no cover - create_engine refuses other backends
        raise StoreError(f"incident numbering does not support the {name} database")
    result = await db.execute(stmt.returning(counter.last))
    return int(result.scalar_one()) - count + 1


# --------------------------------------------------------------------------- follow-up work


class Callback(Base):
    """A promise to call someone back. reason abandoned|missed|after_hours|capped;
    status open|in_progress|done|failed. `call_id` is the Linkedid, loosely referenced (the IVR
    may record the request before the call row is written)."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index(None, "status", "requested_at"),
        Index(
            "uq_callbacks_open_number",
            "caller_number",
            unique=True,
            sqlite_where=sa.text("status IN ('open', 'in_progress')"),
            postgresql_where=sa.text("status IN ('open', 'in_progress')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_number: Mapped[str] = mapped_column(String(_NUM), nullable=False, index=True)
    caller_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("callers.id", ondelete="SET NULL"), nullable=True
    )
    reason: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    call_id: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("incidents.id", ondelete="SET NULL"), nullable=True
    )
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    status: Mapped[str] = mapped_column(
        String(_CODE), nullable=False, default="open", server_default="open"
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    outcome: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    worked_by: Mapped[str | None] = mapped_column(String(_EMP), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class CallbackCall(Base):
    """Every reason and call that fed a callback (an abandoned call and a capped call of the
    same number are one promise with two reasons)."""

    __tablename__ = "callback_calls"
    __table_args__ = (UniqueConstraint("callback_id", "reason", "call_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    callback_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("callbacks.id", ondelete="CASCADE"), nullable=False, index=True
    )
    reason: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    call_id: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class MailOutbox(Base):
    """Mail waiting to be sent (or sent). status pending|sending|sent|failed.
    `dedupe_key` makes enqueueing idempotent (one mail per incident event)."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    to_addr: Mapped[str] = mapped_column(String(1000), nullable=False)
    subject: Mapped[str] = mapped_column(String(500), nullable=False)
    body_text: Mapped[str] = mapped_column(Text, nullable=False)
    body_html: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(
        String(_CODE), nullable=False, default="pending", server_default="pending"
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AuditLog(Base):
    """Who did what: roster changes, spy sessions, logins."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(_ID), nullable=False)
    action: Mapped[str] = mapped_column(String(_ID), nullable=False, index=True)
    target: Mapped[str | None] = mapped_column(String(_NAME), nullable=True)
    detail: Mapped[Any] = mapped_column(JsonType, nullable=True)


class SpySession(Base):
    """A supervisor listening to a seat's call (ChanSpy). mode listen|whisper|barge."""

    __tablename__ = "spy_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supervisor: Mapped[str] = mapped_column(String(_EMP), nullable=False)
    seat_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    call_id: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    mode: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    action_id: Mapped[str | None] = mapped_column(String(_ID), nullable=True, index=True)
    spy_channel: Mapped[str | None] = mapped_column(String(_NAME), nullable=True)


# --------------------------------------------------------------------------- knowledge base


class KbArticle(Base):
    """The current version of a knowledge article. `language` zh|en; `status` published|retired;
    `category`/`request_type` null = fits any; `tags` space-separated; `search_text` is title,
    symptoms, steps and tags case-folded in one column (PostgreSQL searches it with a pg_trgm GIN
    index; SQLite with the FTS5 trigram table `kb_articles_fts`, both made by migration 0003)."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    symptoms: Mapped[str] = mapped_column(Text, nullable=False)
    steps: Mapped[str] = mapped_column(Text, nullable=False)
    category: Mapped[str | None] = mapped_column(String(_CODE), nullable=True, index=True)
    request_type: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    tags: Mapped[str] = mapped_column(String(500), nullable=False)
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(
        String(_CODE), nullable=False, default="published", server_default="published"
    )
    search_text: Mapped[str] = mapped_column(Text, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_by: Mapped[str] = mapped_column(String(_ID), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_by: Mapped[str] = mapped_column(String(_ID), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class KbArticleVersion(Base):
    """Every version of every article, never updated or deleted (version 1 is the first text)."""

    __tablename__ = "kb_article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("kb_articles.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    symptoms: Mapped[str] = mapped_column(Text, nullable=False)
    steps: Mapped[str] = mapped_column(Text, nullable=False)
    category: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    request_type: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    tags: Mapped[str] = mapped_column(String(500), nullable=False)
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    status: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    author: Mapped[str] = mapped_column(String(_ID), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


KB_FTS_TABLE = "kb_articles_fts"
"""SQLite only: FTS5 (trigram tokenizer) over kb_articles, rowid = article id, kept in step by
the knowledge-base store (not triggers: a batch migration of kb_articles would drop them)."""
KB_TRGM_INDEX = "ix_kb_articles_search_trgm"
"""PostgreSQL only: GIN pg_trgm index on kb_articles.search_text."""


def is_modelled(name: str | None, type_: str) -> bool:
    """False for the backend-specific search objects the models cannot describe (the FTS5 table
    and its shadow tables, the trigram index): schema comparisons skip them."""
    if name is None:
        return True
    if type_ == "table" and name.startswith(KB_FTS_TABLE):
        return False
    return not (type_ == "index" and name == KB_TRGM_INDEX)


class SeatStateLog(Base):
    """Each change of a seat's desk state (ready, ringing, talking, wrapup, paused, logged_out):
    the state holds from `at` until the seat's next row. `by`: employee ID, `ctid` or `pbx`."""

    __tablename__ = "seat_states"
    __table_args__ = (Index("ix_seat_states_seat_id_at", "seat_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seat_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    state: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(_CODE), nullable=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, index=True)
    by: Mapped[str] = mapped_column(String(_ID), nullable=False)


class DeskDraft(Base):
    """The desk's unsaved incident form of one call (one card per call), kept as the agent types
    so a new ring or a reload loses nothing. `number`: the call's incident once saved."""

    __tablename__ = "desk_drafts"

    call_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    seat_id: Mapped[str] = mapped_column(String(_ID), nullable=False, index=True)
    employee_id: Mapped[str] = mapped_column(String(_EMP), nullable=False)
    fields: Mapped[Any] = mapped_column(JsonType, nullable=False)
    number: Mapped[str | None] = mapped_column(String(_ID), nullable=True)
    saved: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


# --------------------------------------------------------------------------- calendar and roster


class RosterOverride(Base):
    """Who staffs a seat on one day, overriding the configured roster (null = unstaffed)."""

    __tablename__ = "roster_overrides"
    __table_args__ = (Index(None, "day", "seat_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    seat_id: Mapped[str] = mapped_column(String(_ID), nullable=False)
    staffed_by: Mapped[str | None] = mapped_column(String(_EMP), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(_EMP), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class LunchOverride(Base):
    """A change to the weekly lunch rotation. kind `day` (uses `day`: `group_name` is on duty
    that day) or `week_swap` (uses `iso_week` like 2026-W47: `group_name` takes that week)."""

    __tablename__ = "lunch_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    day: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    iso_week: Mapped[str | None] = mapped_column(String(8), nullable=True, index=True)
    group_name: Mapped[str] = mapped_column(String(_ID), nullable=False)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(_EMP), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class Holiday(Base):
    """A calendar exception. kind holiday (closed on a weekday) | makeup_workday (open on a
    weekend day, 调休)."""

    __tablename__ = "holidays"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    name: Mapped[str | None] = mapped_column(String(_NAME), nullable=True)


class WebSession(Base):
    """A logged-in browser. `id` is the SHA-256 hex of the cookie token (never the token)."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(_ID), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False, index=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class QueueLogPosition(Base):
    """Where ctid stopped reading an Asterisk queue_log: the file's inode and a byte offset at
    the start of a line (see ctid.tickets.queue_log)."""

    __tablename__ = "queue_log_positions"

    path: Mapped[str] = mapped_column(String(512), primary_key=True)
    inode: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    offset: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class QueueLogCall(Base):
    """A queue_log call already reconciled, by its log key (`callid@ENTERQUEUE epoch`, unique
    across PBX restarts), so the log's calls are applied exactly once. action added|completed|
    matched (the record was already complete)."""

    __tablename__ = "queue_log_calls"

    log_key: Mapped[str] = mapped_column(String(96), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(_ID), nullable=False, index=True)
    outcome: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    action: Mapped[str] = mapped_column(String(_CODE), nullable=False)
    reconciled_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)


class JournalMark(Base):
    """The last write journal entry applied to this database, per journal file; written in the
    same transaction as the entry's write, so a replay after a crash applies nothing twice."""

    __tablename__ = "journal_marks"

    journal_id: Mapped[str] = mapped_column(String(_ID), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
