"""KPIs against a hand-computed week (Mon 2026-11-02 .. Tue 2026-11-03, Asia/Shanghai, hours
Mon-Fri 08:00-17:30, short abandon < 5 s, repeat window 7 days, ring cadence 5 s, cap 600 s)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config, ReportsConfig
from ctid.db.schema import AuditLog, Holiday
from ctid.reports import kpi
from ctid.reports.kpi import NONE_KEY, IncidentCount, KpiRow
from ctid.reports.period import ReportError

from .conftest import at, call, history, incident, insert, ring

MON, TUE = date(2026, 11, 2), date(2026, 11, 3)
A, B, C, D, E, F, G, H, J = (f"+86138000000{n:02d}" for n in range(1, 10))


def week() -> list[object]:
    """The fixture: every fact is commented with what it tests."""
    return [
        # Incidents first: calls point at them.
        incident(
            1,
            at(2, 9, 5),
            request_type="consultation",
            category="software",
            status="resolved",
            owner_seat="seat1",
            owner_employee="E001",
            satisfaction=5,
        ),
        history(1, at(2, 9, 5), "create"),
        history(1, at(2, 9, 6), "resolve_first_line"),
        # Dispatched to second line, resolved there: settled, not first line.
        incident(
            2,
            at(2, 12, 5),
            category="hardware",
            status="closed",
            owner_seat="seat3",
            owner_employee="E003",
            owner_group="desktop",
            satisfaction=3,
        ),
        history(2, at(2, 12, 5), "create", "seat3"),
        history(2, at(2, 12, 6), "dispatch", "E003", group="desktop"),
        history(2, at(2, 15, 0), "resolve", "desktop"),
        # Opened by seat1 (call c8), handed to an expert, resolved there: still first line,
        # credited to seat1 (the receiving seat).
        incident(3, at(3, 8, 5), category="software", status="resolved", owner_seat="seat3"),
        history(3, at(3, 8, 5), "create"),
        history(3, at(3, 8, 6), "hand_to_expert", "E001", seat="seat3", from_seat="seat1"),
        history(3, at(3, 9, 0), "resolve", "E003"),
        # Web self-service, nobody owns it yet: not settled.
        incident(4, at(3, 10, 30), request_type="service_request", status="new"),
        history(4, at(3, 10, 30), "create", "web"),
        # Escalated and still open: settled, not first line.
        incident(
            5,
            at(3, 16, 0),
            category="network",
            status="escalated",
            owner_seat="seat2",
            flags=["escalated"],
        ),
        history(5, at(3, 16, 0), "create", "seat2"),
        history(5, at(3, 16, 5), "escalate", "E002", reason="VIP"),
        # Created one minute before local midnight ending Tuesday: Tuesday's (15:59 UTC).
        incident(
            6,
            at(3, 23, 59, 30),
            category="network",
            status="resolved",
            owner_seat="seat2",
            satisfaction=4,
        ),
        history(6, at(3, 23, 59, 30), "create", "seat2"),
        history(6, at(4, 0, 10), "resolve", "E002"),
        # Outside the period: Sunday 23:59 local and Wednesday 00:00 local.
        incident(7, at(1, 23, 59), status="resolved", owner_seat="seat1", satisfaction=1),
        incident(8, at(4, 0, 0), status="resolved", owner_seat="seat1", satisfaction=1),
        # Lookback calls for repeat detection (before the period).
        call(
            "c0d",
            at(27, 10, 0, month=10),
            "answered",
            number=D,
            queued_s=5,
            answered_s=10,
            seat="seat1",
            ring=1,
            talk_s=60,
        ),
        call(
            "c0i",
            at(27, 11, 0, month=10),
            "answered",
            number=J,
            queued_s=5,
            answered_s=10,
            seat="seat1",
            ring=1,
            talk_s=60,
        ),
        call(
            "c0c",
            at(25, 10, 0, month=10),
            "answered",
            number=C,
            queued_s=5,
            answered_s=10,
            seat="seat1",
            ring=1,
            talk_s=60,
        ),
        # Monday.
        call(
            "c1",
            at(2, 9, 0),
            "answered",
            number=A,
            queued_s=10,
            answered_s=20,
            ended_s=140,
            seat="seat1",
            ring=2,
            within=True,
            talk_s=120,
            incident_id=1,
        ),
        ring("c1", "seat2", at(2, 9, 0, 10), "no_answer"),
        ring("c1", "seat1", at(2, 9, 0, 13), "answered", 7),
        call("c2", at(2, 9, 30), "abandoned_in_queue", number=B, queued_s=10, ended_s=13),
        call("c3", at(2, 10, 0), "abandoned_in_queue", number=C, queued_s=10, ended_s=40),
        ring("c3", "seat1", at(2, 10, 0, 10), "caller_left", 30),
        # Starts before lunch, answered during it (lunch is service time); over the cap.
        call(
            "c4",
            at(2, 11, 59, 50),
            "answered",
            number=A,
            queued_s=10,
            answered_s=30,
            ended_s=730,
            seat="seat3",
            ring=4,
            within=False,
            talk_s=700,
            capped=True,
            incident_id=2,
        ),
        ring("c4", "seat3", at(2, 12, 0, 0), "answered", 20),
        ring("c4", "seat4", at(2, 12, 0, 0), "cut", 15),
        call("c5", at(2, 14, 0), "unanswered_timeout", number=D, queued_s=10, ended_s=310),
        ring("c5", "seat1", at(2, 14, 0, 10), "no_answer"),
        ring("c5", "seat2", at(2, 14, 0, 30), "cut"),
        call("c6", at(2, 23, 50), "closed_hours", number=E),
        # After hours (fail-open queue), crosses midnight: Monday's. No stored ring number:
        # derived from the answered ring attempt (3 s → ring 1); talk 600 s = the cap.
        call(
            "c7",
            at(2, 23, 55),
            "answered",
            number=F,
            queued_s=10,
            answered_s=30,
            ended_s=630,
            seat="seat2",
            talk_s=600,
        ),
        ring("c7", "seat2", at(2, 23, 55, 27), "answered", 3),
        # Tuesday. Opening second counts; answered by ordinary seat1, then transferred.
        call(
            "c8",
            at(3, 8, 0),
            "answered",
            number=A,
            queued_s=0,
            answered_s=12,
            ended_s=312,
            seat="seat1",
            ring=3,
            within=True,
            talk_s=300,
            transferred_to="expert",
            incident_id=3,
        ),
        ring("c8", "seat1", at(3, 8, 0, 0), "answered", 12),
        # 07:30 Tuesday local is 23:30 Monday UTC: Tuesday's.
        call("c15", at(3, 7, 30), "closed_hours", number=E),
        # Reached the queue at 17:30:05 (close is exclusive): after hours.
        call("c9", at(3, 17, 30), "abandoned_in_queue", number=G, queued_s=5, ended_s=60),
        ring("c9", "seat4", at(3, 17, 30, 5), "no_answer"),
        call("c10", at(3, 10, 0), "abandoned_in_ivr", number=H),
        # Exactly 7 days after J's answered call: a repeat.
        call("c11", at(3, 11, 0), "callback_requested", number=J, queued_s=0, ended_s=30),
        call("c12", at(3, 11, 30), None, number=B, queued_s=5),  # still live: not counted
        call("c13", at(3, 15, 0), "lost_during_resync", queued_s=5, ended_s=50),
        # Wednesday: outside the period.
        call("c14", at(4, 9, 0), "abandoned_in_queue", number=B, queued_s=5, ended_s=60),
        # Auto-pauses: two for ring-no-answer, one for another reason, one outside the period.
        AuditLog(
            at=at(2, 14, 1),
            actor="ctid",
            action="seat_paused",
            target="seat2",
            detail={"reason": "rna"},
        ),
        AuditLog(
            at=at(3, 17, 31),
            actor="ctid",
            action="seat_paused",
            detail={"reason": "rna", "seat": "seat4"},
        ),
        AuditLog(
            at=at(3, 12, 0),
            actor="E001",
            action="seat_paused",
            target="seat1",
            detail={"reason": "lunch"},
        ),
        AuditLog(
            at=at(4, 9, 1),
            actor="ctid",
            action="seat_paused",
            target="seat1",
            detail={"reason": "rna"},
        ),
    ]


def values(row: KpiRow) -> dict[str, object]:
    return {name: getattr(row, name) for name in KpiRow.__slots__ if name != "key"}


EMPTY = values(kpi._Acc().row("x"))


def expect(**changes: object) -> dict[str, object]:
    return {**EMPTY, **changes}


TOTAL = expect(
    offered=8, answered=3, abandoned=2, short_abandons=1, unanswered=1, loss_rate=0.25,
    after_hours=4, answered_all=4, within_rings=3, within_rings_rate=0.75,
    ring_1=1, ring_2=1, ring_3=1, ring_over=1, asa_s=15.5, aht_s=430.0, over_cap=2,
    ring_misses=5, auto_pauses=2, repeat_calls=4, incidents=6, first_line_resolved=3,
    first_line_settled=5, first_line_rate=0.6, satisfaction_avg=4.0, satisfaction_count=3,
)  # fmt: skip


async def test_total_on_each_backend(
    any_sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(any_sessions, *week())
    report = await kpi.compute(any_sessions, cfg, MON, TUE, "total")
    assert report.rows == ()
    assert report.total.key == "total"
    assert values(report.total) == TOTAL
    assert report.incidents_by_type == (
        IncidentCount("consultation", "software", 1),
        IncidentCount("fault", "hardware", 1),
        IncidentCount("fault", "network", 2),
        IncidentCount("fault", "software", 1),
        IncidentCount("service_request", None, 1),
    )


async def test_per_seat_on_each_backend(
    any_sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(any_sessions, *week())
    report = await kpi.compute(any_sessions, cfg, MON, TUE, "seat")
    rows = {r.key: values(r) for r in report.rows}
    assert [r.key for r in report.rows] == ["seat1", "seat2", "seat3", "seat4", NONE_KEY]
    assert rows["seat1"] == expect(
        offered=2, answered=2, loss_rate=0.0, answered_all=2, within_rings=2,
        within_rings_rate=1.0, ring_2=1, ring_3=1, asa_s=11.0, aht_s=210.0, ring_misses=1, repeat_calls=1,
        incidents=2, first_line_resolved=2, first_line_settled=2, first_line_rate=1.0,
        satisfaction_avg=5.0, satisfaction_count=1,
    )  # fmt: skip
    assert rows["seat2"] == expect(
        after_hours=1, answered_all=1, within_rings=1, within_rings_rate=1.0, ring_1=1,
        asa_s=20.0, aht_s=600.0, over_cap=1, ring_misses=2, auto_pauses=1, incidents=2,
        first_line_resolved=1, first_line_settled=2, first_line_rate=0.5,
        satisfaction_avg=4.0, satisfaction_count=1,
    )  # fmt: skip
    assert rows["seat3"] == expect(
        offered=1, answered=1, loss_rate=0.0, answered_all=1, within_rings_rate=0.0,
        ring_over=1, asa_s=20.0, aht_s=700.0, over_cap=1, repeat_calls=1, incidents=1,
        first_line_settled=1, first_line_rate=0.0, satisfaction_avg=3.0, satisfaction_count=1,
    )  # fmt: skip
    assert rows["seat4"] == expect(ring_misses=2, auto_pauses=1)
    assert rows[NONE_KEY] == expect(
        offered=5, abandoned=2, short_abandons=1, unanswered=1, loss_rate=0.4, after_hours=3,
        repeat_calls=2, incidents=1,
    )  # fmt: skip
    assert values(report.total) == TOTAL


async def test_per_tier_counts_the_answering_seat(
    sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(sessions, *week())
    report = await kpi.compute(sessions, cfg, MON, TUE, "tier")
    rows = {r.key: values(r) for r in report.rows}
    assert [r.key for r in report.rows] == ["ordinary", "expert", NONE_KEY]
    # c8 was transferred to the expert queue after seat1 answered: it stays ordinary's.
    assert rows["ordinary"] == expect(
        offered=2, answered=2, loss_rate=0.0, after_hours=1, answered_all=3, within_rings=3,
        within_rings_rate=1.0, ring_1=1, ring_2=1, ring_3=1, asa_s=14.0, aht_s=340.0,
        over_cap=1, ring_misses=3, auto_pauses=1, repeat_calls=1, incidents=4,
        first_line_resolved=3, first_line_settled=4, first_line_rate=0.75,
        satisfaction_avg=4.5, satisfaction_count=2,
    )  # fmt: skip
    assert rows["expert"] == expect(
        offered=1, answered=1, loss_rate=0.0, answered_all=1, within_rings_rate=0.0,
        ring_over=1, asa_s=20.0, aht_s=700.0, over_cap=1, ring_misses=2, auto_pauses=1,
        repeat_calls=1, incidents=1, first_line_settled=1, first_line_rate=0.0,
        satisfaction_avg=3.0, satisfaction_count=1,
    )  # fmt: skip


async def test_per_day_in_site_time(
    sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(sessions, *week())
    report = await kpi.compute(sessions, cfg, MON, TUE, "day")
    rows = {r.key: r for r in report.rows}
    assert list(rows) == ["2026-11-02", "2026-11-03"]
    mon, tue = rows["2026-11-02"], rows["2026-11-03"]
    # c7 (23:55 Monday, ended Tuesday) and c6 (23:50) are Monday's.
    assert (mon.offered, mon.answered, mon.abandoned, mon.short_abandons, mon.unanswered) == (
        5, 2, 2, 1, 1,
    )  # fmt: skip
    assert (mon.loss_rate, mon.after_hours, mon.answered_all, mon.over_cap) == (0.4, 2, 3, 2)
    assert (mon.ring_misses, mon.auto_pauses, mon.repeat_calls, mon.incidents) == (4, 1, 2, 2)
    assert (tue.offered, tue.answered, tue.loss_rate, tue.after_hours) == (3, 1, 0.0, 2)
    # Incident 6 was created at 23:59:30 Tuesday local (15:59:30 UTC): Tuesday's.
    assert (tue.ring_misses, tue.auto_pauses, tue.repeat_calls, tue.incidents) == (1, 1, 2, 4)
    assert (tue.first_line_resolved, tue.first_line_settled) == (2, 3)


async def test_per_hour_counts_by_start(
    sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(sessions, *week())
    report = await kpi.compute(sessions, cfg, MON, TUE, "hour")
    keys = [r.key for r in report.rows]
    # Every service hour (08..17), plus the hours with facts outside them.
    assert keys == ["07"] + [f"{h:02d}" for h in range(8, 18)] + ["23"]
    rows = {r.key: r for r in report.rows}
    # c4 started 11:59:50 and was answered in the 12:00 hour: it is an 11 o'clock call.
    assert (rows["11"].offered, rows["11"].answered, rows["11"].over_cap) == (2, 1, 1)
    assert (rows["12"].offered, rows["12"].incidents) == (0, 1)
    assert (rows["23"].after_hours, rows["23"].answered_all, rows["23"].incidents) == (2, 1, 1)
    assert rows["13"] == kpi._Acc().row("13")
    assert sum(r.offered for r in report.rows) == report.total.offered == 8


async def test_empty_period_has_no_rates(
    sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(sessions, *week())
    report = await kpi.compute(sessions, cfg, date(2026, 12, 1), date(2026, 12, 2), "day")
    assert [r.key for r in report.rows] == ["2026-12-01", "2026-12-02"]
    for row in (*report.rows, report.total):
        assert values(row) == EMPTY
        assert row.loss_rate is None and row.within_rings_rate is None
        assert row.asa_s is None and row.aht_s is None
        assert row.first_line_rate is None and row.satisfaction_avg is None
    assert report.incidents_by_type == ()


async def test_empty_database(sessions: async_sessionmaker[AsyncSession], cfg: Config) -> None:
    for by in kpi.GROUPINGS:
        report = await kpi.compute(sessions, cfg, MON, MON, by)
        assert values(report.total) == EMPTY
        assert all(values(r) == EMPTY for r in report.rows)


async def test_short_abandon_threshold_is_configurable(
    sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(
        sessions,
        call("a1", at(2, 9, 0), "abandoned_in_queue", queued_s=0, ended_s=4.9),
        call("a2", at(2, 9, 1), "abandoned_in_queue", queued_s=0, ended_s=5),
        call("a3", at(2, 9, 2), "abandoned_in_queue", queued_s=0, ended_s=29.9),
        call("a4", at(2, 9, 3), "answered", queued_s=0, answered_s=3, seat="seat1", ring=1),
    )
    report = await kpi.compute(sessions, cfg, MON, MON, "total")
    # Under 5 s is short (5.0 is not): loss = (3 - 1) / 4.
    assert (report.total.abandoned, report.total.short_abandons) == (3, 1)
    assert report.total.loss_rate == 0.5
    longer = cfg.model_copy(update={"reports": ReportsConfig(short_abandon_s=30)})
    report = await kpi.compute(sessions, longer, MON, MON, "total")
    assert (report.total.short_abandons, report.total.loss_rate) == (3, 0.0)


async def test_holidays_table_and_injected_calendar(
    sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(sessions, *week(), Holiday(day=MON, kind="holiday", name="test holiday"))
    report = await kpi.compute(sessions, cfg, MON, TUE, "day")
    mon = report.rows[0]
    # Monday closed: its five queued calls move to after hours (plus c6 and c7).
    assert (mon.offered, mon.after_hours, mon.loss_rate) == (0, 7, None)
    assert report.total.offered == 3

    def always(_at: datetime) -> bool:
        return True

    report = await kpi.compute(sessions, cfg, MON, TUE, "total", is_open=always)
    # c7 and c9 reached a queue and now count; c6 (IVR said closed) never does.
    assert (report.total.offered, report.total.after_hours) == (10, 2)
    assert report.total.abandoned == 3


async def test_repeat_window_is_configurable(
    sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(sessions, *week())
    short = cfg.model_copy(update={"reports": ReportsConfig(repeat_call_days=1)})
    report = await kpi.compute(sessions, short, MON, TUE, "total")
    # Only A's calls (c4 three hours after c1, c8 20 hours after c4) are within one day.
    assert report.total.repeat_calls == 2


async def test_bad_arguments(sessions: async_sessionmaker[AsyncSession], cfg: Config) -> None:
    with pytest.raises(ReportError, match="before it starts"):
        await kpi.compute(sessions, cfg, TUE, MON, "total")
    with pytest.raises(ReportError, match="cannot group"):
        await kpi.compute(sessions, cfg, MON, TUE, "week")  # type: ignore[arg-type]
