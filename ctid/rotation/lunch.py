"""The weekly lunch rotation: ISO weeks, lunch groups taking duty round-robin from an anchor week,
ops overrides (per day, per week), and the plan check that every tier keeps someone at lunch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Literal

from ctid.config import LunchConfig, SeatConfig, Tier
from ctid.core.errors import CtidError
from ctid.core.ids import SeatId

DutySource = Literal["rotation", "week_swap", "day_override"]
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class RotationError(CtidError):
    """The lunch rotation or its overrides are inconsistent (unknown group or seat)."""


@dataclass(frozen=True, order=True)
class IsoWeek:
    """An ISO 8601 week (`2026-W53`); weeks run Monday to Sunday and a year has 52 or 53."""

    year: int
    week: int

    def __post_init__(self) -> None:
        try:
            date.fromisocalendar(self.year, self.week, 1)
        except ValueError as exc:
            raise RotationError(f"{self.year:04d}-W{self.week:02d} is not an ISO week") from exc

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        m = _ISO_WEEK.match(text.strip())
        if not m:
            raise RotationError(f"{text!r} is not an ISO week written YYYY-Www")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    def day(self, weekday: int) -> date:
        """The day of this week with `date.weekday()` number `weekday` (0 = Monday)."""
        return self.monday() + timedelta(days=weekday)

    def __add__(self, weeks: int) -> IsoWeek:
        return IsoWeek.of(self.monday() + timedelta(weeks=weeks))

    def __sub__(self, other: IsoWeek) -> int:
        """Whole weeks from `other` to `self` (counted between Mondays, so W53 and New Year work)."""
        return (self.monday() - other.monday()).days // 7

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"


@dataclass(frozen=True)
class LunchGroup:
    name: str
    seats: tuple[SeatId, ...]


@dataclass(frozen=True)
class RotationOverrides:
    """Ops' changes to the rota, as plain data (the store loads them). A day override beats a week
    swap, which beats the round-robin."""

    days: Mapping[date, str] = field(default_factory=dict)
    """Site-zone date → name of the lunch group on duty that day."""
    weeks: Mapping[IsoWeek, str] = field(default_factory=dict)
    """ISO week → name of the lunch group on duty that whole week."""


NO_OVERRIDES = RotationOverrides()


@dataclass(frozen=True)
class LunchDuty:
    """Who covers lunch on one day, and why."""

    group: LunchGroup
    source: DutySource
    scheduled: LunchGroup
    """The group the plain round-robin would have put on duty."""


@dataclass(frozen=True)
class LunchRotation:
    """During `start`–`end` only the on-duty group takes calls; duty moves one group per ISO week,
    group 0 in the anchor week. With no groups (or disabled) there is no lunch break at all."""

    start: time = time(12, 0)
    end: time = time(13, 30)
    anchor: IsoWeek = IsoWeek(2026, 1)
    groups: tuple[LunchGroup, ...] = ()
    allow_overflow: bool = False
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise RotationError(f"lunch end ({self.end}) must be after lunch start ({self.start})")
        names = [g.name for g in self.groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise RotationError(f"lunch group names are used twice: {', '.join(dupes)}")

    @classmethod
    def from_config(cls, lunch: LunchConfig, seats: Sequence[SeatConfig]) -> LunchRotation:
        known = {s.id for s in seats}
        for g in lunch.groups:
            unknown = [s for s in g.seats if s not in known]
            if unknown:
                raise RotationError(
                    f"lunch group {g.name!r} names unknown seats: {', '.join(unknown)}"
                )
        return cls(
            start=lunch.start,
            end=lunch.end,
            anchor=IsoWeek.parse(lunch.anchor_week),
            groups=tuple(
                LunchGroup(g.name, tuple(SeatId(s) for s in g.seats)) for g in lunch.groups
            ),
            allow_overflow=lunch.allow_overflow,
            enabled=lunch.enabled,
        )

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.groups)

    def group(self, name: str) -> LunchGroup:
        for g in self.groups:
            if g.name == name:
                return g
        known = ", ".join(g.name for g in self.groups) or "none"
        raise RotationError(f"unknown lunch group {name!r} (groups: {known})")

    def scheduled_group(self, week: IsoWeek) -> LunchGroup:
        """Round-robin: Python's `%` is never negative, so weeks before the anchor count back."""
        if not self.groups:
            raise RotationError("the lunch rotation has no groups")
        return self.groups[(week - self.anchor) % len(self.groups)]

    def week_duty(self, week: IsoWeek, overrides: RotationOverrides = NO_OVERRIDES) -> LunchDuty:
        scheduled = self.scheduled_group(week)
        swap = overrides.weeks.get(week)
        if swap is not None:
            return LunchDuty(self.group(swap), "week_swap", scheduled)
        return LunchDuty(scheduled, "rotation", scheduled)

    def duty_on(self, day: date, overrides: RotationOverrides = NO_OVERRIDES) -> LunchDuty:
        """The group on lunch duty on `day` (a site-zone date)."""
        week = self.week_duty(IsoWeek.of(day), overrides)
        name = overrides.days.get(day)
        if name is not None:
            return LunchDuty(self.group(name), "day_override", week.scheduled)
        return week


