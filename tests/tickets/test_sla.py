"""SLA clocks as a table: running, paused while suspended (the suspended time does not count),
overdue, met and breached; resolution paused while resolved and continuing after a reopen; and
both clocks of a stored incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ctid.core.clock import FakeClock
from ctid.core.sla import RESOLUTION_PAUSES, RESPONSE_PAUSES, StatusChange, sla_clock
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.sla import incident_clocks

T = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def m(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


def ch(minutes: float, status: str) -> StatusChange:
    return StatusChange(m(minutes), status)


# (changes, stopped at, now, pauses) → (state, used min, remaining min, due at min)
CASES = [
    # Running: 30 of 60 minutes used.
    ([ch(0, "in_progress")], None, 30, RESPONSE_PAUSES, ("running", 30, 30, 60)),
    # Suspended 10..40: those 30 minutes do not count; paused now, no due time.
    (
        [ch(0, "in_progress"), ch(10, "suspended")],
        None,
        40,
        RESPONSE_PAUSES,
        ("paused", 10, 50, None),
    ),
    # Resumed at 40: due moves out by the 30 paused minutes.
    (
        [ch(0, "in_progress"), ch(10, "suspended"), ch(40, "in_progress")],
        None,
        50,
        RESPONSE_PAUSES,
        ("running", 20, 40, 90),
    ),
    # Suspended at 70, after the budget ran out: still late, though paused.
    (
        [ch(0, "in_progress"), ch(70, "suspended")],
        None,
        90,
        RESPONSE_PAUSES,
        ("overdue", 70, -10, None),
    ),
    # Past due, still running.
    ([ch(0, "new")], None, 75, RESPONSE_PAUSES, ("overdue", 75, -15, 60)),
    # Stopped at 50 with a 20-minute suspension: 30 used, met.
    (
        [ch(0, "in_progress"), ch(5, "suspended"), ch(25, "in_progress")],
        50,
        500,
        RESPONSE_PAUSES,
        ("met", 30, 30, None),
    ),
    # Stopped at 70 without pauses: breached by 10.
    ([ch(0, "in_progress")], 70, 500, RESPONSE_PAUSES, ("breached", 70, -10, None)),
    # Resolution: resolved at 20, reopened at 100 — the 80 resolved minutes do not count.
    (
        [ch(0, "in_progress"), ch(20, "resolved"), ch(100, "reopened")],
        None,
        110,
        RESOLUTION_PAUSES,
        ("running", 30, 30, 140),
    ),
    # The response clock does not pause for "resolved".
    (
        [ch(0, "in_progress"), ch(20, "resolved")],
        None,
        40,
        RESPONSE_PAUSES,
        ("running", 40, 20, 60),
    ),
    # No history at all: counts as running.
    ([], None, 15, RESPONSE_PAUSES, ("running", 15, 45, 60)),
    # Unsorted history is sorted first.
    (
        [ch(40, "in_progress"), ch(0, "in_progress"), ch(10, "suspended")],
        None,
        50,
        RESPONSE_PAUSES,
        ("running", 20, 40, 90),
    ),
]


@pytest.mark.parametrize(("changes", "stopped", "now", "pauses", "expected"), CASES)
def test_sla_clock(
    changes: list[StatusChange],
    stopped: float | None,
    now: float,
    pauses: frozenset[str],
    expected: tuple[str, float, float, float | None],
) -> None:
    clock = sla_clock(
        created_at=T,
        budget=timedelta(minutes=60),
        changes=changes,
        stopped_at=None if stopped is None else m(stopped),
        now=m(now),
        pauses=pauses,
    )
    state, used, remaining, due = expected
    assert clock.state == state
    assert clock.used_s == used * 60
    assert clock.remaining_s == remaining * 60
    assert clock.due_at == (None if due is None else m(due))
    assert clock.stopped_at == (None if stopped is None else m(stopped))


def test_no_budget_no_sla() -> None:
    clock = sla_clock(created_at=T, budget=None, changes=[], stopped_at=None, now=m(5))
    assert (clock.state, clock.remaining_s, clock.due_at, clock.used_s) == ("none", None, None, 300)


async def test_clocks_of_a_stored_incident_stop_while_suspended(
    store: IncidentStore, clock: FakeClock
) -> None:
    # P2 (high impact, medium urgency in the default matrix): respond 30 min, resolve 480 min.
    inc = await store.create(
        actor="E100", summary="VPN down", impact="high", urgency="medium", category="network"
    )
    assert inc.priority == "P2"
    clock.advance(10 * 60)
    await store.apply(inc.number, "start", "E100", seat="seat1")  # responds at 10 min
    clock.advance(20 * 60)
    await store.apply(inc.number, "suspend", "E100", reason="waiting for the caller")
    clock.advance(120 * 60)
    view = await store.get(inc.number)
    assert view is not None
    clocks = incident_clocks(view, await store.history(inc.number), clock.utcnow())
    assert (clocks.response.state, clocks.response.used_s) == ("met", 600)
    assert clocks.resolution.state == "paused"
    assert clocks.resolution.used_s == 30 * 60  # the 120 suspended minutes do not count
    await store.apply(inc.number, "resume", "E100")
    clocks = incident_clocks(view, await store.history(inc.number), clock.utcnow())
    assert clocks.resolution.state == "running"
    assert clocks.resolution.due_at == clock.utcnow() + timedelta(minutes=480 - 30)
