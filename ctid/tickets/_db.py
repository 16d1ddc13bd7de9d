"""Shared plumbing of the tickets stores: a write unit of work that takes the database's write lock
first, caller look-up by normalised phone, and ORM row ⇄ view/lifecycle-state conversion."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.db.schema import Callback, Caller, CallerPhone, Incident, IncidentHistory, JournalMark
from ctid.journal import AlreadyApplied, EntryMark, current_entry
from ctid.tickets.errors import InvalidInputError
from ctid.tickets.lifecycle import IncidentState
from ctid.tickets.phones import PhonePlan, normalize_phone
from ctid.tickets.text import clip
from ctid.tickets.views import (
    CallbackView,
    CallerView,
    HistoryView,
    IncidentView,
    PhoneView,
)
from ctid.tickets.vocabulary import STATUSES, Status


@asynccontextmanager
async def write_unit(
    sessions: async_sessionmaker[AsyncSession], lock: str | None = None
) -> AsyncIterator[AsyncSession]:
    """One transaction that writes. SQLite: `BEGIN IMMEDIATE` takes the write lock before the
    first read, so a read-then-write never fails with SQLITE_BUSY (a deferred transaction that
    read first cannot upgrade its lock once another writer committed) and sees the latest data.
    PostgreSQL: `lock` names a transaction-scoped advisory lock that serialises units working on
    the same key (one call, one phone number), since those checks have no unique index to lean on.
    """
    async with sessions() as session, session.begin():
        conn = await session.connection()
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif lock is not None:
            await session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": lock}
            )
        entry = current_entry.get()
        if entry is not None and not entry.claimed:
            # Replaying the write journal: this transaction carries the entry's mark.
            await claim_journal_entry(session, entry)
        yield session


async def claim_journal_entry(session: AsyncSession, entry: EntryMark) -> None:
    """Move the journal's mark to `entry.seq` in this transaction; `AlreadyApplied` if the
    database already has it (entries are applied in order, so one number per journal does)."""
    moved = await session.execute(
        update(JournalMark)
        .where(JournalMark.journal_id == entry.journal_id, JournalMark.seq < entry.seq)
        .values(seq=entry.seq)
    )
    if not getattr(moved, "rowcount", 0):
        if await session.get(JournalMark, entry.journal_id) is not None:
            raise AlreadyApplied(f"journal entry {entry.seq} is already in the database")
        session.add(JournalMark(journal_id=entry.journal_id, seq=entry.seq))
        await session.flush()
    entry.claimed = True


_CALLERS_WITH_NUMBER = (
    select(CallerPhone.caller_id)
    .where(CallerPhone.number_normalized == bindparam("normalized"))
    .distinct()
    .order_by(CallerPhone.caller_id)
)
"""Built once: every ringing call asks it, and building and caching the statement per call was
half of the lookup's event-loop time (a phone row always has its caller: a foreign key)."""


async def caller_ids_for(session: AsyncSession, normalized: str) -> list[int]:
    """Callers that have this normalised number, oldest first."""
    rows = await session.execute(_CALLERS_WITH_NUMBER, {"normalized": normalized})
    return [int(r) for r in rows.scalars()]


async def caller_views(session: AsyncSession, callers: Iterable[Caller]) -> list[CallerView]:
    """Views of `callers` (order kept), with their phones in one query."""
    rows = list(callers)
    if not rows:
        return []
    ids = [c.id for c in rows]
    phones: dict[int, list[PhoneView]] = {i: [] for i in ids}
    result = await session.execute(
        select(CallerPhone).where(CallerPhone.caller_id.in_(ids)).order_by(CallerPhone.id)
    )
    for p in result.scalars():
        phones[p.caller_id].append(PhoneView(p.number_normalized, p.raw, p.kind))
    return [caller_view(c, phones[c.id]) for c in rows]