def uncovered_tiers(group: LunchGroup, seats: Sequence[SeatConfig]) -> list[Tier]:
    """The tiers present on the desk that have no seat in `group`, sorted."""
    tiers = {s.tier for s in seats}
    have = {s.tier for s in seats if s.id in group.seats}
    return sorted(tiers - have)


def _group_problems(
    label: str, group: LunchGroup, rotation: LunchRotation, seats: Sequence[SeatConfig]
) -> list[str]:
    members = ", ".join(group.seats)
    if not any(s.id in group.seats for s in seats):
        return [f"{label}: no seat on lunch duty (group {group.name}: {members})"]
    if rotation.allow_overflow:
        return []  # a missing tier overflows to the other one (the desk state flags it)
    return [
        f"{label}: no {tier} seat on lunch duty (group {group.name}: {members})"
        for tier in uncovered_tiers(group, seats)
    ]


def validate_plan(
    start: date,
    weeks: int,
    *,
    rotation: LunchRotation,
    seats: Sequence[SeatConfig],
    overrides: RotationOverrides = NO_OVERRIDES,
) -> list[str]:
    """Problems with lunch cover in the `weeks` ISO weeks from the one holding `start`, overrides
    included, e.g. `week 2026-W48: no expert seat on lunch duty (group B: seat2, seat4)`.

    An empty list means the plan is acceptable. A missing tier is accepted when the rotation
    allows overflow; a group with no configured seat never is.
    """
    if not rotation.active or weeks <= 0:
        return []
    first = IsoWeek.of(start)
    problems: list[str] = []
    in_range: list[IsoWeek] = [first + i for i in range(weeks)]
    for week in in_range:
        swap = overrides.weeks.get(week)
        if swap is not None and not _known(rotation, swap):
            problems.append(f"week {week}: swap names {_unknown(rotation, swap)}")
            continue
        duty = rotation.week_duty(week, overrides)
        problems += _group_problems(f"week {week}", duty.group, rotation, seats)
    last_day = in_range[-1].day(6)
    for day, name in sorted(overrides.days.items()):
        if not first.monday() <= day <= last_day:
            continue
        if not _known(rotation, name):
            problems.append(f"day {day.isoformat()}: override names {_unknown(rotation, name)}")
            continue
        problems += _group_problems(f"day {day.isoformat()}", rotation.group(name), rotation, seats)
    return problems


def _known(rotation: LunchRotation, name: str) -> bool:
    return any(g.name == name for g in rotation.groups)


def _unknown(rotation: LunchRotation, name: str) -> str:
    return f"unknown lunch group {name!r} (groups: {', '.join(g.name for g in rotation.groups)})"


def seat_names(ids: Iterable[SeatId], seats: Sequence[SeatConfig]) -> list[str]:
    """Display names of `ids`, in configured seat order (unknown ids last, as given)."""
    wanted = list(ids)
    named = [s.name for s in seats if s.id in wanted]
    known = {s.id for s in seats}
    return named + [i for i in wanted if i not in known]
