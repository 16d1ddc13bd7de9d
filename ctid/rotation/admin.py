"""The roster as the ops page edits it (`RosterAdmin`: seats, lunch overrides, holidays; the rota
enforcer applies each change) and `RosterSeats`, who staffs which seat right now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import structlog

from ctid.config import Config, Tier
from ctid.core.actor import Actor
from ctid.core.clock import Clock
from ctid.core.errors import ConfigError, CtidError, RequestRefusedError
from ctid.core.ids import SeatId
from ctid.rotation.calendar import CalendarError
from ctid.rotation.desk import state_summary
from ctid.rotation.enforcer import RefusedChange, RotaEnforcer
from ctid.rotation.lunch import IsoWeek, RotationError
from ctid.rotation.roster import TIERS, RosterError, RosterSeat, RosterStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterSeatRow:
    seat_id: str
    name: str
    tier: str
    interface: str
    staffed_by: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatChanges:
    """The seat form; the adapter changes only what differs (`RosterStore.set_name/set_tier/
    set_interface/set_staff/set_active`)."""

    name: str
    tier: str
    interface: str
    staffed_by: str
    """Empty: nobody staffs the seat."""
    active: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LunchOverrideRow:
    kind: Literal["day", "week_swap"]
    key: str
    """`2026-12-03` for a day, `2026-W49` for a week swap (what `remove_override` takes)."""
    group: str
    created_by: str = ""
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LunchWeekRow:
    """One ISO week of the lunch calendar: who is on duty, and whether ops swapped it."""

    week: str
    """`2026-W48`."""
    monday: date
    friday: date
    scheduled: str
    """The group the plain rotation puts on duty."""
    on_duty: str
    """The group on duty that week (a week swap, else the rotation's)."""
    days: tuple[tuple[date, str], ...] = ()
    """Single-day overrides inside the week: (day, group)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RosterView:
    seats: tuple[RosterSeatRow, ...]
    overrides: tuple[LunchOverrideRow, ...] = ()
    lunch_groups: tuple[str, ...] = ()
    plan_text: str = ""
    """The coming weeks as `ctid roster show --weeks N` prints them (`Rota.render`)."""
    desk: Mapping[str, object] = field(default_factory=dict)
    """`ctid.rotation.desk.state_summary` for now."""
    holidays: tuple[tuple[date, str, str], ...] = ()
    """(day, kind holiday|workday, name) stored in the database, upcoming first."""
    staff: tuple[tuple[str, str], ...] = ()
    """(employee ID, name) of who may staff a seat, by name."""
    weeks: tuple[LunchWeekRow, ...] = ()
    """The lunch calendar from this week on."""
    group_seats: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Each lunch group and its seats (the page checks lunch cover before saving)."""
    allow_overflow: bool = False
    """A tier missing at lunch is accepted (calls overflow to the other tier)."""
    refused: tuple[RefusedChange, ...] = ()
    """Rota changes the PBX refused and that are still wanted (e.g. removing a static member)."""


@dataclass(frozen=True, slots=True)
class HolidaysImported:
    added: int
    changed: int
    unchanged: int


_ROSTER_ERRORS = (RosterError, RotationError, CalendarError, ConfigError)
"""Refusals of the roster (PlanRejectedError is a RosterError, HolidayFileError a ConfigError)."""


@dataclass
class RosterAdmin:
    """`RosterPort` over `RosterStore`; after every change the rota enforcer reloads and applies
    it (pauses, queue memberships)."""

    store: RosterStore
    rota: RotaEnforcer
    clock: Clock

    async def _changed(self) -> None:
        # The change is committed; a PBX hiccup applying it must not turn it into an error
        # (the enforcer's next transition or resync applies it again).
        try:
            await self.rota.roster_changed()
        except CtidError as exc:
            log.warning("roster_apply_failed", error=str(exc))

    async def view(self, weeks: int) -> RosterView:
        if not 1 <= weeks <= 104:
            raise RequestRefusedError("weeks must be between 1 and 104")
        today = self.clock.now().date()
        seats = await self.store.seats()
        overrides = await self.store.override_list()
        holidays = await self.store.holidays()
        current = self.rota.current
        rota = current.rota
        week_rows: list[LunchWeekRow] = []
        if rota.rotation.active:
            first = IsoWeek.of(today)
            for i in range(weeks):
                week = first + i
                duty = rota.rotation.week_duty(week, rota.overrides)
                week_rows.append(
                    LunchWeekRow(
                        week=str(week),
                        monday=week.monday(),
                        friday=week.day(4),
                        scheduled=duty.scheduled.name,
                        on_duty=duty.group.name,
                        days=tuple(
                            (d, g)
                            for d, g in sorted(rota.overrides.days.items())
                            if week.monday() <= d <= week.day(6)
                        ),
                    )
                )
        return RosterView(
            refused=self.rota.refused(),
            seats=tuple(
                RosterSeatRow(
                    seat_id=s.id,
                    name=s.name,
                    tier=s.tier,
                    interface=s.interface,
                    staffed_by=s.staffed_by,
                    active=s.active,
                )
                for s in seats
            ),
            overrides=tuple(
                LunchOverrideRow(
                    kind=o.kind,
                    key=o.key,
                    group=o.group,
                    created_by=o.created_by,
                    note=o.note,
                )
                for o in overrides
                if (o.day if o.day is not None else _week_end(o.key)) >= today
            ),
            lunch_groups=tuple(g.name for g in current.rota.rotation.groups),
            plan_text=current.rota.render(today, weeks),
            desk=state_summary(current),
            holidays=tuple(sorted((h.day, h.kind, h.name) for h in holidays if h.day >= today)),
            staff=await self.store.staff(),
            weeks=tuple(week_rows),
            group_seats=tuple((g.name, tuple(g.seats)) for g in rota.rotation.groups),
            allow_overflow=rota.rotation.allow_overflow,
        )

    async def save_plan(
        self, seats: Sequence[RosterSeatRow], weeks: Mapping[str, str | None], actor: Actor
    ) -> None:
        """The roster page's one Save: every seat and the lunch group of each week, checked and
        stored together (`RosterStore.save_plan`); a refusal changes nothing."""
        try:
            parsed = {IsoWeek.parse(k): v for k, v in weeks.items()}
            await self.store.save_plan(
                [
                    RosterSeat(
                        SeatId(s.seat_id),
                        s.name.strip(),
                        _tier(s.tier),
                        s.interface.strip(),
                        s.staffed_by or None,
                        s.active,
                    )
                    for s in seats
                ],
                parsed,
                actor.employee_id,
            )
        except _ROSTER_ERRORS as exc:
            raise RequestRefusedError(str(exc)) from exc
        finally:
            await self._changed()

    async def update_seat(self, seat_id: str, changes: SeatChanges, actor: Actor) -> RosterSeatRow:
        who = actor.employee_id
        try:
            seat = await self.store.seat(seat_id)
            if changes.name != seat.name:
                seat = await self.store.set_name(seat_id, changes.name, who)
            if changes.tier != seat.tier:
                seat = await self.store.set_tier(seat_id, changes.tier, who)
            if changes.interface != seat.interface:
                seat = await self.store.set_interface(seat_id, changes.interface, who)
            if (changes.staffed_by or None) != seat.staffed_by:
                seat = await self.store.set_staff(seat_id, changes.staffed_by or None, who)
            if changes.active != seat.active:
                seat = await self.store.set_active(seat_id, changes.active, who)
        except _ROSTER_ERRORS as exc:
            raise RequestRefusedError(str(exc)) from exc
        finally:
            await self._changed()
        return RosterSeatRow(
            seat_id=seat.id,
            name=seat.name,
            tier=seat.tier,
            interface=seat.interface,
            staffed_by=seat.staffed_by,
            active=seat.active,
        )

    async def set_day_override(self, day: date, group: str, actor: Actor, note: str | None) -> None:
        try:
            await self.store.add_day_override(day, group, actor.employee_id, note)
        except _ROSTER_ERRORS as exc:
            raise RequestRefusedError(str(exc)) from exc
        await self._changed()

    async def set_week_swap(self, week: str, group: str, actor: Actor, note: str | None) -> None:
        try:
            await self.store.add_week_swap(week, group, actor.employee_id, note)
        except _ROSTER_ERRORS as exc:
            raise RequestRefusedError(str(exc)) from exc
        await self._changed()

    async def remove_override(self, key: str, actor: Actor) -> None:
        try:
            await self.store.remove_override(key, actor.employee_id)
        except _ROSTER_ERRORS as exc:
            raise RequestRefusedError(str(exc)) from exc
        await self._changed()

    async def import_holidays(self, text: str, actor: Actor, source: str) -> HolidaysImported:
        try:
            done = await self.store.import_holidays(text, actor.employee_id, source)
        except _ROSTER_ERRORS as exc:
            raise RequestRefusedError(str(exc)) from exc
        await self._changed()
        return HolidaysImported(done.added, done.changed, done.unchanged)


def _tier(value: str) -> Tier:
    for tier in TIERS:
        if tier == value:
            return tier
    raise RosterError(f"tier must be one of {', '.join(TIERS)} (got {value!r})")


def _week_end(key: str) -> date:
    """The Sunday of ISO week `key` (`2026-W49`), so a week swap shows until its week is over."""
    week = IsoWeek.parse(key)
    return date.fromisocalendar(week.year, week.week, 7)


@dataclass
class RosterSeats:
    """`SeatDirectory` from the roster as the rota enforcer last loaded it, so a staffing change
    made on the ops page applies at the person's next request. Before the rota is loaded (while
    the daemon is being built) it answers from config."""

    rota: RotaEnforcer
    cfg: Config

    def _seats(self) -> Sequence[RosterSeat]:
        try:
            return self.rota.current.rota.seats
        except CtidError:  # not loaded yet
            return [RosterSeat.from_config(s) for s in self.cfg.seats]

    def seat_of(self, employee_id: str) -> str | None:
        seats = self._seats()
        return next((s.id for s in seats if s.active and s.staffed_by == employee_id), None)

    def seat_ids(self) -> Sequence[str]:
        return tuple(s.id for s in self._seats())

    def staffed_by(self, seat_id: str) -> str | None:
        """Who staffs the seat now (None: nobody, or the seat is inactive)."""
        seat = next((s for s in self._seats() if s.id == seat_id), None)
        return seat.staffed_by if seat is not None and seat.active else None

    def interface(self, seat_id: str) -> str | None:
        """The seat's phone: the roster's interface, else the configured one."""
        seat = next((s for s in self._seats() if s.id == seat_id), None)
        if seat is not None:
            return seat.interface
        cfg_seat = self.cfg.seat(seat_id)
        return cfg_seat.interface if cfg_seat is not None else None
