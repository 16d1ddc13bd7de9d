"""Effects: what ctid's pure policies decide, as values with imperative names (`CutRingingLeg`);
every policy returns a list of them and every service carries them out through ports, `match`ing
them exhaustively."""

from __future__ import annotations

from typing import Literal, TypeAlias

from ctid.core.ids import CallId, Channel, QueueName, SeatId
from ctid.core.records import record


@record()
class RingDeadlineDue:
    """Timer key: the ring deadline of one seat leg."""

    channel: Channel


@record()
class CapWarningDue:
    """Timer key: a talk-cap warning `point_s` seconds into a call."""

    call_id: CallId
    point_s: int


@record()
class CapDue:
    """Timer key: the talk cap of a call."""

    call_id: CallId


TimerKey: TypeAlias = RingDeadlineDue | CapWarningDue | CapDue


@record()
class StartTimer:
    """Call the policy back with `key` after `delay_s` seconds of loop time (replaces a timer with
    the same key)."""

    key: TimerKey
    delay_s: float


@record()
class CancelTimer:
    key: TimerKey


@record()
class CutRingingLeg:
    """Hang up a seat leg that is still ringing past the deadline, so the queue rings the next."""

    call_id: CallId
    seat: SeatId
    channel: Channel


@record()
class PauseSeat:
    """Pause the seat in all of its queues with `reason` (`rna`, `lunch`, `closed`)."""

    seat: SeatId
    reason: str


@record()
class UnpauseSeat:
    seat: SeatId
    reason: str


@record()
class HangupChannel:
    call_id: CallId
    channel: Channel
    why: str


@record()
class RedirectToQueue:
    """Move a live caller channel into another queue (AMI Redirect)."""

    call_id: CallId
    channel: Channel
    queue: QueueName
    why: str


@record()
class AlertSupervisors:
    kind: Literal["ring_miss", "auto_pause", "cap_warning", "cap_reached", "ami_link", "other"]
    message: str
    seat: SeatId | None = None
    call_id: CallId | None = None


@record()
class NotifySeat:
    """Tell the seat's desktop about its call's talk cap: `remaining_s` left (a warning), or the
    cap reached and `action` taken."""

    seat: SeatId
    kind: Literal["cap_warning", "cap_reached"]
    call_id: CallId
    remaining_s: int = 0
    action: str = ""


@record()
class RecordRingMiss:
    call_id: CallId
    seat: SeatId
    ring_s: float
    consecutive: int


@record()
class RecordAnswer:
    """How fast a call was answered: ring number 1, 2, 3, … and whether it met the rule."""

    call_id: CallId
    seat: SeatId
    ring_s: float
    ring_number: int
    within_rule: bool


@record()
class FlagCall:
    """Mark the call (and its incident) with a flag, e.g. `capped`."""

    call_id: CallId
    flag: str


@record()
class RequestCallback:
    """Put the caller on the callback list so they are not lost."""

    call_id: CallId
    number: str
    reason: Literal["abandoned", "missed", "after_hours", "capped"]


Effect: TypeAlias = (
    StartTimer
    | CancelTimer
    | CutRingingLeg
    | PauseSeat
    | UnpauseSeat
    | HangupChannel
    | RedirectToQueue
    | AlertSupervisors
    | NotifySeat
    | RecordRingMiss
    | RecordAnswer
    | FlagCall
    | RequestCallback
)

DeskEffect: TypeAlias = (
    AlertSupervisors | NotifySeat | RecordRingMiss | RecordAnswer | FlagCall | RequestCallback
)
"""The effects that are news for the desk (screens, records), told on the bus after the notice."""

PbxEffect: TypeAlias = CutRingingLeg | PauseSeat | UnpauseSeat | HangupChannel | RedirectToQueue
"""The effects that wait for the PBX's answer: told on the bus and carried out in order in a lane
of their own (`CallService.carry_out`), so no round trip to Asterisk holds the bus."""
