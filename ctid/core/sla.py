"""SLA clock arithmetic, pure and stdlib-only so the incident page and the reports judge alike: a
clock runs from creation, stands still while the incident is suspended (for resolution also while
resolved or closed), and stops at the response or the resolution."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

ClockState = Literal["none", "running", "paused", "overdue", "met", "breached"]
"""none: no SLA (no priority yet); running/paused/overdue: not stopped yet (overdue = the budget is
used up, whether the clock runs or is paused); met/breached: stopped within / after the budget."""

RESPONSE_PAUSES: frozenset[str] = frozenset({"suspended"})
RESOLUTION_PAUSES: frozenset[str] = frozenset({"suspended", "resolved", "closed"})
"""Statuses during which a clock does not run. A reopened incident's resolution clock continues
from where it stopped: the time it spent resolved is not the desk's."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The incident entered `status` at `at` (its history, creation included)."""

    at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class SlaClock:
    state: ClockState
    budget_s: float | None
    """The time the SLA allows (None: no SLA)."""
    used_s: float
    """Running time consumed, up to the stop or to now."""
    remaining_s: float | None
    """budget − used (negative once late); None without an SLA."""
    due_at: datetime | None
    """When it runs out (ran out) if nothing pauses it again: set only while the clock runs."""
    stopped_at: datetime | None


def sla_clock(
    *,
    created_at: datetime,
    budget: timedelta | None,
    changes: Sequence[StatusChange],
    stopped_at: datetime | None,
    now: datetime,
    pauses: Iterable[str] = RESPONSE_PAUSES,
) -> SlaClock:
    """The clock of one SLA target. `changes` are the status changes in time order (unsorted
    input is sorted); before the first one the incident counts as running. `stopped_at` is the
    first response / the resolution (None while still due)."""
    paused = frozenset(pauses)
    end = stopped_at if stopped_at is not None else now
    used = _running_seconds(created_at, end, sorted(changes, key=lambda c: c.at), paused)
    if budget is None:
        return SlaClock("none", None, used, None, None, stopped_at)
    budget_s = budget.total_seconds()
    remaining = budget_s - used
    if stopped_at is not None:
        return SlaClock(
            "met" if remaining >= 0 else "breached", budget_s, used, remaining, None, stopped_at
        )
    status_now = _status_at(changes, now)
    if status_now is not None and status_now in paused:
        # Paused after running out is still late: suspending cannot un-breach it.
        state: ClockState = "paused" if remaining >= 0 else "overdue"
        return SlaClock(state, budget_s, used, remaining, None, None)
    due = now + timedelta(seconds=remaining)
    return SlaClock(
        "running" if remaining >= 0 else "overdue", budget_s, used, remaining, due, None
    )


def _status_at(changes: Sequence[StatusChange], when: datetime) -> str | None:
    current: str | None = None
    for change in sorted(changes, key=lambda c: c.at):
        if change.at > when:
            break
        current = change.status
    return current


def _running_seconds(
    start: datetime, end: datetime, changes: Sequence[StatusChange], paused: frozenset[str]
) -> float:
    """Seconds in [start, end) spent in a status not in `paused`."""
    if end <= start:
        return 0.0
    total = 0.0
    cursor = start
    running = True
    for change in changes:
        at = min(max(change.at, start), end)
        if running:
            total += (at - cursor).total_seconds()
        cursor = at
        running = change.status not in paused
        if change.at >= end:
            break
    if running:
        total += (end - cursor).total_seconds()
    return total
