"""The desk's state at an instant (closed / open / lunch, who is on duty), the transition instants
the scheduler fires at, and the plain-text roster table for `ctid roster show`. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Literal

from ctid.config import SeatConfig, Tier
from ctid.core.ids import SeatId
from ctid.rotation.calendar import DAY_ABBR, CalendarError, ServiceCalendar
from ctid.rotation.lunch import (
    NO_OVERRIDES,
    DutySource,
    IsoWeek,
    LunchRotation,
    RotationOverrides,
    seat_names,
    uncovered_tiers,
)

Mode = Literal["closed", "open", "lunch"]
OffReason = Literal["lunch", "closed"]
TransitionKind = Literal["open", "lunch_start", "lunch_end", "close"]

SEARCH_DAYS = 3 * 366
"""How far ahead `desk_state` looks for the next transition before giving up."""


@dataclass(frozen=True)
class Transition:
    """An instant at which the desk's mode changes; `mode` is the mode from then on."""

    at: datetime
    """Aware, in the site zone."""
    kind: TransitionKind
    mode: Mode
    lunch_group: str | None = None
    """The group on duty, for a transition into lunch."""


@dataclass(frozen=True)
class DeskState:
    """What the desk looks like at `at`; what the IVR and the queue-membership logic act on."""

    at: datetime
    mode: Mode
    on_duty: frozenset[SeatId]
    off_duty: Mapping[SeatId, OffReason]
    overflow_expert_to_ordinary: bool
    """At lunch with no expert seat on duty: expert calls go to the ordinary seats (IVR says so)."""
    lunch_group: str | None
    next_transition: datetime
    """Aware, in the site zone."""
    next_mode: Mode
    uncovered_tiers: frozenset[Tier] = frozenset()
    """Tiers with nobody on duty at lunch (empty outside lunch)."""
    lunch_source: DutySource | None = None
    """Why `lunch_group` is on duty: the round-robin, a week swap or a day override."""
    holiday: str | None = None
    """Set (possibly to "") when today is a public holiday; the holiday's name."""


def _kind(before: Mode, after: Mode) -> TransitionKind:
    if after == "closed":
        return "close"
    if after == "lunch":
        return "open" if before == "closed" else "lunch_start"
    return "open" if before == "closed" else "lunch_end"


def day_transitions(
    day: date,
    *,
    calendar: ServiceCalendar,
    rotation: LunchRotation,
    overrides: RotationOverrides = NO_OVERRIDES,
) -> list[Transition]:
    """The mode changes on one site-zone day, in order (empty when the desk is closed all day).

    Open and lunch times are wall-clock times, so they stay 08:00 / 12:00 local across DST.
    """
    window = calendar.service_window(day)
    if window is None:
        return []
    opens, closes = window
    # (start, end, mode, group) pieces; instants compared in UTC (see ServiceCalendar.is_open).
    pieces: list[tuple[datetime, datetime, Mode, str | None]] = []
    if rotation.active:
        group = rotation.duty_on(day, overrides).group.name
        lunch_from = max(calendar.local(day, rotation.start), opens, key=_utc)
        lunch_to = min(calendar.local(day, rotation.end), closes, key=_utc)
        if _utc(lunch_from) < _utc(lunch_to):
            pieces += [
                (opens, lunch_from, "open", None),
                (lunch_from, lunch_to, "lunch", group),
                (lunch_to, closes, "open", None),
            ]
    if not pieces:
        pieces = [(opens, closes, "open", None)]
    out: list[Transition] = []
    mode: Mode = "closed"
    for begin, end, piece_mode, group_name in pieces:
        if _utc(begin) >= _utc(end):
            continue  # lunch starting at opening time, or ending at closing time
        if piece_mode != mode:
            out.append(Transition(begin, _kind(mode, piece_mode), piece_mode, group_name))
            mode = piece_mode
    out.append(Transition(closes, "close", "closed"))
    return out


def transitions(
    start: datetime,
    end: datetime,
    *,
    calendar: ServiceCalendar,
    rotation: LunchRotation,
    overrides: RotationOverrides = NO_OVERRIDES,
) -> list[Transition]:
    """Every transition with `start <= at < end` (both aware), in order."""
    lo, hi = _utc(start), _utc(end)
    out: list[Transition] = []
    day = calendar.local_date(start)
    last = calendar.local_date(end)
    while day <= last:
        for t in day_transitions(day, calendar=calendar, rotation=rotation, overrides=overrides):
            if lo <= _utc(t.at) < hi:
                out.append(t)
        day += timedelta(days=1)
    return out