def caller_view(c: Caller, phones: Iterable[PhoneView]) -> CallerView:
    return CallerView(
        id=c.id,
        name=c.name,
        employee_id=c.employee_id,
        department=c.department,
        office_location=c.office_location,
        email=c.email,
        vip=bool(c.vip),
        notes=c.notes,
        phones=tuple(phones),
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def incident_view(r: Incident) -> IncidentView:
    return IncidentView(
        id=r.id,
        number=r.number,
        status=r.status,
        channel=r.channel,
        request_type=r.request_type,
        category=r.category,
        impact=r.impact,
        urgency=r.urgency,
        priority=r.priority,
        summary=r.summary,
        description=r.description,
        caller_id=r.caller_id,
        caller_number=r.caller_number,
        caller_name=r.caller_name,
        owner_seat=r.owner_seat,
        owner_employee=r.owner_employee,
        owner_group=r.owner_group,
        sla_response_due=r.sla_response_due,
        sla_resolve_due=r.sla_resolve_due,
        responded_at=r.responded_at,
        resolved_at=r.resolved_at,
        closed_at=r.closed_at,
        flags=tuple(r.flags or ()),
        satisfaction=r.satisfaction,
        satisfaction_comment=r.satisfaction_comment,
        created_at=r.created_at,
        updated_at=r.updated_at,
        version=r.version,
    )


def history_view(h: IncidentHistory) -> HistoryView:
    detail = h.detail if isinstance(h.detail, dict) else {}
    return HistoryView(
        at=h.at,
        actor=h.actor,
        action=h.action,
        from_status=h.from_status,
        to_status=h.to_status,
        detail=dict(detail),
    )


def callback_view(c: Callback) -> CallbackView:
    return CallbackView(
        id=c.id,
        caller_number=c.caller_number,
        caller_id=c.caller_id,
        reason=c.reason,
        call_id=c.call_id,
        incident_id=c.incident_id,
        requested_at=c.requested_at,
        status=c.status,
        attempts=c.attempts,
        outcome=c.outcome,
        worked_by=c.worked_by,
        updated_at=c.updated_at,
    )


async def identify_caller(
    s: AsyncSession, plan: PhonePlan, raw_number: str | None, cid_name: str | None
) -> tuple[str | None, int | None, str | None]:
    """(number to store, caller id if exactly one caller has it, name to show)."""
    norm = normalize_phone(raw_number or "", plan)
    number = norm.number if norm else clip(raw_number, 64)
    name = clip(cid_name, 128)
    if norm is None:
        return number, None, name
    ids = await caller_ids_for(s, norm.number)
    if len(ids) != 1:
        return number, None, name  # unknown, or shared: the agent picks on the screen-pop
    caller = await s.get(Caller, ids[0])
    return number, ids[0], caller.name if caller else name


Identity = tuple[str | None, int | None, str | None]
"""(number to store, caller id if exactly one caller has it, name to show)."""


async def identify_callers(
    s: AsyncSession, plan: PhonePlan, wanted: Iterable[tuple[str | None, str | None]]
) -> list[Identity]:
    """`identify_caller` for many (raw number, caller-ID name) pairs in one query, in order."""
    pairs = list(wanted)
    norms = [normalize_phone(raw or "", plan) for raw, _ in pairs]
    numbers = sorted({n.number for n in norms if n is not None})
    owners: dict[str, dict[int, str]] = {}
    for start in range(0, len(numbers), 500):
        rows = await s.execute(
            select(CallerPhone.number_normalized, Caller.id, Caller.name)
            .join(Caller, CallerPhone.caller_id == Caller.id)
            .where(CallerPhone.number_normalized.in_(numbers[start : start + 500]))
        )
        for number, cid, owner in rows:
            owners.setdefault(number, {})[int(cid)] = owner
    out: list[Identity] = []
    for (raw, cid_name), norm in zip(pairs, norms, strict=True):
        name = clip(cid_name, 128)
        if norm is None:
            out.append((clip(raw, 64), None, name))
            continue
        found = owners.get(norm.number, {})
        if len(found) != 1:
            out.append((norm.number, None, name))
        else:
            ((cid, cname),) = found.items()
            out.append((norm.number, cid, cname))
    return out


def aware(dt: datetime) -> datetime:
    """`dt` itself, or `InvalidInputError` when it has no time zone."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidInputError(f"{dt.isoformat()} has no time zone")
    return dt


ACTOR_MAX = 64
"""The longest actor name a history row keeps."""


def incident_state(row: Incident, caller_email: str | None, *, version: int) -> IncidentState:
    """The lifecycle's view of an incident row (an unknown stored status reads as in_progress)."""
    status: Status = next((st for st in STATUSES if st == row.status), "in_progress")
    return IncidentState(
        number=row.number,
        status=status,
        request_type=row.request_type,  # type: ignore[arg-type]
        category=row.category,  # type: ignore[arg-type]
        impact=row.impact,  # type: ignore[arg-type]
        urgency=row.urgency,  # type: ignore[arg-type]
        priority=row.priority,
        owner_seat=row.owner_seat,
        owner_employee=row.owner_employee,
        owner_group=row.owner_group,
        created_at=row.created_at,
        sla_response_due=row.sla_response_due,
        sla_resolve_due=row.sla_resolve_due,
        responded_at=row.responded_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
        flags=tuple(row.flags or ()),
        satisfaction=row.satisfaction,
        satisfaction_comment=row.satisfaction_comment,
        caller_email=caller_email,
        version=version,
    )


def store_state(row: Incident, st: IncidentState) -> None:
    """Write the lifecycle's new state back into the row."""
    row.status = st.status
    row.request_type = st.request_type
    row.category = st.category
    row.impact = st.impact
    row.urgency = st.urgency
    row.priority = st.priority
    row.owner_seat = st.owner_seat
    row.owner_employee = st.owner_employee
    row.owner_group = st.owner_group
    row.sla_response_due = st.sla_response_due
    row.sla_resolve_due = st.sla_resolve_due
    row.responded_at = st.responded_at
    row.resolved_at = st.resolved_at
    row.closed_at = st.closed_at
    if list(row.flags or ()) != list(st.flags):
        row.flags = list(st.flags)
    row.satisfaction = st.satisfaction
    row.satisfaction_comment = st.satisfaction_comment


def history_row(
    incident_id: int,
    *,
    at: datetime,
    actor: str,
    action: str,
    to_status: str | None,
    from_status: str | None = None,
    detail: dict[str, Any] | None = None,
) -> IncidentHistory:
    """One `incident_history` row (None values left out of `detail`)."""
    return IncidentHistory(
        **history_values(
            incident_id,
            at=at,
            actor=actor,
            action=action,
            to_status=to_status,
            from_status=from_status,
            detail=detail,
        )
    )


def history_values(
    incident_id: int,
    *,
    at: datetime,
    actor: str,
    action: str,
    to_status: str | None,
    from_status: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of one `incident_history` row (for bulk inserts)."""
    return {
        "incident_id": incident_id,
        "at": at,
        "actor": actor[:ACTOR_MAX],
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "detail": {k: v for k, v in (detail or {}).items() if v is not None},
    }
