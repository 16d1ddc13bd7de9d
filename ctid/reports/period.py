"""What the reports share: site-local days and months as UTC instant ranges, parsing `YYYY-MM-DD`
/ `YYYY-MM` arguments, service hours as reports judge them, the roster (seat tiers, who staffed a
seat on a day) and where each incident came in (its receiving seat)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ctid.config import WEEKDAYS, Config, HoursConfig
from ctid.core.errors import CtidError
from ctid.db.schema import Call, Holiday, Incident, IncidentHistory, RosterOverride, Seat

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class ReportError(CtidError):
    """A report was asked for with arguments that make no sense (bad date, end before start)."""


def site_zone(cfg: Config) -> ZoneInfo:
    return ZoneInfo(cfg.site.timezone)


def local_instant(day: date, at: time, tz: tzinfo) -> datetime:
    """The aware instant of wall-clock `at` on `day` in `tz`, in UTC. A wall time skipped by a DST
    jump moves forward by the gap (the UTC round trip normalises it)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def day_range(start: date, end: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[local midnight starting `start`, local midnight after `end`) as UTC instants."""
    if end < start:
        raise ReportError(f"the period ends ({end}) before it starts ({start})")
    return local_instant(start, time(0), tz), local_instant(end + timedelta(days=1), time(0), tz)


def parse_day(text: str | date, what: str = "date") -> date:
    if isinstance(text, date):
        return text
    if not _DAY.match(text):
        raise ReportError(f"{what} {text!r} is not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{what} {text!r} is not a valid calendar date") from None


def parse_month(text: str) -> tuple[date, date]:
    """`YYYY-MM` → (first day, last day) of that month."""
    m = _MONTH.match(text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ReportError(f"month {text!r} is not a month written YYYY-MM")
    first = date(int(m.group(1)), int(m.group(2)), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@dataclass(frozen=True)
class ServiceHours:
    """When the desk serves, for reports: weekly days and open/close wall times in the site zone,
    holidays (closed all day) and make-up working days (open even on a weekend day)."""

    tz: tzinfo
    hours: HoursConfig
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        if day in self.holidays:
            return False
        if day in self.makeup_workdays:
            return True
        return WEEKDAYS[day.weekday()] in self.hours.days

    def is_open(self, at: datetime) -> bool:
        """Open inclusive, close exclusive; compared as UTC instants (safe across DST)."""
        day = at.astimezone(self.tz).date()
        if not self.is_working_day(day):
            return False
        opens = local_instant(day, self.hours.open, self.tz)
        closes = local_instant(day, self.hours.close, self.tz)
        return opens <= at.astimezone(UTC) < closes


async def load_service_hours(session: AsyncSession, cfg: Config) -> ServiceHours:
    """`[hours]` from the config plus the `holidays` table (`holiday` / `makeup_workday` rows).

    `hours.holidays_file` is parsed by ctid.rotation; pass its `ServiceCalendar.is_open` to
    `compute` when the file must count too.
    """
    holidays = set(cfg.hours.holidays)
    makeup = set(cfg.hours.makeup_workdays)
    for day, kind in await session.execute(select(Holiday.day, Holiday.kind)):
        if kind == "holiday":
            holidays.add(day)
        elif kind == "makeup_workday":
            makeup.add(day)
    # A date listed both ways: the config wins over the table (ops' latest word).
    makeup -= set(cfg.hours.holidays)
    holidays -= set(cfg.hours.makeup_workdays)
    return ServiceHours(
        site_zone(cfg), cfg.hours, frozenset(holidays), frozenset(makeup - holidays)
    )


@dataclass(frozen=True)
class Roster:
    """Seats as configured, completed by the `seats` table (seats since removed from the config),
    and the per-day `roster_overrides`."""

    tiers: dict[str, str]
    names: dict[str, str]
    staffed_by: dict[str, str | None]
    overrides: dict[tuple[date, str], str | None]

    def tier(self, seat: str | None) -> str | None:
        return self.tiers.get(seat) if seat is not None else None

    def staffer(self, seat: str | None, day: date) -> str | None:
        """Who staffed `seat` on `day`: that day's override if any, else the configured roster."""
        if seat is None:
            return None
        if (day, seat) in self.overrides:
            return self.overrides[(day, seat)]
        return self.staffed_by.get(seat)

    def seats_of(self, employee: str, day: date) -> list[str]:
        """The seats `employee` staffed on `day` (sorted; usually one, none for a supervisor)."""
        return sorted(s for s in self.tiers if self.staffer(s, day) == employee)


async def load_roster(
    session: AsyncSession, cfg: Config, days: Iterable[date] | None = None
) -> Roster:
    tiers: dict[str, str] = {}
    names: dict[str, str] = {}
    staffed: dict[str, str | None] = {}
    for seat_id, name, tier, staffed_by in await session.execute(
        select(Seat.id, Seat.name, Seat.tier, Seat.staffed_by)
    ):
        tiers[seat_id], names[seat_id], staffed[seat_id] = tier, name, staffed_by or None
    for seat in cfg.seats:  # the config is the roster's source of truth; the table may lag
        tiers[seat.id], names[seat.id], staffed[seat.id] = (
            seat.tier,
            seat.name,
            seat.staffed_by or None,
        )
    overrides: dict[tuple[date, str], str | None] = {}
    if days is not None:
        wanted = sorted(set(days))
        if wanted:
            query = (
                select(RosterOverride.day, RosterOverride.seat_id, RosterOverride.staffed_by)
                .where(RosterOverride.day >= wanted[0], RosterOverride.day <= wanted[-1])
                .order_by(RosterOverride.created_at, RosterOverride.id)
            )
            for day, seat_id, staffed_by in await session.execute(query):
                overrides[(day, seat_id)] = staffed_by or None  # the latest override wins
    return Roster(tiers, names, staffed, overrides)


OWNERSHIP_ACTIONS = ("reassign", "hand_to_expert")
"""History actions that move an incident to another first-line seat (detail `from_seat`)."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an incident came in: the seat that answered its call, the `create` entry's actor,
    and the owner seat before its first move to another seat (`moved` says whether it moved)."""

    call_seat: str | None = None
    created_by: str | None = None
    moved: bool = False
    first_owner: str | None = None

    def receiving_seat(self, owner_seat: str | None) -> str | None:
        """The seat that answered its call, else its first owner seat."""
        if self.call_seat is not None:
            return self.call_seat
        return self.first_owner if self.moved else owner_seat


async def incident_origins(session: AsyncSession, lo: datetime, hi: datetime) -> dict[int, Origin]:
    """`Origin` of every incident created in [lo, hi) that has a call or history."""
    in_range = (Incident.created_at >= lo, Incident.created_at < hi)
    call_seat: dict[int, str] = {}
    calls = (
        select(Call.incident_id, Call.answered_by_seat)
        .join(Incident, Incident.id == Call.incident_id)
        .where(*in_range, Call.answered_by_seat.is_not(None))
        .order_by(Call.started_at.desc(), Call.id.desc())
    )
    for inc_id, seat in await session.execute(calls):
        if inc_id is not None and seat is not None:
            call_seat[inc_id] = seat  # ends on the earliest call: the one it was opened from
    created_by: dict[int, str] = {}
    first_owner: dict[int, str | None] = {}
    history = (
        select(
            IncidentHistory.incident_id,
            IncidentHistory.action,
            IncidentHistory.actor,
            IncidentHistory.detail,
        )
        .join(Incident, Incident.id == IncidentHistory.incident_id)
        .where(*in_range, IncidentHistory.action.in_(("create", *OWNERSHIP_ACTIONS)))
        .order_by(IncidentHistory.at, IncidentHistory.id)
    )
    for inc_id, action, actor, detail in await session.execute(history):
        if action == "create":
            created_by.setdefault(inc_id, actor)
        elif inc_id not in first_owner:
            info = detail if isinstance(detail, dict) else {}
            from_seat = info.get("from_seat")
            first_owner[inc_id] = str(from_seat) if from_seat else None
    return {
        inc_id: Origin(
            call_seat=call_seat.get(inc_id),
            created_by=created_by.get(inc_id),
            moved=inc_id in first_owner,
            first_owner=first_owner.get(inc_id),
        )
        for inc_id in {*call_seat, *created_by, *first_owner}
    }
