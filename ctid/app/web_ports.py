"""Adapters from the web edge's ports to the stores and services (wiring, so it lives here)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.app.spool import WriteSpool
from ctid.asterisk.ami import AmiConnection
from ctid.core.errors import CtidError, TransitionError
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.errors import ConflictError as TicketConflict
from ctid.tickets.errors import InvalidInputError
from ctid.tickets.errors import NotFoundError as TicketNotFound
from ctid.tickets.store import IncidentStore
from ctid.web.ports import (
    Actor,
    CallerRow,
    ConflictError,
    HealthReport,
    IncidentDraft,
    NotFoundError,
    RejectedError,
    SavedIncident,
)


def _port_error(exc: CtidError) -> CtidError:
    """The tickets' errors as the web's (each picks an HTTP status)."""
    if isinstance(exc, TicketNotFound):
        return NotFoundError(str(exc))
    if isinstance(exc, TicketConflict | TransitionError):
        return ConflictError(str(exc))
    if isinstance(exc, InvalidInputError):
        return RejectedError(str(exc))
    return exc


@dataclass
class IncidentForms:
    """The desktop's incident form: create, or describe + classify + prioritize the call's one."""

    store: IncidentStore

    async def save(self, draft: IncidentDraft, actor: Actor) -> SavedIncident:
        who = actor.employee_id
        try:
            number = draft.number
            if not number and draft.call_id:
                found = await self.store.incident_for_call(draft.call_id)
                number = found.number if found else None
            if not number:
                view = await self.store.create(
                    actor=who,
                    summary=draft.summary,
                    request_type=draft.request_type,
                    description=draft.description,
                    category=draft.category or None,
                    impact=draft.impact or None,
                    urgency=draft.urgency or None,
                    caller_id=draft.caller_id,
                    caller_number=draft.phone or None,
                    caller_name=draft.caller_name or None,
                    owner_seat=actor.seat_id,
                    owner_employee=who,
                )
                return SavedIncident(view.number, view.status)
            await self.store.describe(
                number,
                who,
                summary=draft.summary,
                description=draft.description,
                caller_id=draft.caller_id,
                caller_name=draft.caller_name or None,
            )
            await self.store.apply(
                number,
                "classify",
                who,
                request_type=draft.request_type,
                category=draft.category or None,
            )
            result = await self.store.apply(
                number, "prioritize", who, impact=draft.impact, urgency=draft.urgency
            )
            return SavedIncident(result.incident.number, result.incident.status)
        except CtidError as exc:
            raise _port_error(exc) from exc


@dataclass
class CallerSearch:
    directory: CallerDirectory
    store: IncidentStore

    async def search(self, query: str, limit: int) -> Sequence[CallerRow]:
        rows = []
        for c in await self.directory.search(query, limit=limit):
            rows.append(
                CallerRow(
                    caller_id=c.id,
                    name=c.name,
                    phones=tuple(p.raw for p in c.phones),
                    employee_id=c.employee_id or "",
                    department=c.department or "",
                    office=c.office_location or "",
                    vip=c.vip,
                )
            )
        return rows


@dataclass
class DaemonHealth:
    ami: AmiConnection
    sessions: async_sessionmaker[AsyncSession]
    spool: WriteSpool
    loop_time: Callable[[], float]

    async def health(self) -> HealthReport:
        h = self.ami.health()
        checks = {
            "ami": "logged in" if h.logged_in else f"down ({h.last_error or 'connecting'})",
            "ami_reconnects": str(h.reconnects),
            "ami_events_per_s": f"{h.events_per_s:.1f}",
        }
        ok = h.logged_in
        try:
            async with self.sessions() as s:
                await s.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # a health check reports, it never raises
            checks["database"] = f"down ({type(exc).__name__})"
            ok = False
        checks["db_writes_waiting"] = str(self.spool.backlog)
        if self.spool.backlog:
            ok = False
        return HealthReport(ok=ok, checks=checks)
