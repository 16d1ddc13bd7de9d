"""The monthly per-agent review: incidents handled, consultations answered and follow-ups made
(satisfaction recorded, callbacks done), per seat and per staff member, for one site-local month.
Definitions: docs/KPIS.md ("Monthly agent review")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.db.schema import Callback, Incident, IncidentHistory, User
from ctid.reports.kpi import NONE_KEY
from ctid.reports.period import (
    Origin,
    Roster,
    day_range,
    days_between,
    incident_origins,
    load_roster,
    parse_month,
    site_zone,
)

CONSULTATION = "consultation"
RATE_ACTION = "rate"
CALLER_ACTOR = "caller"
"""The actor of a rating the caller gave through the survey link: not a follow-up by staff."""
CALLBACK_DONE = "done"


@dataclass(frozen=True, slots=True)
class AgentMonthRow:
    """One seat (`key` = seat id) or one staff member (`key` = employee id)."""

    key: str
    name: str
    incidents_handled: int
    consultations_answered: int
    satisfaction_recorded: int
    callbacks_done: int

    @property
    def followups(self) -> int:
        return self.satisfaction_recorded + self.callbacks_done


@dataclass(frozen=True, slots=True)
class AgentMonth:
    month: str
    """`YYYY-MM`, site-local."""
    timezone: str
    seats: tuple[AgentMonthRow, ...]
    staff: tuple[AgentMonthRow, ...]


@dataclass
class _Acc:
    handled: int = 0
    consultations: int = 0
    rated: int = 0
    callbacks: int = 0


async def compute(
    sessions: async_sessionmaker[AsyncSession], cfg: Config, month: str
) -> AgentMonth:
    """The review for `month` (`YYYY-MM`, site-local days)."""
    first, last = parse_month(month)
    tz = site_zone(cfg)
    lo, hi = day_range(first, last, tz)
    seats: defaultdict[str, _Acc] = defaultdict(_Acc)
    staff: defaultdict[str, _Acc] = defaultdict(_Acc)

    def local_day(at: datetime) -> date:
        return at.astimezone(tz).date()

    async with sessions() as s:
        roster = await load_roster(s, cfg, days_between(first, last))
        names = {emp: name for emp, name in (await s.execute(select(User.employee_id, User.name)))}
        for sup in cfg.supervisors:
            names.setdefault(sup.employee_id, sup.name)
        people = set(names) | {e for e in roster.staffed_by.values() if e}

        for seat, emp, rtype in await _handled(s, roster, people, lo, hi, local_day):
            for acc in (seats[seat or NONE_KEY], staff[emp or NONE_KEY]):
                acc.handled += 1
                acc.consultations += rtype == CONSULTATION

        rated = select(IncidentHistory.at, IncidentHistory.actor).where(
            IncidentHistory.action == RATE_ACTION,
            IncidentHistory.at >= lo,
            IncidentHistory.at < hi,
            IncidentHistory.actor != CALLER_ACTOR,
        )
        for at, actor in await s.execute(rated):
            seat, emp = _who(roster, actor, local_day(at))
            seats[seat or NONE_KEY].rated += 1
            staff[emp or NONE_KEY].rated += 1

        # `done` is final, so the row's last update is when the callback was completed.
        done = select(Callback.updated_at, Callback.worked_by).where(
            Callback.status == CALLBACK_DONE, Callback.updated_at >= lo, Callback.updated_at < hi
        )
        for at, worker in await s.execute(done):
            seat, emp = _who(roster, worker, local_day(at))
            seats[seat or NONE_KEY].callbacks += 1
            staff[emp or NONE_KEY].callbacks += 1

    seat_keys = [c.id for c in cfg.seats]
    seat_keys += sorted(k for k in seats if k not in seat_keys and k != NONE_KEY)
    staff_keys = sorted({*(e for e in roster.staffed_by.values() if e), *staff} - {NONE_KEY})
    if NONE_KEY in seats:
        seat_keys.append(NONE_KEY)
    if NONE_KEY in staff:
        staff_keys.append(NONE_KEY)
    return AgentMonth(
        month=f"{first:%Y-%m}",
        timezone=cfg.site.timezone,
        seats=tuple(_row(k, roster.names.get(k, ""), seats.get(k)) for k in seat_keys),
        staff=tuple(_row(k, names.get(k, ""), staff.get(k)) for k in staff_keys),
    )


def _row(key: str, name: str, acc: _Acc | None) -> AgentMonthRow:
    a = acc or _Acc()
    return AgentMonthRow(key, name, a.handled, a.consultations, a.rated, a.callbacks)


def _who(roster: Roster, actor: str | None, day: date) -> tuple[str | None, str | None]:
    """(seat, employee) for an actor that is either a seat id or an employee id."""
    if not actor:
        return None, None
    if actor in roster.tiers:
        return actor, roster.staffer(actor, day)
    seats = roster.seats_of(actor, day)
    return (seats[0] if seats else None), actor


async def _handled(
    s: AsyncSession,
    roster: Roster,
    people: set[str],
    lo: datetime,
    hi: datetime,
    local_day: Callable[[datetime], date],
) -> list[tuple[str | None, str | None, str]]:
    """(receiving seat, receiving staff member, request type) of each incident created in the
    month. The receiving seat is the seat that answered the call the incident was opened from,
    else its first owner seat, else the seat its staff member staffed that day; the staff member
    is who recorded it by hand, else its owner when ownership never moved, else who staffed the
    receiving seat that day."""
    origins = await incident_origins(s, lo, hi)
    incidents = select(
        Incident.id,
        Incident.created_at,
        Incident.request_type,
        Incident.owner_seat,
        Incident.owner_employee,
    ).where(
        Incident.created_at >= lo,
        Incident.created_at < hi,
        Incident.merged_into_id.is_(None),  # a withdrawn duplicate is nobody's work
    )
    out: list[tuple[str | None, str | None, str]] = []
    for inc_id, created, rtype, owner_seat, owner_emp in await s.execute(incidents):
        origin = origins.get(inc_id, Origin())
        seat = origin.receiving_seat(owner_seat)
        recorder = origin.created_by
        emp: str | None
        if recorder is not None and recorder in people and recorder not in roster.tiers:
            emp = recorder
        elif not origin.moved and owner_emp:
            emp = owner_emp
        else:
            emp = roster.staffer(seat, local_day(created))
        if seat is None and emp is not None:
            # Recorded by hand with no owner seat: the seat its recorder staffed that day.
            staffed = roster.seats_of(emp, local_day(created))
            seat = staffed[0] if staffed else None
        out.append((seat, emp, rtype))
    return out
