"""The monthly agent review (November 2026, Asia/Shanghai) against hand-counted facts: seat1 is
staffed by E001 (E005 covers it on 3 November), seat2 by E002, seat3 by E003, seat4 by nobody."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.db.schema import Callback, RosterOverride, User
from ctid.reports import agent_month
from ctid.reports.agent_month import AgentMonthRow
from ctid.reports.kpi import NONE_KEY
from ctid.reports.period import ReportError

from .conftest import at, call, history, incident, insert


def user(emp: str, name: str) -> User:
    when = at(1, 8)
    return User(employee_id=emp, name=name, role="agent", created_at=when, updated_at=when)


def callback(worked_by: str, status: str, when: object) -> Callback:
    return Callback(
        caller_number="+8613800000001",
        reason="abandoned",
        requested_at=at(1, 9),
        status=status,
        attempts=1,
        worked_by=worked_by,
        updated_at=when,
    )


def november() -> list[object]:
    return [
        user("E001", "张三"),
        user("E002", "Li Si"),
        user("E003", "Zhao Liu"),
        user("E005", "Wang Wu"),
        RosterOverride(day=date(2026, 11, 3), seat_id="seat1", staffed_by="E005",
                       created_by="S001", created_at=at(1, 8)),
        # From a call seat1 answered; its owner never changed → E001.
        incident(1, at(2, 9, 5), request_type="consultation", owner_seat="seat1",
                 owner_employee="E001"),
        history(1, at(2, 9, 5), "create", "seat1"),
        call("c1", at(2, 9, 0), "answered", seat="seat1", answered_s=10, incident_id=1),
        # From a call seat3 answered, then dispatched (not an ownership move) → E003.
        incident(2, at(2, 12, 5), owner_seat="seat3", owner_employee="E003",
                 owner_group="desktop", status="dispatched"),
        history(2, at(2, 12, 5), "create", "seat3"),
        history(2, at(2, 12, 6), "dispatch", "E003", group="desktop"),
        call("c4", at(2, 12, 0), "answered", seat="seat3", answered_s=10, incident_id=2),
        # Taken by seat1 on the 3rd (E005 covering), handed to an expert: still seat1's, and
        # E005's by the roster (the owner changed, so owner_employee no longer tells).
        incident(3, at(3, 8, 5), request_type="consultation", owner_seat="seat3"),
        history(3, at(3, 8, 5), "create", "seat1"),
        history(3, at(3, 8, 6), "hand_to_expert", "E005", seat="seat3", from_seat="seat1"),
        call("c8", at(3, 8, 0), "answered", seat="seat1", answered_s=10, incident_id=3),
        # Recorded by hand by E002 with no owner seat: E002's, and the seat E002 staffed.
        incident(4, at(3, 10, 30), request_type="service_request", status="new"),
        history(4, at(3, 10, 30), "create", "E002"),
        # Opened at seat2 without a stored call: seat2's staffer that day.
        incident(5, at(3, 16, 0), owner_seat="seat2"),
        history(5, at(3, 16, 0), "create", "seat2"),
        # Opened at seat2, then reassigned to seat4: its first owner seat2 received it.
        incident(8, at(5, 9), owner_seat="seat4", owner_employee="E004"),
        history(8, at(5, 9), "create", "seat2"),
        history(8, at(5, 9, 30), "reassign", "S001", seat="seat4", employee="E004",
                from_seat="seat2"),
        # Outside November (local): the last minute of October, the first instant of December.
        incident(6, at(31, 23, 59, month=10), request_type="consultation", owner_seat="seat1",
                 owner_employee="E001"),
        incident(7, at(1, 0, 0, month=12), request_type="consultation", owner_seat="seat1",
                 owner_employee="E001"),
        # Satisfaction recorded on follow-up calls (the caller's own survey answer is not one).
        history(1, at(10, 10), "rate", "E001", score=5),
        history(2, at(11, 10), "rate", "caller", score=3),
        history(5, at(12, 10), "rate", "seat2", score=4),
        history(3, at(3, 15), "rate", "E005", score=4),
        history(4, at(20, 10), "rate", "S001", score=2),
        history(1, at(1, 10, month=12), "rate", "E001", score=5),
        # Callbacks: done counts (by when it was done), failed does not.
        callback("E002", "done", at(4, 10)),
        callback("E001", "failed", at(5, 10)),
        callback("E003", "done", at(30, 23, 30)),
        callback("E003", "done", at(1, 0, 30, month=12)),
    ]  # fmt: skip


async def test_agent_month_on_each_backend(
    any_sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    await insert(any_sessions, *november())
    review = await agent_month.compute(any_sessions, cfg, "2026-11")
    assert review.month == "2026-11"
    assert review.seats == (
        AgentMonthRow("seat1", "Seat 1", 2, 2, 2, 0),
        AgentMonthRow("seat2", "Seat 2", 3, 0, 1, 1),
        AgentMonthRow("seat3", "Seat 3", 1, 0, 0, 1),
        AgentMonthRow("seat4", "Seat 4", 0, 0, 0, 0),
        AgentMonthRow(NONE_KEY, "", 0, 0, 1, 0),
    )
    assert review.staff == (
        AgentMonthRow("E001", "张三", 1, 1, 1, 0),
        AgentMonthRow("E002", "Li Si", 3, 0, 1, 1),
        AgentMonthRow("E003", "Zhao Liu", 1, 0, 0, 1),
        AgentMonthRow("E005", "Wang Wu", 1, 1, 1, 0),
        AgentMonthRow("S001", "Duty Manager", 0, 0, 1, 0),
    )
    assert [r.followups for r in review.seats] == [2, 2, 1, 0, 1]
    assert [r.followups for r in review.staff] == [1, 2, 1, 1, 1]


async def test_empty_month_lists_the_roster(
    sessions: async_sessionmaker[AsyncSession], cfg: Config
) -> None:
    review = await agent_month.compute(sessions, cfg, "2026-02")
    assert [r.key for r in review.seats] == ["seat1", "seat2", "seat3", "seat4"]
    assert [r.key for r in review.staff] == ["E001", "E002", "E003"]
    assert all(
        (r.incidents_handled, r.consultations_answered, r.followups) == (0, 0, 0)
        for r in (*review.seats, *review.staff)
    )


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-11", "2026-11-01", ""])
async def test_bad_month(
    sessions: async_sessionmaker[AsyncSession], cfg: Config, month: str
) -> None:
    with pytest.raises(ReportError, match="YYYY-MM"):
        await agent_month.compute(sessions, cfg, month)
