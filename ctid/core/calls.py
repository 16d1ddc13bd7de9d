"""The call story's public vocabulary: the notices the call tracker publishes on the bus and the
read models (seat state, call state, call record) they carry. Times are on the events' clock."""

from __future__ import annotations

from typing import Literal, TypeAlias

from ctid.core.ids import CallId, Channel, QueueName, SeatId
from ctid.core.records import record

Activity = Literal["idle", "ringing", "on_call"]
SeatStatus = Literal["idle", "ringing", "on_call", "paused", "unavailable"]

RingOutcome = Literal["answered", "no_answer", "cut", "caller_left", "other_answered", "other"]
"""How one ring of one seat ended. `other`: its leg vanished while ctid was not listening."""

CallOutcome = Literal[
    "answered",
    "abandoned_in_queue",
    "abandoned_in_ivr",
    "closed_hours",
    "callback_requested",
    "unanswered_timeout",
    "lost_during_resync",
]
EndedBy = Literal["caller", "agent", "transfer", "talk_cap", "unknown"]
AnswerSource = Literal["live", "seat_leg_start", "stored"]
"""Where an answer time comes from. `live`: ctid saw the answer (bridge or AgentConnect).
`seat_leg_start`: found by a resync, when only CoreShowChannels' `Duration` of the answering
seat leg was known: the answer lies between the leg's creation and now, so `answered_at` is the
leg's creation (the talk time then includes the ring) and the ring time is unknown.
`stored`: the answer ctid saw live and stored before it restarted (`CallAnswerRecalled`)."""
CallPhase = Literal["ivr", "queued", "ringing", "answered"]


@record()
class SeatState:
    """What a seat is doing. `activity` and `paused` are independent: a seat paused during a call
    is `on_call` and `paused` at once. `paused` means paused in at least one of its queues
    (`paused_in` says which); `available` is False when the phone is unreachable (device state
    invalid/unavailable) or, once ctid knows the memberships, the seat is in no queue at all."""

    seat_id: SeatId
    activity: Activity = "idle"
    call_id: CallId | None = None
    paused: bool = False
    pause_reason: str = ""
    available: bool = True
    queues: frozenset[QueueName] = frozenset()
    paused_in: frozenset[QueueName] = frozenset()

    @property
    def status(self) -> SeatStatus:
        """One word for a wallboard tile: a call beats everything, then unreachable, then paused."""
        if self.activity != "idle":
            return self.activity
        if not self.available:
            return "unavailable"
        if self.paused:
            return "paused"
        return "idle"


@record()
class RingAttempt:
    """One seat ringing for one call. `end`/`outcome`/`ring_s` are None while it still rings."""

    seat: SeatId
    channel: Channel
    queue: QueueName
    start: float
    end: float | None = None
    outcome: RingOutcome | None = None
    ring_s: float | None = None
    talk_end: float | None = None
    """An answered ring: when this seat's own leg of the conversation ended."""
    talk_s: float | None = None
    """An answered ring: how long this seat talked (answer → its own leg's end)."""


@record()
class CallRecord:
    """Everything known about a call once it has ended. Times are on the events' clock (`at`).

    `talk_s` runs from answer to the end of the (last) agent conversation; `hold_s` from joining
    the queue to the answer. `ended_by` is who ended an answered call (`talk_cap` when ctid's
    AbsoluteTimeout fired), `unknown` otherwise. Each answered ring attempt carries that seat's
    own talk time; `transferred_to` is the seat that answered after a transfer (the last one).
    `category` is the IVR's `CTID_CATEGORY`; `answer_source` says how `answered_at` is known.
    """

    call_id: CallId
    caller_num: str
    caller_name: str
    queue: QueueName | None
    ivr_choice: str
    started_at: float
    queued_at: float | None
    answered_at: float | None
    answered_by: SeatId | None
    ended_at: float
    outcome: CallOutcome
    ring_attempts: tuple[RingAttempt, ...]
    talk_s: float | None
    hold_s: float | None
    ended_by: EndedBy
    transferred: bool
    variables: tuple[tuple[str, str], ...]
    category: str = ""
    transferred_to: SeatId | None = None
    answer_source: AnswerSource = "live"


