"""The roster in the database (seats with staff, tier and interface; supervisors; lunch overrides;
holidays), seeded from config, every change audited, and the `Rota` snapshot built from it.
Over 700 lines: the store's edits share one transaction/audit/plan-check core, kept as one."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config, SeatConfig, Tier
from ctid.core.clock import Clock
from ctid.core.errors import CtidError
from ctid.core.ids import SeatId
from ctid.db.schema import AuditLog, Holiday, LunchOverride, Seat, User
from ctid.rotation.calendar import CalendarEntry, ServiceCalendar, parse_holidays
from ctid.rotation.lunch import (
    IsoWeek,
    LunchRotation,
    RotationError,
    RotationOverrides,
)

# `HolidayImport` and `RosterSeat` moved to `rota`; re-exported for the store's importers.
from ctid.rotation.rota import HolidayImport as HolidayImport
from ctid.rotation.rota import LunchOverrideInfo, OverrideKind, Rota, SeedReport
from ctid.rotation.rota import RosterSeat as RosterSeat

log = structlog.get_logger(__name__)

TIERS: tuple[Tier, ...] = ("ordinary", "expert")
_EMPLOYEE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
# Every audit action the roster writes; `RosterStore.revision` watches exactly these, so a
# running daemon notices changes made by `ctid roster ...` in another process.
SEEDED = "roster_seeded"
SEAT_ADDED = "roster_seat_added"
STAFF_SET = "roster_staff_set"
TIER_SET = "roster_tier_set"
NAME_SET = "roster_name_set"
INTERFACE_SET = "roster_interface_set"
ACTIVE_SET = "roster_active_set"
LUNCH_DAY_SET = "roster_lunch_day_set"
LUNCH_WEEK_SET = "roster_lunch_week_set"
LUNCH_OVERRIDE_REMOVED = "roster_lunch_override_removed"
HOLIDAYS_IMPORTED = "roster_holidays_imported"
SUPERVISOR_ADDED = "roster_supervisor_added"
ROSTER_ACTIONS = (
    SEEDED,
    SEAT_ADDED,
    STAFF_SET,
    TIER_SET,
    NAME_SET,
    INTERFACE_SET,
    ACTIVE_SET,
    LUNCH_DAY_SET,
    LUNCH_WEEK_SET,
    LUNCH_OVERRIDE_REMOVED,
    HOLIDAYS_IMPORTED,
    SUPERVISOR_ADDED,
)


class RosterError(CtidError):
    """A roster change was refused (unknown seat, bad value, already taken); the message says why."""


class PlanRejectedError(RosterError):
    """A change would leave a tier with nobody at lunch; `problems` has one line per week/day."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("rejected, the lunch plan would break: " + "; ".join(problems))
        self.problems = problems


def _seat(row: Seat) -> RosterSeat:
    tier = row.tier if row.tier in TIERS else "ordinary"
    return RosterSeat(SeatId(row.id), row.name, tier, row.interface, row.staffed_by, row.active)


def _entry_kind(kind: str) -> Literal["holiday", "workday"]:
    return "holiday" if kind == "holiday" else "workday"


def _db_kind(entry: CalendarEntry) -> str:
    # The table calls a make-up working day (调休) `makeup_workday`; the file says `workday`.
    return "holiday" if entry.kind == "holiday" else "makeup_workday"