def desk_state(
    at: datetime,
    *,
    calendar: ServiceCalendar,
    rotation: LunchRotation,
    seats: Sequence[SeatConfig],
    overrides: RotationOverrides = NO_OVERRIDES,
) -> DeskState:
    """The desk at instant `at` (aware): mode, who takes calls, and when that next changes.

    Opening and lunch start are inclusive, lunch end and closing exclusive: at 12:00 the desk is
    at lunch, at 13:30 open again, at 17:30 closed. Raises `RotationError` when an override names
    an unknown group (`validate_plan` reports that first) and `CalendarError` when the calendar
    has no service hours at all in the next three years.
    """
    if at.tzinfo is None:
        raise CalendarError("desk_state needs an aware datetime")
    t = _utc(at)
    today = calendar.local_date(at)
    mode: Mode = "closed"
    group: str | None = None
    nxt: Transition | None = None
    day = today
    while nxt is None:
        if (day - today).days > SEARCH_DAYS:
            raise CalendarError(
                f"no service hours within {SEARCH_DAYS} days of {today.isoformat()}"
            )
        for tr in day_transitions(day, calendar=calendar, rotation=rotation, overrides=overrides):
            if _utc(tr.at) <= t:
                mode, group = tr.mode, tr.lunch_group
            else:
                nxt = tr
                break
        day += timedelta(days=1)
    ids = [SeatId(s.id) for s in seats]
    off: dict[SeatId, OffReason] = {}
    uncovered: frozenset[Tier] = frozenset()
    source: DutySource | None = None
    if mode == "closed":
        off = dict.fromkeys(ids, "closed")
    elif mode == "lunch":
        duty = rotation.duty_on(today, overrides)
        source = duty.source
        off = {i: "lunch" for i in ids if i not in duty.group.seats}
        uncovered = frozenset(uncovered_tiers(duty.group, seats))
    on = frozenset(i for i in ids if i not in off)
    return DeskState(
        at=at.astimezone(calendar.tz),
        mode=mode,
        on_duty=on,
        off_duty=MappingProxyType(off),
        # Only a real redirect: with no ordinary seat either there is nobody to overflow to.
        overflow_expert_to_ordinary="expert" in uncovered and "ordinary" not in uncovered,
        lunch_group=group,
        next_transition=nxt.at,
        next_mode=nxt.mode,
        uncovered_tiers=uncovered,
        lunch_source=source,
        holiday=calendar.holidays.get(today),
    )


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def _md(day: date) -> str:
    return f"{DAY_ABBR[day.weekday()]} {day.month:02d}-{day.day:02d}"


def render_weeks(
    start: date,
    weeks: int,
    *,
    rotation: LunchRotation,
    seats: Sequence[SeatConfig],
    overrides: RotationOverrides = NO_OVERRIDES,
    calendar: ServiceCalendar | None = None,
) -> str:
    """The roster table for `ctid roster show --weeks N`, from the ISO week holding `start`.

    Columns: week, dates (first–last weekly working day), the lunch-duty group and its seats, the
    seats off at lunch, notes. A `*` marks a week changed by a swap or a day override; with a
    calendar, holidays and make-up days inside the week are noted too.
    """
    weekdays = sorted(calendar.days) if calendar and calendar.days else list(range(5))
    header = ("week", "dates", "on duty at lunch", "off", "notes")
    rows: list[tuple[str, str, str, str, str]] = []
    first = IsoWeek.of(start)
    for i in range(max(weeks, 0)):
        week = first + i
        dates = f"{_md(week.day(weekdays[0]))} – {_md(week.day(weekdays[-1]))}"
        notes: list[str] = []
        if not rotation.active:
            rows.append((str(week), dates, "(no lunch rotation)", "", ""))
            continue
        duty = rotation.week_duty(week, overrides)
        if duty.source == "week_swap":
            notes.append(f"week swap: {duty.group.name} instead of {duty.scheduled.name}")
        for d in (week.day(n) for n in range(7)):
            name = overrides.days.get(d)
            if name is not None and name != duty.group.name:
                notes.append(f"{_md(d)} lunch duty {name}")
        mark = " *" if notes else ""
        if calendar is not None:
            for d in (week.day(n) for n in range(7)):
                differs = calendar.is_working_day(d) != (d.weekday() in calendar.days)
                note = calendar.note(d)
                if differs and note:
                    notes.append(f"{_md(d)} {note}")
        on = ", ".join(seat_names(duty.group.seats, seats))
        off = ", ".join(s.name for s in seats if s.id not in duty.group.seats)
        rows.append((str(week), dates, f"{duty.group.name}: {on}{mark}", off, "; ".join(notes)))
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [header, tuple("-" * w for w in widths), *rows]
    return (
        "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines
        )
        + "\n"
    )