@record()
class CallState:
    """A live call as the tracker sees it now (a snapshot; it does not change under you)."""

    call_id: CallId
    phase: CallPhase
    caller_num: str
    caller_name: str
    caller_channel: Channel | None
    queue: QueueName | None
    ivr_choice: str
    started_at: float
    queued_at: float | None
    answered_at: float | None
    answered_by: SeatId | None
    seat_channel: Channel | None
    ring_attempts: tuple[RingAttempt, ...]
    channels: tuple[Channel, ...]
    spied_by: tuple[Channel, ...]
    variables: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------- notices


@record()
class CallStarted:
    """A hotline call is known (its first channel appeared at `at`)."""

    call_id: CallId
    at: float
    caller_num: str
    caller_name: str
    caller_channel: Channel | None = None
    """The caller's channel as known now (the IVR runs on it), if any."""


@record()
class CallQueued:
    call_id: CallId
    at: float
    queue: QueueName
    position: int


@record()
class CallLeftQueue:
    """The caller left the queue unanswered (gave up, timed out, or a resync found it gone from
    the queue) while the call goes on or ends; an answer says `CallAnswered` instead."""

    call_id: CallId
    at: float


@record()
class SeatRingStarted:
    """A seat started ringing for a call; carries what a screen-pop needs first."""

    call_id: CallId
    seat: SeatId
    seat_channel: Channel
    queue: QueueName
    at: float
    caller_num: str
    caller_name: str
    ivr_choice: str
    started_at: float
    """When the call reached the PBX (its first channel), for the pop's "waiting since"."""


@record()
class SeatRingEnded:
    call_id: CallId
    seat: SeatId
    seat_channel: Channel
    at: float
    reason: RingOutcome
    ring_s: float


@record()
class CallAnswered:
    """A seat answered. `ring_s` is how long it rang (None when a resync found the call already
    answered and only the seat leg's age is known, see `AnswerSource`); the ring count is the
    policy's business. It carries the call's facts too, so an incident can be opened from it
    alone. A transferred call is answered once per seat that took it."""

    call_id: CallId
    seat: SeatId
    seat_channel: Channel
    at: float
    ring_s: float | None
    hold_s: float | None
    caller_num: str
    caller_name: str
    caller_channel: Channel | None
    started_at: float
    queue: QueueName | None
    ivr_choice: str
    category: str = ""
    answer_source: AnswerSource = "live"
    transfer: bool = False
    """True when another seat answered this call before (it was moved to this seat's queue)."""
    first_answered_at: float | None = None
    """When the call was first answered (the talk cap counts from it); `at` if this is it."""


@record()
class CallTransferred:
    """`by_seat` (if a seat did it) transferred the call, blind to `exten@context` or attended to
    `target_channel`."""

    call_id: CallId
    at: float
    kind: Literal["blind", "attended"]
    by_seat: SeatId | None
    context: str
    exten: str
    target_channel: Channel


@record()
class SeatLegEnded:
    """The seat's own leg of an answered call hung up (after a transfer the call goes on
    without it): that seat is no longer talking. `talk_s` is its own talk time."""

    call_id: CallId
    seat: SeatId
    seat_channel: Channel
    at: float
    talk_s: float


@record()
class CallEnded:
    record: CallRecord


@record()
class SeatStateChanged:
    seat: SeatId
    at: float
    old: SeatState
    new: SeatState
    reason: str


@record()
class SeatsResynced:
    """Every seat's state after a resync: from now on the seats' real state is known. `calls`
    are the live calls: a read model drops any other it still holds (the resync's notices have
    already told each call's end, answer or ring)."""

    at: float
    seats: tuple[SeatState, ...]
    calls: tuple[CallId, ...]


@record()
class CallAnswerRecalled:
    """A call found answered by a resync was answered at `at` by `seat`, as ctid stored it live
    before it restarted (told by the tickets intake): a better answer time than the seat
    leg's age."""

    call_id: CallId
    seat: SeatId
    at: float


@record()
class IncidentOpened:
    """The incident for an answered call now exists (told by the tickets intake)."""

    call_id: CallId
    number: str


Notice: TypeAlias = (
    CallStarted
    | CallQueued
    | CallLeftQueue
    | SeatRingStarted
    | SeatRingEnded
    | CallAnswered
    | CallTransferred
    | SeatLegEnded
    | CallEnded
    | SeatStateChanged
    | SeatsResynced
)
"""What the call tracker tells the bus, in the order it happened."""
