"""Plain inputs from the call side: what the app hands the tickets store about a call (converted
from the call tracker's record, which ctid.tickets never imports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFacts:
    """An answered call, enough to open its incident. `ivr_digit` is the menu choice (its
    `request_type` comes from `[ivr.options]`); `category` if the IVR knew one."""

    call_id: str
    answered_at: datetime
    answered_by_seat: str
    caller_number: str | None = None
    caller_name: str | None = None
    answered_by_employee: str | None = None
    started_at: datetime | None = None
    queue: str | None = None
    ivr_digit: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RingAttemptIn:
    """One seat ringing for the call. outcome answered|no_answer|cut|caller_left|other."""

    seat_id: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str | None = None
    ring_s: float | None = None
    talk_s: float | None = None
    """An answered ring: how long this seat talked on its own leg."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecordIn:
    """A call's facts for the `calls` table (written again as the call progresses; the last
    write wins, ring attempts are replaced as a whole)."""

    call_id: str
    started_at: datetime
    caller_number: str | None = None
    caller_name: str | None = None
    queue: str | None = None
    ivr_choice: str | None = None
    category: str | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    answered_by_seat: str | None = None
    answer_ring: int | None = None
    within_rings: bool | None = None
    outcome: str | None = None
    talk_s: float | None = None
    capped: bool = False
    transferred_to: str | None = None
    ring_attempts: tuple[RingAttemptIn, ...] = ()
