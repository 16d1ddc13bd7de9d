"""The roster as the rota code sees it (pure, no database): `RosterSeat`, the `Rota` snapshot
(calendar + rotation + seats + overrides) the enforcer, the CLI and the pages act on, and the
stored-override and seeding reports the store returns (`ctid.rotation.roster` keeps them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from ctid.config import Config, SeatConfig, Tier
from ctid.core.ids import SeatId
from ctid.rotation.calendar import CalendarEntry, ServiceCalendar
from ctid.rotation.lunch import (
    NO_OVERRIDES,
    IsoWeek,
    LunchRotation,
    RotationOverrides,
    validate_plan,
)
from ctid.rotation.plan import DeskState, desk_state, render_weeks

MAX_PLAN_WEEKS = 520
"""Plan checks look at most this far ahead (ten years of overrides is plenty)."""

OverrideKind = Literal["day", "week_swap"]


@dataclass(frozen=True)
class RosterSeat:
    """A seat as the roster holds it (the DB row, detached)."""

    id: SeatId
    name: str
    tier: Tier
    interface: str
    staffed_by: str | None = None
    active: bool = True

    def as_config(self) -> SeatConfig:
        """The seat in the shape the pure rotation code takes."""
        return SeatConfig(
            id=self.id,
            name=self.name,
            tier=self.tier,
            interface=self.interface,
            staffed_by=self.staffed_by or "",
        )

    @classmethod
    def from_config(cls, seat: SeatConfig) -> RosterSeat:
        return cls(
            SeatId(seat.id), seat.name, seat.tier, seat.interface, seat.staffed_by or None, True
        )


@dataclass(frozen=True)
class LunchOverrideInfo:
    """One stored lunch override, for listings."""

    kind: OverrideKind
    day: date | None
    week: IsoWeek | None
    group: str
    created_by: str
    created_at: datetime
    note: str | None = None

    @property
    def key(self) -> str:
        return self.day.isoformat() if self.day is not None else str(self.week)


@dataclass(frozen=True)
class SeedReport:
    """What `seed_from_config` did: seats inserted, and where the database differs from config."""

    inserted: tuple[str, ...] = ()
    differences: tuple[str, ...] = ()
    supervisors_added: tuple[str, ...] = ()


@dataclass(frozen=True)
class HolidayImport:
    added: int
    changed: int
    unchanged: int


@dataclass(frozen=True)
class Rota:
    """Everything the desk state depends on, as one immutable snapshot (reloaded on changes)."""

    calendar: ServiceCalendar
    rotation: LunchRotation
    seats: tuple[RosterSeat, ...]
    """Every seat, active or not, in a stable order (config order, then by id)."""
    overrides: RotationOverrides = NO_OVERRIDES
    duty_seats: tuple[SeatConfig, ...] = field(init=False)
    """The active seats, in the shape `desk_state` takes."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "duty_seats", tuple(s.as_config() for s in self.seats if s.active))

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        entries: Sequence[CalendarEntry] = (),
        overrides: RotationOverrides = NO_OVERRIDES,
    ) -> Rota:
        """The rota straight from config (no database): the default roster."""
        return cls(
            calendar=ServiceCalendar.from_config(cfg.hours, cfg.site.timezone, entries),
            rotation=LunchRotation.from_config(cfg.lunch, cfg.seats),
            seats=tuple(RosterSeat.from_config(s) for s in cfg.seats),
            overrides=overrides,
        )

    def seat(self, seat_id: str) -> RosterSeat | None:
        return next((s for s in self.seats if s.id == seat_id), None)

    def state(self, at: datetime) -> DeskState:
        return desk_state(
            at,
            calendar=self.calendar,
            rotation=self.rotation,
            seats=self.duty_seats,
            overrides=self.overrides,
        )

    def problems(self, start: date, weeks: int) -> list[str]:
        """`validate_plan` for the active seats, from the ISO week holding `start`."""
        return validate_plan(
            start,
            weeks,
            rotation=self.rotation,
            seats=self.duty_seats,
            overrides=self.overrides,
        )

    def check_weeks(self, today: date) -> int:
        """How many weeks a plan check must cover: a full turn of the rotation and every future
        override."""
        weeks = max(len(self.rotation.groups), 1)
        this_week = IsoWeek.of(today)
        last = [IsoWeek.of(d) for d in self.overrides.days if d >= today]
        last += [w for w in self.overrides.weeks if w >= this_week]
        if last:
            weeks = max(weeks, max(last) - this_week + 1)
        return min(weeks, MAX_PLAN_WEEKS)

    def render(self, start: date, weeks: int) -> str:
        return render_weeks(
            start,
            weeks,
            rotation=self.rotation,
            seats=self.duty_seats,
            overrides=self.overrides,
            calendar=self.calendar,
        )
