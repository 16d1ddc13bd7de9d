"""When the rota's timer fires: the next-transition computation (DST in Europe/Berlin, holidays,
make-up days, overrides), the job functions, and the scheduler's job and trigger set-up. The
scheduler itself is never started here."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ctid.core.clock import FakeClock
from ctid.rotation.calendar import ServiceCalendar
from ctid.rotation.enforcer import RotaEnforcer
from ctid.rotation.lunch import NO_OVERRIDES, RotationOverrides
from ctid.rotation.rota import RosterSeat, Rota
from ctid.rotation.scheduler import (
    MISFIRE_GRACE_S,
    POLL_JOB,
    TRANSITION_JOB,
    RotaScheduler,
    next_transition,
)

from ._desk import BERLIN, SEATS, SHANGHAI, at, calendar, rotation
from .test_enforcer import CFG, MONDAY, ROTA, FakeDesk, _Source, lunch_pause


def rota(cal: ServiceCalendar, overrides: RotationOverrides = NO_OVERRIDES) -> Rota:
    return Rota(cal, rotation(), tuple(RosterSeat.from_config(s) for s in SEATS), overrides)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(r: Rota, start: datetime, count: int) -> list[tuple[str, datetime]]:
    out: list[tuple[str, datetime]] = []
    when = start
    for _ in range(count):
        tr = next_transition(r, when)
        out.append((tr.kind, tr.at.astimezone(UTC)))
        when = tr.at
    return out


def test_next_transition_is_strictly_after_now() -> None:
    r = rota(calendar())
    assert next_transition(r, at(f"{MONDAY} 07:00")).at == at(f"{MONDAY} 08:00")
    tr = next_transition(r, at(f"{MONDAY} 12:00"))
    assert (tr.kind, tr.at, tr.mode) == ("lunch_end", at(f"{MONDAY} 13:30"), "open")
    tr = next_transition(r, at(f"{MONDAY} 11:59:59"))
    assert (tr.kind, tr.lunch_group) == ("lunch_start", "B")


def test_berlin_spring_forward_weekend_keeps_08_00_local() -> None:
    r = rota(calendar(BERLIN))
    # Fri 2026-03-27 is CET (+01), Mon 2026-03-30 CEST (+02): 08:00 local is 07:00 then 06:00 UTC.
    assert fires(r, at("2026-03-27 07:30", BERLIN), 6) == [
        ("open", utc("2026-03-27 07:00")),
        ("lunch_start", utc("2026-03-27 11:00")),
        ("lunch_end", utc("2026-03-27 12:30")),
        ("close", utc("2026-03-27 16:30")),
        ("open", utc("2026-03-30 06:00")),
        ("lunch_start", utc("2026-03-30 10:00")),
    ]


def test_berlin_fall_back_weekend_keeps_08_00_local() -> None:
    r = rota(calendar(BERLIN))
    assert fires(r, at("2026-10-23 17:00", BERLIN), 2) == [
        ("close", utc("2026-10-23 15:30")),
        ("open", utc("2026-10-26 07:00")),
    ]
    tr = next_transition(r, at("2026-10-23 17:30", BERLIN))
    assert tr.at.utcoffset() == timedelta(hours=1)


def test_dst_change_on_a_working_day_with_night_hours() -> None:
    """A make-up Sunday opening at 02:30: skipped in spring (opens 03:30 CEST), ambiguous in
    autumn (the first 02:30, still CEST)."""
    spring = rota(calendar(BERLIN, open="02:30", makeup_workdays=[date(2026, 3, 29)]))
    assert fires(spring, at("2026-03-28 00:00", BERLIN), 2) == [
        ("open", utc("2026-03-29 01:30")),
        ("lunch_start", utc("2026-03-29 10:00")),
    ]
    autumn = rota(calendar(BERLIN, open="02:30", makeup_workdays=[date(2026, 10, 25)]))
    assert fires(autumn, at("2026-10-24 00:00", BERLIN), 2) == [
        ("open", utc("2026-10-25 00:30")),
        ("lunch_start", utc("2026-10-25 11:00")),
    ]


def test_holidays_and_make_up_days_move_the_next_fire() -> None:
    r = rota(calendar())
    assert next_transition(r, at("2026-09-30 17:30")).at == at("2026-10-02 08:00")
    assert next_transition(r, at("2026-09-25 17:30")).at == at("2026-09-26 08:00")  # make-up Sat


def test_a_day_override_names_the_group_of_the_lunch_transition() -> None:
    r = rota(calendar(), RotationOverrides(days={date(2026, 11, 23): "A"}))
    assert next_transition(r, at(f"{MONDAY} 11:00")).lunch_group == "A"


# --------------------------------------------------------------------------- the scheduler


async def make(
    when: str, desk: FakeDesk | None = None
) -> tuple[RotaScheduler, RotaEnforcer, FakeDesk, FakeClock]:
    desk = desk or FakeDesk(ROTA)
    clock = FakeClock(at(when), SHANGHAI)
    enforcer = RotaEnforcer(
        source=_Source(desk), pbx=desk, live=desk, clock=clock, queues=CFG.queues
    )
    await enforcer.load()
    return RotaScheduler(enforcer), enforcer, desk, clock


async def test_scheduler_gets_a_date_trigger_for_the_next_transition_without_starting() -> None:
    sched, _, _, _ = await make(f"{MONDAY} 09:15")
    armed = sched.arm()
    sched.add_poll_job()
    assert not sched.scheduler.running
    job = sched.scheduler.get_job(TRANSITION_JOB)
    assert isinstance(job.trigger, DateTrigger)
    assert job.trigger.run_date == at(f"{MONDAY} 12:00")
    assert armed is not None and job.kwargs == {"transition": armed}
    assert (job.misfire_grace_time, job.coalesce, job.max_instances) == (MISFIRE_GRACE_S, True, 1)
    assert job.func == sched.fire
    poll = sched.scheduler.get_job(POLL_JOB)
    assert isinstance(poll.trigger, IntervalTrigger)
    assert poll.trigger.interval == timedelta(seconds=30)
    assert poll.func == sched.poll
    assert sched.next_transition() == armed
    # Arming again for the same transition keeps the one job.
    assert sched.arm() == armed
    assert [j.id for j in sched.scheduler.get_jobs()] == [TRANSITION_JOB, POLL_JOB]


async def test_fire_applies_the_transition_and_arms_the_next_one() -> None:
    sched, _, desk, clock = await make(f"{MONDAY} 11:00")
    first = sched.arm()
    assert first is not None
    clock.set(first.at)
    await sched.fire(first)
    assert desk.take() == [lunch_pause(1), lunch_pause(3)]
    nxt = sched.next_transition()
    assert nxt is not None and (nxt.kind, nxt.at) == ("lunch_end", at(f"{MONDAY} 13:30"))
    assert sched.scheduler.get_job(TRANSITION_JOB).trigger.run_date == nxt.at


async def test_fire_re_arms_even_when_applying_fails() -> None:
    desk = FakeDesk(ROTA, fail=10)
    sched, _, _, clock = await make(f"{MONDAY} 11:00", desk)
    first = sched.arm()
    assert first is not None
    clock.set(first.at)
    await sched.fire(first)
    nxt = sched.next_transition()
    assert nxt is not None and nxt.at == at(f"{MONDAY} 13:30")


async def test_roster_reload_re_arms_for_a_new_holiday() -> None:
    desk = FakeDesk(ROTA)
    sched, _, _, _ = await make(f"{MONDAY} 18:00", desk)
    assert sched.arm() is not None and sched.next_transition().at == at("2026-11-24 08:00")
    hours = CFG.hours.model_copy(update={"holidays": (date(2026, 11, 24),)})
    desk.rota = replace(ROTA, calendar=ServiceCalendar.from_config(hours, "Asia/Shanghai"))
    desk.revision_no += 1
    await sched.poll()
    assert sched.next_transition().at == at("2026-11-25 08:00")
    assert sched.scheduler.get_job(TRANSITION_JOB).trigger.run_date == at("2026-11-25 08:00")


async def test_poll_re_arms_a_transition_job_that_went_missing() -> None:
    sched, _, _, _ = await make(f"{MONDAY} 09:00")
    sched.arm()
    sched.scheduler.remove_job(TRANSITION_JOB)
    await sched.poll()
    assert sched.scheduler.get_job(TRANSITION_JOB).trigger.run_date == at(f"{MONDAY} 12:00")


@pytest.mark.parametrize("tz", [SHANGHAI, BERLIN])
def test_a_year_of_fires_never_goes_backwards_and_lands_on_local_wall_times(tz: object) -> None:
    r = rota(calendar(tz))
    when = datetime(2026, 1, 1, tzinfo=tz)
    seen = 0
    while when.year == 2026:
        tr = next_transition(r, when)
        assert tr.at.astimezone(UTC) > when.astimezone(UTC)
        assert tr.at.strftime("%H:%M") in {"08:00", "12:00", "13:30", "17:30"}
        when = tr.at
        seen += 1
    assert seen > 900
