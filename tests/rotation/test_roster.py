"""The roster in the database (SQLite and PostgreSQL): seeding from config, audited edits, lunch
overrides with the uncovered-tier rejection, holiday imports, and the rota snapshot."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from ctid.config import Config
from ctid.core.clock import FakeClock
from ctid.db import session_factory
from ctid.db.schema import AuditLog, Holiday, LunchOverride, Seat, User
from ctid.rotation.calendar import CalendarError, HolidayFileError
from ctid.rotation.lunch import IsoWeek
from ctid.rotation.roster import (
    HolidayImport,
    PlanRejectedError,
    RosterError,
    RosterStore,
)

from ._desk import SHANGHAI, at

NOW = at("2026-11-23 10:00")  # Monday of 2026-W48: group B (seat2, seat4) has lunch duty


def config(**extra: Any) -> Config:
    raw: dict[str, Any] = {
        "site": {"timezone": "Asia/Shanghai"},
        "seats": [
            {
                "id": f"seat{n}",
                "name": f"Seat {n}",
                "tier": t,
                "interface": f"PJSIP/seat{n}",
                "staffed_by": f"E100{n}",
            }
            for n, t in ((1, "ordinary"), (2, "ordinary"), (3, "expert"), (4, "expert"))
        ],
        "supervisors": [{"employee_id": "S9001", "name": "Shift Leader", "phone": "PJSIP/sup1"}],
        "lunch": {
            "groups": [
                {"name": "A", "seats": ["seat1", "seat3"]},
                {"name": "B", "seats": ["seat2", "seat4"]},
            ]
        },
    }
    for key, value in extra.items():
        raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) else value
    return Config.model_validate(raw)


CFG = config()


def store_for(engine: AsyncEngine, cfg: Config = CFG) -> RosterStore:
    return RosterStore(session_factory(engine), FakeClock(NOW, SHANGHAI), cfg)


@pytest.fixture
async def store(migrated_engine: AsyncEngine) -> RosterStore:
    s = store_for(migrated_engine)
    await s.seed_from_config()
    return s


async def audit(engine: AsyncEngine) -> list[tuple[str, str, str | None, Any]]:
    async with session_factory(engine)() as db:
        rows = (await db.execute(select(AuditLog).order_by(AuditLog.id))).scalars()
        return [(r.actor, r.action, r.target, r.detail) for r in rows]


# --------------------------------------------------------------------------- seeding


async def test_first_start_seeds_seats_and_supervisors(migrated_engine: AsyncEngine) -> None:
    store = store_for(migrated_engine)
    report = await store.seed_from_config()
    assert report.inserted == ("seat1", "seat2", "seat3", "seat4")
    assert report.differences == () and report.supervisors_added == ("S9001",)
    seats = await store.seats()
    assert [(s.id, s.tier, s.interface, s.staffed_by, s.active) for s in seats] == [
        ("seat1", "ordinary", "PJSIP/seat1", "E1001", True),
        ("seat2", "ordinary", "PJSIP/seat2", "E1002", True),
        ("seat3", "expert", "PJSIP/seat3", "E1003", True),
        ("seat4", "expert", "PJSIP/seat4", "E1004", True),
    ]
    assert await store.supervisors() == (("S9001", "Shift Leader"),)
    async with session_factory(migrated_engine)() as db:
        user = (await db.execute(select(User))).scalar_one()
        assert (user.role, user.password_hash) == ("supervisor", None)
    assert sorted(a[:3] for a in await audit(migrated_engine)) == [
        ("config", "roster_seeded", None),
        ("config", "roster_supervisor_added", "S9001"),
    ]


async def test_later_starts_keep_db_edits_and_log_differences(migrated_engine: AsyncEngine) -> None:
    store = store_for(migrated_engine)
    await store.seed_from_config()
    await store.set_staff("seat2", "E7777", "ops1")
    grown = config(
        seats=[
            *(s.model_dump() for s in CFG.seats),
            {"id": "seat5", "name": "Seat 5", "tier": "ordinary", "interface": "PJSIP/seat5"},
        ]
    )
    with capture_logs() as logs:
        report = await store_for(migrated_engine, grown).seed_from_config()
    assert report.inserted == ("seat5",)
    assert report.differences == ("seat2.staffed_by: database 'E7777', config 'E1002'",)
    assert (await store.seat("seat2")).staffed_by == "E7777"
    assert [e["difference"] for e in logs if e["event"] == "roster_differs_from_config"] == [
        "seat2.staffed_by: database 'E7777', config 'E1002'"
    ]
    assert (await audit(migrated_engine))[-1][:3] == ("config", "roster_seat_added", "seat5")
    again = await store_for(migrated_engine, grown).seed_from_config()
    assert again.inserted == () and again.supervisors_added == ()


# --------------------------------------------------------------------------- seat edits


async def test_set_staff_is_audited_and_one_person_staffs_one_seat(
    store: RosterStore, migrated_engine: AsyncEngine
) -> None:
    before = await store.revision()
    seat = await store.set_staff("seat1", "E2001", "ops1")
    assert seat.staffed_by == "E2001"
    assert (await audit(migrated_engine))[-1] == (
        "ops1",
        "roster_staff_set",
        "seat1",
        {"from": "E1001", "to": "E2001"},
    )
    assert await store.revision() > before
    with pytest.raises(RosterError, match=r"E2001 already staffs seat1 \(Seat 1\)"):
        await store.set_staff("seat2", "E2001", "ops1")
    with pytest.raises(RosterError, match="employee ID"):
        await store.set_staff("seat2", "E 1\n", "ops1")
    with pytest.raises(
        RosterError, match=r"unknown seat 'seat9' \(seats: seat1, seat2, seat3, seat4\)"
    ):
        await store.set_staff("seat9", "E1", "ops1")
    rev = await store.revision()
    await store.set_staff("seat1", "E2001", "ops1")  # no change: no audit row
    assert await store.revision() == rev
    assert (await store.set_staff("seat1", None, "ops2")).staffed_by is None


async def test_name_and_interface_edits(store: RosterStore, migrated_engine: AsyncEngine) -> None:
    assert (await store.set_name("seat1", "Window seat", "ops1")).name == "Window seat"
    with pytest.raises(RosterError, match="already used by seat2"):
        await store.set_interface("seat1", "PJSIP/seat2", "ops1")
    with pytest.raises(RosterError, match="Asterisk interface"):
        await store.set_interface("seat1", "seat 1", "ops1")
    seat = await store.set_interface("seat1", "Local/seat1@phones/n", "ops1")
    assert seat.interface == "Local/seat1@phones/n"
    assert [a[1] for a in (await audit(migrated_engine))[-2:]] == [
        "roster_name_set",
        "roster_interface_set",
    ]


async def test_tier_change_leaving_a_group_without_expert_is_rejected_with_week_and_tier(
    store: RosterStore, migrated_engine: AsyncEngine
) -> None:
    rev = await store.revision()
    with pytest.raises(PlanRejectedError) as caught:
        await store.set_tier("seat3", "ordinary", "ops1")
    assert caught.value.problems == [
        "week 2026-W49: no expert seat on lunch duty (group A: seat1, seat3)"
    ]
    assert "week 2026-W49: no expert seat" in str(caught.value)
    assert (await store.seat("seat3")).tier == "expert"
    assert await store.revision() == rev
    with pytest.raises(PlanRejectedError, match="week 2026-W48: no ordinary seat"):
        await store.set_active("seat2", False, "ops1")
    with pytest.raises(RosterError, match="tier must be one of"):
        await store.set_tier("seat3", "wizard", "ops1")


async def test_tier_change_is_accepted_when_overflow_is_allowed(
    migrated_engine: AsyncEngine,
) -> None:
    store = store_for(migrated_engine, config(lunch={"allow_overflow": True}))
    await store.seed_from_config()
    seat = await store.set_tier("seat3", "ordinary", "ops1")
    assert seat.tier == "ordinary"
    assert (await audit(migrated_engine))[-1] == (
        "ops1",
        "roster_tier_set",
        "seat3",
        {"from": "expert", "to": "ordinary"},
    )
    state = (await store.rota()).state(at("2026-12-01 12:30"))  # W49: group A, no expert now
    assert state.overflow_expert_to_ordinary and state.uncovered_tiers == {"expert"}


# --------------------------------------------------------------------------- lunch overrides


async def test_week_swap_and_day_override_are_stored_audited_and_replace_earlier_ones(
    store: RosterStore, migrated_engine: AsyncEngine
) -> None:
    await store.add_week_swap("2026-W49", "B", "ops1")
    await store.add_day_override(date(2026, 12, 1), "A", "ops1")
    await store.add_day_override(date(2026, 12, 1), "B", "ops2")  # replaces, not adds
    overrides = await store.overrides()
    assert dict(overrides.weeks) == {IsoWeek(2026, 49): "B"}
    assert dict(overrides.days) == {date(2026, 12, 1): "B"}
    async with session_factory(migrated_engine)() as db:
        assert len((await db.execute(select(LunchOverride))).scalars().all()) == 2
    assert [a for a in await audit(migrated_engine)][-3:] == [
        ("ops1", "roster_lunch_week_set", "2026-W49", {"group": "B", "replaced": None}),
        ("ops1", "roster_lunch_day_set", "2026-12-01", {"group": "A", "replaced": None}),
        ("ops2", "roster_lunch_day_set", "2026-12-01", {"group": "B", "replaced": "A"}),
    ]
    rota = await store.rota()
    assert rota.state(at("2026-12-02 12:30")).lunch_source == "week_swap"
    listed = await store.override_list()
    assert [(o.kind, o.key, o.group, o.created_by) for o in listed] == [
        ("week_swap", "2026-W49", "B", "ops1"),
        ("day", "2026-12-01", "B", "ops2"),
    ]
    await store.remove_override("2026-W49", "ops1")
    await store.remove_override(date(2026, 12, 1), "ops1")
    assert await store.overrides() == type(overrides)(days={}, weeks={})
    assert (await audit(migrated_engine))[-1][1:3] == (
        "roster_lunch_override_removed",
        "2026-12-01",
    )
    with pytest.raises(RosterError, match="no lunch override for 2026-12-01"):
        await store.remove_override("2026-12-01", "ops1")


async def test_override_errors(store: RosterStore) -> None:
    with pytest.raises(RosterError, match=r"unknown lunch group 'C' \(groups: A, B\)"):
        await store.add_week_swap("2026-W49", "C", "ops1")
    with pytest.raises(RosterError, match="2026-11-20 is in the past"):
        await store.add_day_override(date(2026, 11, 20), "A", "ops1")
    with pytest.raises(RosterError, match="2026-W47 is in the past"):
        await store.add_week_swap(IsoWeek(2026, 47), "A", "ops1")


async def test_swap_that_leaves_a_tier_uncovered_is_rejected_naming_week_and_tier(
    migrated_engine: AsyncEngine,
) -> None:
    # Earlier, with overflow allowed, seat3 became ordinary: group A has no expert left. The
    # config now forbids overflow; the existing plan's problem does not block unrelated edits,
    # but a swap that adds an expert-less week does.
    loose = store_for(migrated_engine, config(lunch={"allow_overflow": True}))
    await loose.seed_from_config()
    await loose.set_tier("seat3", "ordinary", "ops1")
    strict = store_for(migrated_engine)
    await strict.set_staff("seat1", "E5555", "ops1")
    with pytest.raises(PlanRejectedError) as caught:
        await strict.add_week_swap("2026-W50", "A", "ops1")
    assert caught.value.problems == [
        "week 2026-W50: no expert seat on lunch duty (group A: seat1, seat3)"
    ]
    with pytest.raises(PlanRejectedError, match="day 2026-11-24: no expert seat on lunch duty"):
        await strict.add_day_override(date(2026, 11, 24), "A", "ops1")
    assert await strict.overrides() == type(await strict.overrides())(days={}, weeks={})
    # Swapping B into A's week removes the problem, so it is accepted.
    await strict.add_week_swap("2026-W49", "B", "ops1")


async def test_rota_skips_overrides_of_groups_no_longer_configured(
    migrated_engine: AsyncEngine,
) -> None:
    renamed = config(
        lunch={
            "groups": [
                {"name": "A", "seats": ["seat1", "seat3"]},
                {"name": "X", "seats": ["seat2", "seat4"]},
            ]
        }
    )
    store = store_for(migrated_engine)
    await store.seed_from_config()
    await store.add_day_override(date(2026, 12, 1), "B", "ops1")
    with capture_logs() as logs:
        rota = await store_for(migrated_engine, renamed).rota()
    assert dict(rota.overrides.days) == {}
    assert [
        (e["key"], e["group"]) for e in logs if e["event"] == "roster_override_unknown_group"
    ] == [("2026-12-01", "B")]


# --------------------------------------------------------------------------- holidays


HOLIDAYS = """date,kind,name
2026-12-25,holiday,Christmas
2026-12-26,workday,Make-up Saturday
"""


async def test_holiday_import_upserts_and_the_rota_closes_on_them(
    store: RosterStore, migrated_engine: AsyncEngine
) -> None:
    assert await store.import_holidays(HOLIDAYS, "ops1", "hol.csv") == HolidayImport(2, 0, 0)
    changed = HOLIDAYS.replace("Christmas", "Xmas")
    assert await store.import_holidays(changed, "ops1", "hol.csv") == HolidayImport(0, 1, 1)
    async with session_factory(migrated_engine)() as db:
        rows = (await db.execute(select(Holiday).order_by(Holiday.day))).scalars().all()
        assert [(r.day, r.kind, r.name) for r in rows] == [
            (date(2026, 12, 25), "holiday", "Xmas"),
            (date(2026, 12, 26), "makeup_workday", "Make-up Saturday"),
        ]
    assert (await audit(migrated_engine))[-1] == (
        "ops1",
        "roster_holidays_imported",
        "hol.csv",
        {"added": 0, "changed": 1, "unchanged": 1},
    )
    rota = await store.rota()
    assert rota.state(at("2026-12-25 10:00")).mode == "closed"
    assert rota.state(at("2026-12-25 10:00")).holiday == "Xmas"
    assert rota.state(at("2026-12-26 10:00")).mode == "open"
    assert [e.day for e in await store.holidays()] == [date(2026, 12, 25), date(2026, 12, 26)]


async def test_bad_holiday_files_store_nothing(
    store: RosterStore, migrated_engine: AsyncEngine
) -> None:
    with pytest.raises(HolidayFileError) as caught:
        await store.import_holidays("2026-12-25,holiday\n2026-13-01,holiday\n", "ops1", "h.csv")
    assert caught.value.problems == ["h.csv:2: '2026-13-01' is not a valid calendar date"]
    conflicting = store_for(migrated_engine, config(hours={"makeup_workdays": ["2026-12-27"]}))
    with pytest.raises(CalendarError, match="2026-12-27"):
        await conflicting.import_holidays("2026-12-27,holiday,Oops\n", "ops1")
    assert await store.holidays() == ()
    async with session_factory(migrated_engine)() as db:
        assert (await db.execute(select(Seat.id))).scalars().all()  # untouched


async def test_rota_merges_the_configured_holidays_file(
    migrated_engine: AsyncEngine, tmp_path: Path
) -> None:
    file = tmp_path / "holidays.csv"
    file.write_text("\ufeff2026-12-24,holiday,Christmas Eve\n", encoding="utf-8")
    store = store_for(migrated_engine, config(hours={"holidays_file": str(file)}))
    await store.seed_from_config()
    await store.import_holidays("2026-12-25,holiday,Christmas\n", "ops1")
    rota = await store.rota()
    assert rota.state(at("2026-12-24 10:00")).holiday == "Christmas Eve"
    assert rota.state(at("2026-12-25 10:00")).holiday == "Christmas"
    assert rota.state(at("2026-12-23 10:00")).mode == "open"


# --------------------------------------------------------------------------- the whole plan


async def test_the_whole_plan_is_saved_in_one_transaction_or_not_at_all(
    store: RosterStore, migrated_engine: AsyncEngine
) -> None:
    from dataclasses import replace

    seats = await store.seats()
    rev = await store.revision()
    # seat3 (group A's only expert) becomes ordinary: week 2026-W49 (group A) loses its expert.
    bad = [replace(s, tier="ordinary") if s.id == "seat3" else s for s in seats]
    with pytest.raises(PlanRejectedError, match="week 2026-W49: no expert seat"):
        await store.save_plan(bad, {IsoWeek(2026, 50): "B"}, "ops1")
    assert await store.seats() == seats and await store.revision() == rev
    assert dict((await store.overrides()).weeks) == {}
    # The same tier change with W49 and W51 swapped to group B (seat4 is expert) is accepted,
    # together with a staff change, in one go.
    good = [
        replace(s, tier="ordinary")
        if s.id == "seat3"
        else replace(s, staffed_by="E2001")
        if s.id == "seat1"
        else s
        for s in seats
    ]
    weeks: dict[IsoWeek, str | None] = {IsoWeek(2026, 49): "B", IsoWeek(2026, 51): "B"}
    weeks |= {IsoWeek(2026, 48): "B"}  # the rotation's own group: no override stored
    await store.save_plan(good, weeks, "ops1")
    after = {s.id: s for s in await store.seats()}
    assert after["seat3"].tier == "ordinary" and after["seat1"].staffed_by == "E2001"
    assert dict((await store.overrides()).weeks) == {IsoWeek(2026, 49): "B", IsoWeek(2026, 51): "B"}
    actions = [(a, t) for _, a, t, _ in await audit(migrated_engine)][-4:]
    assert actions == [
        ("roster_staff_set", "seat1"),
        ("roster_tier_set", "seat3"),
        ("roster_lunch_week_set", "2026-W49"),
        ("roster_lunch_week_set", "2026-W51"),
    ]
    # Back to the rotation for W49 (None) keeps the plan valid only without seat3's change.
    with pytest.raises(PlanRejectedError):
        await store.save_plan(good, {IsoWeek(2026, 49): None}, "ops1")
    twice = [replace(s, staffed_by="E1002") if s.id == "seat1" else s for s in seats]
    with pytest.raises(RosterError, match="one person staffs two seats: E1002"):
        await store.save_plan(twice, {}, "ops1")
