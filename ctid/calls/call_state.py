"""The call tracker's inner state (channels grouped into calls, ring attempts, seats' queue
memberships) and how it reads out as the public `CallState` and `CallRecord`."""

from __future__ import annotations

from collections import deque

from ctid.calls.seats import SeatRef, interface_device
from ctid.core.calls import (
    AnswerSource,
    CallOutcome,
    CallPhase,
    CallRecord,
    CallState,
    EndedBy,
    RingAttempt,
    RingOutcome,
)
from ctid.core.ids import CallId, Channel, QueueName, SeatId, UniqueId

# The channel variables the hotline's dialplan and IVR set (ctid's side of the contract).
IVR_VAR = "CTID_IVR"
"""The caller's IVR choice (the digit), or `closed` when the IVR ran outside service hours."""
CATEGORY_VAR = "CTID_CATEGORY"
"""What kind of contact the IVR made of the call (its option's request type)."""
ROUTE_VAR = "CTID_ROUTE"
"""Where the IVR sent the call: `queue`, `hangup` (nothing more to do), `callback`, `status`."""
ROUTE_CALLBACK = "callback"
IVR_CLOSED = "closed"
IVR_CALLBACK = "callback"
"""CTID_IVR when the caller left a callback request in the IVR (the route is then `hangup`)."""

STATE_RINGING = 5
STATE_UP = 6
"""Asterisk ChannelState numbers: 5 the device is ringing, 6 answered."""

TALK_CAP_SLACK_S = 1.0
"""A call that ends this close to (or after) its AbsoluteTimeout was ended by the cap."""

MAX_VARS = 32
TOMBSTONES = 4096
"""How many hung-up channel ids and ended call ids are remembered, to drop late events for them."""


class Recent:
    """A bounded map: remembers the last `size` keys added, with a time each (constant memory)."""

    __slots__ = ("_map", "_order", "_size")

    def __init__(self, size: int) -> None:
        self._map: dict[str, float] = {}
        self._order: deque[str] = deque()
        self._size = size

    def add(self, key: str, at: float) -> None:
        if key in self._map:
            return
        self._map[key] = at
        self._order.append(key)
        if len(self._order) > self._size:
            self._map.pop(self._order.popleft(), None)

    def discard(self, key: str) -> None:
        self._map.pop(key, None)

    def get(self, key: str) -> float | None:
        return self._map.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __len__(self) -> int:
        return len(self._order)


class Attempt:
    __slots__ = (
        "answering",
        "call_id",
        "channel",
        "cut",
        "end",
        "leg_gone",
        "outcome",
        "queue",
        "ring_s",
        "seat",
        "start",
        "talk_end",
        "uniqueid",
    )

    def __init__(
        self,
        call_id: CallId,
        seat: SeatId,
        channel: Channel,
        uniqueid: UniqueId,
        queue: QueueName,
        start: float,
    ) -> None:
        self.call_id = call_id
        self.seat = seat
        self.channel = channel
        self.uniqueid = uniqueid
        self.queue = queue
        self.start = start
        self.end: float | None = None
        self.outcome: RingOutcome | None = None
        self.ring_s: float | None = None
        self.leg_gone: float | None = None  # the seat leg hung up; the queue's verdict may follow
        self.answering = False  # DialEnd ANSWER or the leg went Up: AgentConnect should follow
        self.cut = False  # ctid cut this leg itself
        self.talk_end: float | None = None  # answered: when this seat's own leg hung up

    def public(self, call_end: float | None = None) -> RingAttempt:
        talk_end = self.talk_end
        if talk_end is None and self.outcome == "answered":
            talk_end = call_end
        talk_s = None
        if talk_end is not None and self.end is not None and self.outcome == "answered":
            talk_s = max(0.0, talk_end - self.end)
        return RingAttempt(
            self.seat,
            self.channel,
            self.queue,
            self.start,
            self.end,
            self.outcome,
            self.ring_s,
            talk_end,
            talk_s,
        )


class Chan:
    __slots__ = ("bridge", "created_at", "group", "name", "seat", "state", "uniqueid")

    def __init__(
        self,
        name: Channel,
        uniqueid: UniqueId,
        group: Group,
        created_at: float,
        seat: SeatSlot | None,
    ) -> None:
        self.name = name
        self.uniqueid = uniqueid
        self.group = group
        self.created_at = created_at
        self.seat = seat
        self.state = 0
        self.bridge = ""


class Group:
    """All channels that share a call id (the first Linkedid seen). It becomes a hotline call
    (`is_call`) once something says so: a `CTID_*` variable, a queue join, a queue ringing a seat.
    Other groups (a supervisor's spy call, a seat's own outbound call) are tracked silently."""

    __slots__ = (
        "abandoned",
        "answer_source",
        "answered_at",
        "answered_by",
        "answered_channel",
        "answered_leg_gone",
        "answered_uid",
        "attempts",
        "by_leg",
        "call_id",
        "caller_name",
        "caller_num",
        "caller_uid",
        "cap_deadline",
        "channels",
        "complete_reason",
        "hold_s",
        "in_queue",
        "is_call",
        "keys",
        "late",
        "left_unanswered",
        "queue",
        "queued_at",
        "spies",
        "started_at",
        "talk_end_at",
        "transferred",
        "transferred_to",
        "vars",
    )

    def __init__(self, call_id: CallId, started_at: float, late: bool) -> None:
        self.call_id = call_id
        self.started_at = started_at
        self.late = late  # a new group under the id of an ended call: never reported again
        self.keys: list[str] = []
        self.channels: dict[UniqueId, Chan] = {}
        self.is_call = False
        self.caller_num = ""
        self.caller_name = ""
        self.caller_uid: UniqueId | None = None
        self.queue: QueueName | None = None
        self.queued_at: float | None = None
        self.in_queue = False
        self.left_unanswered = False
        self.abandoned = False
        self.answered_at: float | None = None
        self.answered_by: SeatId | None = None
        self.answered_uid: UniqueId | None = None
        self.answered_channel: Channel | None = None
        self.answered_leg_gone: float | None = None
        self.answer_source: AnswerSource = "live"
        self.hold_s: float | None = None
        self.talk_end_at: float | None = None
        self.complete_reason = ""
        self.attempts: list[Attempt] = []
        self.by_leg: dict[UniqueId, Attempt] = {}
        self.vars: dict[str, str] = {}
        self.cap_deadline: float | None = None
        self.spies: dict[Channel, None] = {}
        self.transferred = False
        self.transferred_to: SeatId | None = None