class RosterStore:
    """The roster tables behind one small API. Every change runs in one transaction with its
    `audit_log` row; plan-changing edits are checked with `validate_plan` before they commit."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, cfg: Config
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._cfg = cfg

    def use_config(self, cfg: Config) -> None:
        """A reloaded config (SIGHUP): hours, lunch groups and the holidays file are read from
        it by the next `rota()`."""
        self._cfg = cfg

    # ------------------------------------------------------------------ seeding

    async def seed_from_config(self) -> SeedReport:
        """First start (no seats yet): insert the configured seats and supervisors. Later starts
        keep the database's edits, insert seats that config gained since, and log every field
        where the database and config differ."""
        try:
            return await self._seed()
        except IntegrityError:
            # Another ctid process seeded at the same moment; its rows are as good as ours.
            return await self._seed()

    async def _seed(self) -> SeedReport:
        now = self._clock.utcnow()
        inserted: list[str] = []
        differences: list[str] = []
        sups: list[str] = []
        async with self._sessions() as db, db.begin():
            rows = {r.id: r for r in (await db.execute(select(Seat))).scalars()}
            first = not rows
            taken = {r.interface: r.id for r in rows.values()}
            for seat in self._cfg.seats:
                row = rows.get(seat.id)
                if row is None:
                    if seat.interface in taken:
                        differences.append(
                            f"{seat.id}: not added, interface {seat.interface} is used by "
                            f"{taken[seat.interface]} in the database"
                        )
                        continue
                    db.add(
                        Seat(
                            id=seat.id,
                            name=seat.name,
                            tier=seat.tier,
                            interface=seat.interface,
                            staffed_by=seat.staffed_by or None,
                            active=True,
                            updated_at=now,
                        )
                    )
                    taken[seat.interface] = seat.id
                    inserted.append(seat.id)
                    if not first:
                        _audit(db, now, "config", SEAT_ADDED, seat.id, seat.model_dump())
                    continue
                for name, want, have in (
                    ("name", seat.name, row.name),
                    ("tier", seat.tier, row.tier),
                    ("interface", seat.interface, row.interface),
                    ("staffed_by", seat.staffed_by or None, row.staffed_by),
                ):
                    if want != have:
                        differences.append(f"{seat.id}.{name}: database {have!r}, config {want!r}")
            known = {s.id for s in self._cfg.seats}
            differences += [
                f"{sid}: in the database but not in config"
                for sid in sorted(rows)
                if sid not in known
            ]
            if first and inserted:
                _audit(db, now, "config", SEEDED, None, {"seats": inserted})
            for sup in self._cfg.supervisors:
                user = (
                    await db.execute(select(User).where(User.employee_id == sup.employee_id))
                ).scalar_one_or_none()
                if user is None:
                    db.add(
                        User(
                            employee_id=sup.employee_id,
                            name=sup.name,
                            role="supervisor",
                            password_hash=None,
                            email=sup.email or None,
                            active=True,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    _audit(db, now, "config", SUPERVISOR_ADDED, sup.employee_id, {"name": sup.name})
                    sups.append(sup.employee_id)
                elif user.role != "supervisor":
                    differences.append(
                        f"supervisor {sup.employee_id}: the database has them as {user.role!r}"
                    )
        if inserted:
            log.info("roster_seeded" if first else "roster_seats_added", seats=inserted)
        for diff in differences:
            log.warning("roster_differs_from_config", difference=diff)
        return SeedReport(tuple(inserted), tuple(differences), tuple(sups))

    # ------------------------------------------------------------------ reading

    async def seats(self) -> tuple[RosterSeat, ...]:
        async with self._sessions() as db:
            return await self._seats(db)

    async def _seats(self, db: AsyncSession) -> tuple[RosterSeat, ...]:
        rows = [_seat(r) for r in (await db.execute(select(Seat))).scalars()]
        order = {s.id: i for i, s in enumerate(self._cfg.seats)}
        rows.sort(key=lambda s: (order.get(s.id, len(order)), s.id))
        return tuple(rows)

    async def seat(self, seat_id: str) -> RosterSeat:
        async with self._sessions() as db:
            return _seat(await self._seat_row(db, seat_id))

    async def supervisors(self) -> tuple[tuple[str, str], ...]:
        """(employee ID, name) of every active supervisor."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(User.employee_id, User.name)
                .where(User.role == "supervisor", User.active.is_(True))
                .order_by(User.employee_id)
            )
            return tuple((str(e), str(n)) for e, n in rows)

    async def staff(self) -> tuple[tuple[str, str], ...]:
        """(employee ID, name) of every active agent and supervisor: who may staff a seat."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(User.employee_id, User.name)
                .where(User.role.in_(("agent", "supervisor")), User.active.is_(True))
                .order_by(User.name, User.employee_id)
            )
            return tuple((str(e), str(n)) for e, n in rows)

    async def save_plan(
        self, seats: Sequence[RosterSeat], weeks: dict[IsoWeek, str | None], actor: str
    ) -> None:
        """The whole plan in one transaction: every seat as given (name, tier, interface, staff,
        active) and a group per ISO week (None: back to the rotation's own). Checked together,
        so a swap that only works with a tier change is accepted, and a refusal changes nothing
        (`PlanRejectedError` lists every new lunch-cover problem)."""
        for seat in seats:
            if not 1 <= len(seat.name.strip()) <= 64:
                raise RosterError(f"{seat.id}: a seat name must be 1-64 characters")
            if seat.tier not in TIERS:
                raise RosterError(f"{seat.id}: tier must be one of {', '.join(TIERS)}")
            if seat.staffed_by is not None and not _EMPLOYEE_ID.match(seat.staffed_by):
                raise RosterError(f"{seat.id}: employee ID {seat.staffed_by!r} is not valid")
        staffed = [s.staffed_by for s in seats if s.staffed_by]
        twice = sorted({e for e in staffed if staffed.count(e) > 1})
        if twice:
            raise RosterError(f"one person staffs two seats: {', '.join(twice)}")
        ifaces = [s.interface for s in seats]
        if len(set(ifaces)) != len(ifaces):
            raise RosterError("two seats use the same interface")
        if weeks and (not self._cfg.lunch.enabled or not self._cfg.lunch.groups):
            raise RosterError("the lunch rotation is disabled in config (lunch.groups)")
        async with self._sessions() as db, db.begin():
            before = await self._seats(db)
            known = {s.id for s in before}
            unknown = [s.id for s in seats if s.id not in known]
            if unknown:
                raise RosterError(f"unknown seats: {', '.join(unknown)}")
            given = {s.id: s for s in seats}
            after = tuple(given.get(s.id, s) for s in before)
            rotation = self._rotation(after)
            for named in {g for g in weeks.values() if g is not None}:
                try:
                    rotation.group(named)
                except RotationError as exc:
                    raise RosterError(str(exc)) from None
            rows = await self._override_rows(db)
            old = _overrides(rows)
            new_weeks = dict(old.weeks)
            for week, group in weeks.items():
                if group is not None and group != rotation.scheduled_group(week).name:
                    new_weeks[week] = group
                else:
                    new_weeks.pop(week, None)
            self._check_plan(before, old, after, RotationOverrides(days=old.days, weeks=new_weeks))
            now = self._clock.utcnow()
            for old_seat, new_seat in zip(before, after, strict=True):
                if old_seat == new_seat:
                    continue
                row = await self._seat_row(db, old_seat.id)
                for name, action in (
                    ("name", NAME_SET),
                    ("tier", TIER_SET),
                    ("interface", INTERFACE_SET),
                    ("staffed_by", STAFF_SET),
                    ("active", ACTIVE_SET),
                ):
                    value = getattr(new_seat, name)
                    if getattr(row, name) != value:
                        self._audit(
                            db, actor, action, row.id, {"from": getattr(row, name), "to": value}
                        )
                        setattr(row, name, value)
                row.updated_at = now
            for week in weeks:
                victims = [r for r in rows if r.kind == "week_swap" and r.iso_week == str(week)]
                wanted = new_weeks.get(week)
                if [r.group_name for r in victims[-1:]] == ([wanted] if wanted else []):
                    continue
                for r in victims:
                    await db.delete(r)
                if wanted:
                    db.add(
                        LunchOverride(
                            kind="week_swap",
                            day=None,
                            iso_week=str(week),
                            group_name=wanted,
                            note=None,
                            created_by=actor[:32],
                            created_at=now,
                        )
                    )
                self._audit(db, actor, LUNCH_WEEK_SET, str(week), {"group": wanted})
            try:
                await db.flush()
            except IntegrityError:
                raise RosterError("two seats use the same interface or staff") from None
        log.info("roster_plan_saved", seats=len(seats), weeks=len(weeks), actor=actor)

    async def overrides(self) -> RotationOverrides:
        async with self._sessions() as db:
            return _overrides(await self._override_rows(db))

    async def override_list(self) -> tuple[LunchOverrideInfo, ...]:
        async with self._sessions() as db:
            rows = await self._override_rows(db)
        out: list[LunchOverrideInfo] = []
        for r in rows:
            week = _week_or_none(r.iso_week)
            if r.kind == "day" and r.day is not None:
                out.append(
                    LunchOverrideInfo(
                        "day", r.day, None, r.group_name, r.created_by, r.created_at, r.note
                    )
                )
            elif r.kind == "week_swap" and week is not None:
                out.append(
                    LunchOverrideInfo(
                        "week_swap", None, week, r.group_name, r.created_by, r.created_at, r.note
                    )
                )
        out.sort(key=_override_day)
        return tuple(out)

    async def holidays(self) -> tuple[CalendarEntry, ...]:
        async with self._sessions() as db:
            rows = (await db.execute(select(Holiday).order_by(Holiday.day))).scalars()
            return tuple(CalendarEntry(r.day, _entry_kind(r.kind), r.name or "") for r in rows)

    async def revision(self) -> int:
        """Grows with every roster change (the newest roster audit row's id); 0 when none."""
        async with self._sessions() as db:
            value = await db.scalar(
                select(func.max(AuditLog.id)).where(AuditLog.action.in_(ROSTER_ACTIONS))
            )
            return int(value or 0)

    async def rota(self) -> Rota:
        """The rota in force, which the enforcer and the CLI act on: config hours and lunch groups,
        the roster's seats, overrides and holidays (plus `hours.holidays_file` when configured),
        as calendar + rotation + seats + overrides. Overrides that name a group no longer
        configured are skipped with a warning instead of stopping the desk."""
        async with self._sessions() as db:
            seats = await self._seats(db)
            overrides = _overrides(await self._override_rows(db))
            rows = (await db.execute(select(Holiday).order_by(Holiday.day))).scalars()
            entries = [CalendarEntry(r.day, _entry_kind(r.kind), r.name or "") for r in rows]
        file = self._cfg.hours.holidays_file
        if file is not None:
            entries += await asyncio.to_thread(_read_holidays_file, file)
        rotation = self._rotation(seats)
        known = {g.name for g in rotation.groups}
        stale = {_key_text(d): g for d, g in overrides.days.items() if g not in known}
        stale |= {str(w): g for w, g in overrides.weeks.items() if g not in known}
        if stale:
            for key, group in stale.items():
                log.warning("roster_override_unknown_group", key=key, group=group)
            overrides = RotationOverrides(
                days={d: g for d, g in overrides.days.items() if g in known},
                weeks={w: g for w, g in overrides.weeks.items() if g in known},
            )
        return Rota(
            calendar=ServiceCalendar.from_config(self._cfg.hours, self._cfg.site.timezone, entries),
            rotation=rotation,
            seats=seats,
            overrides=overrides,
        )

    # ------------------------------------------------------------------ seat edits

    async def set_staff(self, seat_id: str, employee_id: str | None, actor: str) -> RosterSeat:
        """Who sits in `seat_id` (an employee ID, or None/"" for nobody). One person staffs at
        most one seat."""
        emp = (employee_id or "").strip() or None
        if emp is not None and not _EMPLOYEE_ID.match(emp):
            raise RosterError(f"employee ID {emp!r} must be 1-32 letters, digits, '.', '_' or '-'")
        async with self._sessions() as db, db.begin():
            row = await self._seat_row(db, seat_id)
            if row.staffed_by == emp:
                return _seat(row)
            if emp is not None:
                other = (
                    await db.execute(select(Seat).where(Seat.staffed_by == emp, Seat.id != seat_id))
                ).scalar_one_or_none()
                if other is not None:
                    raise RosterError(
                        f"{emp} already staffs {other.id} ({other.name}); "
                        f"clear that seat first (set-staff {other.id} -)"
                    )
            old = row.staffed_by
            row.staffed_by = emp
            row.updated_at = self._clock.utcnow()
            self._audit(db, actor, STAFF_SET, seat_id, {"from": old, "to": emp})
        log.info("roster_staff_set", seat=seat_id, employee=emp, previous=old, actor=actor)
        return _seat(row)

    async def set_name(self, seat_id: str, name: str, actor: str) -> RosterSeat:
        name = name.strip()
        if not 1 <= len(name) <= 64:
            raise RosterError("a seat name must be 1-64 characters")
        return await self._set_field(seat_id, "name", name, NAME_SET, actor)

    async def set_interface(self, seat_id: str, interface: str, actor: str) -> RosterSeat:
        interface = interface.strip()
        try:
            SeatConfig(id="check", name="check", tier="ordinary", interface=interface)
        except ValidationError:
            raise RosterError(
                f"interface {interface!r} must be an Asterisk interface like PJSIP/seat1 or "
                "Local/seat1@phones/n"
            ) from None
        async with self._sessions() as db:
            other = (
                await db.execute(
                    select(Seat.id).where(Seat.interface == interface, Seat.id != seat_id)
                )
            ).scalar_one_or_none()
        if other is not None:
            raise RosterError(f"interface {interface} is already used by {other}")
        try:
            return await self._set_field(seat_id, "interface", interface, INTERFACE_SET, actor)
        except IntegrityError:
            raise RosterError(f"interface {interface} is already used by another seat") from None

    async def set_tier(self, seat_id: str, tier: str, actor: str) -> RosterSeat:
        if tier not in TIERS:
            raise RosterError(f"tier must be one of {', '.join(TIERS)} (got {tier!r})")
        served = {t for q in self._cfg.queues for t in q.tiers}
        if tier not in served:
            raise RosterError(f"no configured queue serves the {tier} tier")
        return await self._set_field(seat_id, "tier", tier, TIER_SET, actor, plan=True)

    async def set_active(self, seat_id: str, active: bool, actor: str) -> RosterSeat:
        """An inactive seat leaves every queue and the lunch plan (a broken phone, a vacancy)."""
        return await self._set_field(seat_id, "active", active, ACTIVE_SET, actor, plan=True)

    async def _set_field(
        self, seat_id: str, name: str, value: Any, action: str, actor: str, *, plan: bool = False
    ) -> RosterSeat:
        async with self._sessions() as db, db.begin():
            row = await self._seat_row(db, seat_id)
            old = getattr(row, name)
            if old == value:
                return _seat(row)
            if plan:
                seats = await self._seats(db)
                changed = tuple(
                    replace(s, **_one(name, value)) if s.id == seat_id else s for s in seats
                )
                overrides = _overrides(await self._override_rows(db))
                self._check_plan(seats, overrides, changed, overrides)
            setattr(row, name, value)
            row.updated_at = self._clock.utcnow()
            await db.flush()
            self._audit(db, actor, action, seat_id, {"from": old, "to": value})
        log.info(action, seat=seat_id, previous=old, value=value, actor=actor)
        return _seat(row)

    # ------------------------------------------------------------------ lunch overrides

    async def add_day_override(
        self, day: date, group: str, actor: str, note: str | None = None
    ) -> None:
        """`group` covers lunch on `day` (replacing any earlier override for that day)."""
        today = self._today()
        if day < today:
            raise RosterError(f"{day.isoformat()} is in the past")
        await self._put_override("day", day, None, group, actor, note)

    async def add_week_swap(
        self, week: IsoWeek | str, group: str, actor: str, note: str | None = None
    ) -> None:
        """`group` covers lunch for the whole ISO `week` (replacing any earlier swap)."""
        iso = IsoWeek.parse(week) if isinstance(week, str) else week
        if iso < IsoWeek.of(self._today()):
            raise RosterError(f"{iso} is in the past")
        await self._put_override("week_swap", None, iso, group, actor, note)

    async def remove_override(self, key: date | IsoWeek | str, actor: str) -> None:
        """Remove the day override (a date) or week swap (an ISO week, `2026-W49`) at `key`."""
        if isinstance(key, str):
            key = _parse_key(key)
        async with self._sessions() as db, db.begin():
            rows = await self._override_rows(db)
            if isinstance(key, IsoWeek):
                victims = [r for r in rows if r.kind == "week_swap" and r.iso_week == str(key)]
            else:
                victims = [r for r in rows if r.kind == "day" and r.day == key]
            if not victims:
                raise RosterError(f"there is no lunch override for {_key_text(key)}")
            before = _overrides(rows)
            after = _overrides([r for r in rows if r not in victims])
            seats = await self._seats(db)
            self._check_plan(seats, before, seats, after)
            for r in victims:
                await db.delete(r)
            self._audit(
                db,
                actor,
                LUNCH_OVERRIDE_REMOVED,
                _key_text(key),
                {"group": victims[-1].group_name, "kind": victims[-1].kind},
            )
        log.info("roster_lunch_override_removed", key=_key_text(key), actor=actor)

    async def _put_override(
        self,
        kind: OverrideKind,
        day: date | None,
        week: IsoWeek | None,
        group: str,
        actor: str,
        note: str | None,
    ) -> None:
        if not self._cfg.lunch.enabled or not self._cfg.lunch.groups:
            raise RosterError("the lunch rotation is disabled in config (lunch.groups)")
        key = day if day is not None else week
        assert key is not None
        async with self._sessions() as db, db.begin():
            seats = await self._seats(db)
            try:
                self._rotation(seats).group(group)
            except RotationError as exc:
                raise RosterError(str(exc)) from None
            rows = await self._override_rows(db)
            if kind == "day":
                victims = [r for r in rows if r.kind == "day" and r.day == day]
            else:
                victims = [r for r in rows if r.kind == "week_swap" and r.iso_week == str(week)]
            before = _overrides(rows)
            days = dict(before.days)
            weeks = dict(before.weeks)
            if day is not None:
                days[day] = group
            elif week is not None:
                weeks[week] = group
            self._check_plan(seats, before, seats, RotationOverrides(days=days, weeks=weeks))
            for r in victims:
                await db.delete(r)
            db.add(
                LunchOverride(
                    kind=kind,
                    day=day,
                    iso_week=str(week) if week is not None else None,
                    group_name=group,
                    note=note,
                    created_by=actor[:32],
                    created_at=self._clock.utcnow(),
                )
            )
            replaced = victims[-1].group_name if victims else None
            action = LUNCH_DAY_SET if kind == "day" else LUNCH_WEEK_SET
            self._audit(db, actor, action, _key_text(key), {"group": group, "replaced": replaced})
        log.info(action, key=_key_text(key), group=group, replaced=replaced, actor=actor)

    # ------------------------------------------------------------------ holidays

    async def import_holidays(
        self, text: str, actor: str, source: str = "holidays"
    ) -> HolidayImport:
        """Store the holidays file's lines (`2026-10-01,holiday,National Day`), replacing the
        entry of any date already stored. Raises `HolidayFileError` for bad lines and
        `CalendarError` for a date that config puts on the other side."""
        entries = parse_holidays(text, source)
        async with self._sessions() as db, db.begin():
            stored = {r.day: r for r in (await db.execute(select(Holiday))).scalars()}
            merged = {
                d: CalendarEntry(d, _entry_kind(r.kind), r.name or "") for d, r in stored.items()
            }
            merged.update({e.day: e for e in entries})
            # Raises CalendarError when config lists a date as the opposite kind.
            ServiceCalendar.from_config(
                self._cfg.hours, self._cfg.site.timezone, list(merged.values())
            )
            added = changed = unchanged = 0
            for e in entries:
                row = stored.get(e.day)
                name = e.name or None
                if row is None:
                    db.add(Holiday(day=e.day, kind=_db_kind(e), name=name))
                    added += 1
                elif row.kind != _db_kind(e) or row.name != name:
                    row.kind, row.name = _db_kind(e), name
                    changed += 1
                else:
                    unchanged += 1
            self._audit(
                db,
                actor,
                HOLIDAYS_IMPORTED,
                source[-128:],
                {"added": added, "changed": changed, "unchanged": unchanged},
            )
        log.info(
            "roster_holidays_imported",
            source=source,
            added=added,
            changed=changed,
            unchanged=unchanged,
            actor=actor,
        )
        return HolidayImport(added, changed, unchanged)

    # ------------------------------------------------------------------ helpers

    def _today(self) -> date:
        return self._clock.now().date()

    def _rotation(self, seats: Sequence[RosterSeat]) -> LunchRotation:
        try:
            return LunchRotation.from_config(self._cfg.lunch, [s.as_config() for s in seats])
        except RotationError as exc:
            raise RosterError(f"the roster does not match lunch.groups in config: {exc}") from exc

    def _check_plan(
        self,
        seats_before: Sequence[RosterSeat],
        overrides_before: RotationOverrides,
        seats_after: Sequence[RosterSeat],
        overrides_after: RotationOverrides,
    ) -> None:
        """Refuse a change that adds lunch-cover problems (problems the plan already had, say
        from an earlier config, do not block unrelated edits)."""
        today = self._today()
        rotation = self._rotation(seats_after)
        # Checks go through Rota so the rules are exactly the enforcer's (active seats only).
        calendar = ServiceCalendar(tz=self._clock.tz)
        before = Rota(calendar, rotation, tuple(seats_before), overrides_before)
        after = Rota(calendar, rotation, tuple(seats_after), overrides_after)
        weeks = max(before.check_weeks(today), after.check_weeks(today))
        old = set(before.problems(today, weeks))
        new = [p for p in after.problems(today, weeks) if p not in old]
        if new:
            raise PlanRejectedError(new)

    async def _seat_row(self, db: AsyncSession, seat_id: str) -> Seat:
        row = await db.get(Seat, seat_id)
        if row is None:
            known = (await db.execute(select(Seat.id).order_by(Seat.id))).scalars().all()
            raise RosterError(f"unknown seat {seat_id!r} (seats: {', '.join(known) or 'none'})")
        return row

    async def _override_rows(self, db: AsyncSession) -> list[LunchOverride]:
        return list((await db.execute(select(LunchOverride).order_by(LunchOverride.id))).scalars())

    def _audit(
        self, db: AsyncSession, actor: str, action: str, target: str | None, detail: Any
    ) -> None:
        _audit(db, self._clock.utcnow(), actor, action, target, detail)


def _audit(
    db: AsyncSession,
    at: datetime,
    actor: str,
    action: str,
    target: str | None,
    detail: Any,
) -> None:
    db.add(
        AuditLog(at=at, actor=actor[:64] or "unknown", action=action, target=target, detail=detail)
    )


def _one(name: str, value: Any) -> dict[str, Any]:
    return {name: value}


def _overrides(rows: Sequence[LunchOverride]) -> RotationOverrides:
    """Rows in id order, so the newest override of a day or week wins."""
    days: dict[date, str] = {}
    weeks: dict[IsoWeek, str] = {}
    for r in rows:
        if r.kind == "day" and r.day is not None:
            days[r.day] = r.group_name
        elif r.kind == "week_swap":
            week = _week_or_none(r.iso_week)
            if week is not None:
                weeks[week] = r.group_name
    return RotationOverrides(days=days, weeks=weeks)


def _week_or_none(text: str | None) -> IsoWeek | None:
    if text is None:
        return None
    try:
        return IsoWeek.parse(text)
    except RotationError:
        log.warning("roster_bad_iso_week", iso_week=text)
        return None


def _parse_key(text: str) -> date | IsoWeek:
    text = text.strip()
    if "W" in text.upper():
        return IsoWeek.parse(text.upper())
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RosterError(
            f"{text!r} is neither a date (YYYY-MM-DD) nor an ISO week (YYYY-Www)"
        ) from None


def _key_text(key: date | IsoWeek) -> str:
    return str(key) if isinstance(key, IsoWeek) else key.isoformat()


def _read_holidays_file(path: Path) -> list[CalendarEntry]:
    return list(parse_holidays(path.read_text(encoding="utf-8-sig"), str(path)))


def _override_day(o: LunchOverrideInfo) -> date:
    if o.day is not None:
        return o.day
    return o.week.monday() if o.week is not None else date.min
