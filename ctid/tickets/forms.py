"""The agent desktop's incident form (`IncidentForms`: create, or describe + classify + prioritize
the call's incident) and the caller search (`CallerSearch`), with their view types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ctid.core.actor import Actor
from ctid.core.errors import StateConflictError
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.profiles import CallerProfiles
from ctid.tickets.views import (
    CallerView,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentDraft:
    """The incident form of the agent desktop, validated for shape (the port checks the rest)."""

    number: str | None
    """The incident opened for this call, if any (update it rather than open another)."""
    call_id: str | None
    caller_id: int | None
    """A directory caller; None with a name/phone means a new caller."""
    caller_name: str
    phone: str
    department: str
    office: str
    request_type: str
    category: str
    impact: str
    urgency: str
    summary: str
    description: str


@dataclass(frozen=True, slots=True)
class SavedIncident:
    number: str
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerRow:
    caller_id: int
    name: str
    phones: tuple[str, ...] = ()
    employee_id: str = ""
    department: str = ""
    office: str = ""
    vip: bool = False
    open_incidents: int = 0


def caller_row(c: CallerView, open_incidents: int = 0) -> CallerRow:
    return CallerRow(
        caller_id=c.id,
        name=c.name,
        phones=tuple(p.raw for p in c.phones),
        employee_id=c.employee_id or "",
        department=c.department or "",
        office=c.office_location or "",
        vip=c.vip,
        open_incidents=open_incidents,
    )


@dataclass
class IncidentForms:
    """The desktop's incident form: create, or describe + classify + prioritize the call's one;
    corrections to a directory caller's department or office made in the pop go to the
    directory (audited there)."""

    store: IncidentStore
    directory: CallerDirectory | None = None

    async def _correct_caller(self, draft: IncidentDraft, who: str) -> None:
        if self.directory is None or draft.caller_id is None:
            return
        caller = await self.directory.get(draft.caller_id)
        if caller is None:
            return
        changes: dict[str, object] = {}
        if draft.department and draft.department != (caller.department or ""):
            changes["department"] = draft.department
        if draft.office and draft.office != (caller.office_location or ""):
            changes["office_location"] = draft.office
        if changes:
            await self.directory.update(draft.caller_id, changes, who)

    async def save(self, draft: IncidentDraft, actor: Actor) -> SavedIncident:
        who = actor.employee_id
        await self._correct_caller(draft, who)
        number = draft.number
        if draft.call_id:
            found = await self.store.incident_for_call(draft.call_id)
            if found is not None and number and found.number != number:
                # The card of one call must never write into another call's incident.
                raise StateConflictError(
                    f"this call's incident is {found.number}, not {number}: the form was not saved"
                )
            number = found.number if found else number
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


@dataclass
class CallerSearch:
    """Callers whose name, employee ID or phone matches a query (the desktop's search box)."""

    directory: CallerDirectory
    store: IncidentStore
    profiles: CallerProfiles | None = None
    """Counts each caller's open incidents (without it the list shows 0)."""

    async def search(self, query: str, limit: int) -> Sequence[CallerRow]:
        found = await self.directory.search(query, limit=limit)
        counts = (
            await self.profiles.open_incident_counts(c.id for c in found) if self.profiles else {}
        )
        return [caller_row(c, counts.get(c.id, 0)) for c in found]