class Member:
    __slots__ = ("in_call", "paused", "reason", "status")

    def __init__(self, status: int, paused: bool, reason: str, in_call: bool) -> None:
        self.status = status
        self.paused = paused
        self.reason = reason
        self.in_call = in_call


class SeatSlot:
    __slots__ = (
        "chans",
        "device",
        "device_status",
        "last_paused",
        "members",
        "members_known",
        "ref",
        "ringing",
    )

    def __init__(self, ref: SeatRef) -> None:
        self.ref = ref
        self.device = interface_device(ref.interface)
        self.chans: dict[UniqueId, Chan] = {}
        self.ringing: dict[UniqueId, Attempt] = {}
        self.members: dict[QueueName, Member] = {}
        self.members_known = False  # only a full QueueStatus (resync) says "and no other queue"
        self.device_status = 0
        self.last_paused: QueueName | None = None


def call_view(group: Group) -> CallState:
    if group.answered_at is not None:
        phase: CallPhase = "answered"
    elif any(a.outcome is None for a in group.attempts):
        phase = "ringing"
    elif group.in_queue:
        phase = "queued"
    else:
        phase = "ivr"
    caller = caller_chan(group)
    return CallState(
        call_id=group.call_id,
        phase=phase,
        caller_num=group.caller_num,
        caller_name=group.caller_name,
        caller_channel=caller.name if caller is not None else None,
        queue=group.queue,
        ivr_choice=group.vars.get(IVR_VAR, ""),
        started_at=group.started_at,
        queued_at=group.queued_at,
        answered_at=group.answered_at,
        answered_by=group.answered_by,
        seat_channel=group.answered_channel,
        ring_attempts=tuple(a.public() for a in group.attempts),
        channels=tuple(c.name for c in group.channels.values()),
        spied_by=tuple(group.spies),
        variables=tuple(group.vars.items()),
    )


def caller_chan(group: Group) -> Chan | None:
    caller = group.channels.get(group.caller_uid) if group.caller_uid else None
    if caller is None:
        caller = next((c for c in group.channels.values() if c.seat is None), None)
    return caller


def call_record(group: Group, ended_at: float, lost: bool) -> CallRecord:
    outcome = _outcome(group, lost)
    talk_s: float | None = None
    ended_by: EndedBy = "unknown"
    talk_end = ended_at
    if group.answered_at is not None:
        talk_end = group.talk_end_at or group.answered_leg_gone or ended_at
        talk_s = max(0.0, talk_end - group.answered_at)
        if group.cap_deadline is not None and talk_end >= group.cap_deadline - TALK_CAP_SLACK_S:
            ended_by = "talk_cap"
        else:
            ended_by = _ENDED_BY.get(group.complete_reason, "unknown")
    return CallRecord(
        call_id=group.call_id,
        caller_num=group.caller_num,
        caller_name=group.caller_name,
        queue=group.queue,
        ivr_choice=group.vars.get(IVR_VAR, ""),
        started_at=group.started_at,
        queued_at=group.queued_at,
        answered_at=group.answered_at,
        answered_by=group.answered_by,
        ended_at=ended_at,
        outcome=outcome,
        ring_attempts=tuple(a.public(min(talk_end, ended_at)) for a in group.attempts),
        talk_s=talk_s,
        hold_s=group.hold_s,
        ended_by=ended_by,
        transferred=group.transferred,
        variables=tuple(group.vars.items()),
        category=group.vars.get(CATEGORY_VAR, ""),
        transferred_to=group.transferred_to,
        answer_source=group.answer_source,
    )


_ENDED_BY: dict[str, EndedBy] = {"caller": "caller", "agent": "agent", "transfer": "transfer"}
"""AgentComplete's Reason → who ended the conversation."""


def _outcome(group: Group, lost: bool) -> CallOutcome:
    if group.answered_at is not None:
        return "answered"
    route = group.vars.get(ROUTE_VAR, "")
    if route == ROUTE_CALLBACK or group.vars.get(IVR_VAR, "") == IVR_CALLBACK:
        return "callback_requested"
    if group.vars.get(IVR_VAR, "") == IVR_CLOSED:
        return "closed_hours"
    if group.abandoned:
        return "abandoned_in_queue"
    if group.left_unanswered:
        return "unanswered_timeout"
    if lost:
        return "lost_during_resync"
    if group.queued_at is not None:
        return "abandoned_in_queue"
    return "abandoned_in_ivr"
