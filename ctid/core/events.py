"""The typed, frozen events ctid acts on: what the PBX reported (made by `asterisk.translate`) and
the few facts ctid adds (`RingingLegCut`, `TalkCapApplied`); no AMI header name gets past the
adapter."""

# Every event's `at` is on one clock, the events' clock: PBX epoch seconds. `translate` stamps it
# from the AMI `Timestamp:` header, or with the receive time on that same clock when a frame has
# none (resync list items never do). Loop time never appears in an event; it stays inside timers.

from __future__ import annotations

from typing import Literal, TypeAlias

from ctid.core.ids import Channel, QueueName, UniqueId
from ctid.core.records import record

CALLER_TEXT_MAX = 128
"""Caller-supplied text (caller ID name/number) is cut to this many characters."""


def clean_caller_text(value: str, limit: int = CALLER_TEXT_MAX) -> str:
    """Untrusted text from a caller, made safe to keep: control and format characters removed
    (including the bidi overrides that would let a caller ID spoof what an agent reads), line
    breaks and odd blanks made plain spaces, ends stripped, at most `limit` characters. Never interpreted, never escaped here
    (escaping is the job of whatever renders it). Asterisk's `<unknown>` placeholder becomes ""."""
    if len(value) <= limit and value.isprintable():
        # The fast path: nearly every caller ID is short and clean.
        return "" if value == "<unknown>" else value.strip()
    # Look at a bounded prefix only, so a 10 KB name costs no more than a short one.
    kept = "".join(
        ch if ch.isprintable() else (" " if ch.isspace() else "") for ch in value[: limit * 4]
    )
    kept = " ".join(kept.split())
    return "" if kept == "<unknown>" else kept[:limit].strip()


@record(kw_only=True)
class BaseEvent:
    """Common to all events: when it happened (see the module docstring for the clock)."""

    at: float


@record(kw_only=True)
class ChannelEvent(BaseEvent):
    """An event about one channel, with Asterisk's correlation ids."""

    channel: Channel
    uniqueid: UniqueId
    linkedid: UniqueId


# --------------------------------------------------------------------------- channel lifecycle


@record(kw_only=True)
class ChannelCreated(ChannelEvent):
    """`Newchannel`. `state` is Asterisk's numeric ChannelState (4 Ring, 5 Ringing, 6 Up)."""

    state: int
    caller_num: str
    caller_name: str
    context: str
    exten: str


@record(kw_only=True)
class ChannelStateChanged(ChannelEvent):
    """`Newstate`: the channel's numeric state changed (6 = Up = answered)."""

    state: int


@record(kw_only=True)
class ChannelHungUp(ChannelEvent):
    """`Hangup`: the channel is gone. `cause` is the Q.850 cause (16 normal, 19 no answer, 0 none)."""

    cause: int
    cause_txt: str


@record(kw_only=True)
class ChannelVariableSet(ChannelEvent):
    """`VarSet` of a `CTID_*` variable (every other variable is ignored at the edge). Carries the
    channel's caller ID at that moment, which is how a call first learns who is calling."""

    name: str
    value: str
    caller_num: str
    caller_name: str


@record(kw_only=True)
class DialEnded(ChannelEvent):
    """`DialEnd` of a dial from `channel` to `dest_channel`; `status` is ANSWER, NOANSWER, CANCEL,
    BUSY... The queue's own events say more; ANSWER here marks a seat leg as being answered."""

    dest_channel: Channel
    dest_uniqueid: UniqueId
    status: str


@record(kw_only=True)
class BridgeEntered(ChannelEvent):
    """`BridgeEnter`: the channel joined bridge `bridge_id` (talking to whoever else is in it)."""

    bridge_id: str


@record(kw_only=True)
class BridgeLeft(ChannelEvent):
    """`BridgeLeave`."""

    bridge_id: str


# --------------------------------------------------------------------------- the queue, caller side


@record(kw_only=True)
class CallerJoinedQueue(ChannelEvent):
    """`QueueCallerJoin`: `channel` is the caller's channel as the queue sees it."""

    queue: QueueName
    position: int
    count: int
    caller_num: str
    caller_name: str


@record(kw_only=True)
class CallerLeftQueue(ChannelEvent):
    """`QueueCallerLeave`: the caller left the queue (answered, abandoned, or timed out)."""

    queue: QueueName
    position: int
    count: int


@record(kw_only=True)
class CallerAbandoned(ChannelEvent):
    """`QueueCallerAbandon`: the caller hung up while waiting in the queue."""

    queue: QueueName
    position: int
    original_position: int
    hold_time_s: float


# --------------------------------------------------------------------------- the queue, seat side


@record(kw_only=True)
class AgentEvent(ChannelEvent):
    """A queue event about one member and one caller. `channel` is the caller's channel and
    `dest_channel` the seat leg; either may be "" when Asterisk had already torn it down (it then
    leaves the headers out, as `AgentComplete` does after the caller hangs up first)."""

    dest_channel: Channel
    dest_uniqueid: UniqueId
    queue: QueueName
    interface: str
    member_name: str


@record(kw_only=True)
class AgentRang(AgentEvent):
    """`AgentCalled`: the queue started ringing a member; `dest_channel` is the seat leg."""


@record(kw_only=True)
class AgentRingUnanswered(AgentEvent):
    """`AgentRingNoAnswer`: the member did not answer (queue timeout, or the leg was cut)."""

    ring_time_s: float


@record(kw_only=True)
class AgentConnected(AgentEvent):
    """`AgentConnect`: the member answered and is bridged to the caller."""

    hold_time_s: float
    ring_time_s: float


@record(kw_only=True)
class AgentCompleted(AgentEvent):
    """`AgentComplete`: a queue call ended; `reason` is who hung up (caller, agent, transfer)."""

    hold_time_s: float
    talk_time_s: float
    reason: str


@record(kw_only=True)
class AgentDumped(AgentEvent):
    """`AgentDump`: the member hung up on the caller before being connected."""


# --------------------------------------------------------------------------- queue members


@record(kw_only=True)
class MemberEvent(BaseEvent):
    """An event about one queue member (`interface` as configured in the queue)."""

    queue: QueueName
    interface: str
    member_name: str


@record(kw_only=True)
class QueueMemberStatusChanged(MemberEvent):
    """`QueueMemberStatus`. `status` is Asterisk's device state number (1 not in use, 2 in use,
    3 busy, 4 invalid, 5 unavailable, 6 ringing, 7 ringinuse, 8 on hold, 0 unknown)."""

    status: int
    paused: bool
    paused_reason: str
    in_call: bool


@record(kw_only=True)
class QueueMemberPaused(MemberEvent):
    """`QueueMemberPause`: paused or unpaused (`paused`), with the reason given."""

    paused: bool
    reason: str


@record(kw_only=True)
class QueueMemberAdded(MemberEvent):
    """`QueueMemberAdded`."""

    status: int
    paused: bool
    paused_reason: str
    penalty: int


@record(kw_only=True)
class QueueMemberRemoved(MemberEvent):
    """`QueueMemberRemoved`."""


# --------------------------------------------------------------------------- other call events


@record(kw_only=True)
class SpyEvent(BaseEvent):
    """ChanSpy on a seat: `spyer_*` is the supervisor's channel, `spyee_*` the channel listened to."""

    spyer_channel: Channel
    spyer_uniqueid: UniqueId
    spyee_channel: Channel
    spyee_uniqueid: UniqueId
    spyee_linkedid: UniqueId


@record(kw_only=True)
class SpyStarted(SpyEvent):
    """`ChanSpyStart`."""


@record(kw_only=True)
class SpyStopped(SpyEvent):
    """`ChanSpyStop`."""


@record(kw_only=True)
class OriginateResponded(BaseEvent):
    """`OriginateResponse` of an async Originate: `response` Success/Failure, `reason` the numeric
    outcome (4 answered, 5 busy, 3 no answer, 8 congestion, 0 failed)."""

    action_id: str
    response: str
    channel: Channel
    uniqueid: UniqueId
    reason: int


@record(kw_only=True)
class Transferred(BaseEvent):
    """`BlindTransfer` or `AttendedTransfer`. For a blind transfer `exten@context` is where the
    transferee was sent and the target fields are empty; for an attended one the target is the
    channel the transferee ends up with (`TransferTarget*`, else the second transferer)."""

    kind: Literal["blind", "attended"]
    result: str
    transferer_channel: Channel
    transferer_uniqueid: UniqueId
    transferer_linkedid: UniqueId
    transferee_channel: Channel
    transferee_uniqueid: UniqueId
    transferee_linkedid: UniqueId
    target_channel: Channel
    target_uniqueid: UniqueId
    target_linkedid: UniqueId
    context: str
    exten: str


# --------------------------------------------------------------------------- resync snapshots


@record(kw_only=True)
class ChannelSnapshot(ChannelEvent):
    """One `CoreShowChannel` item. `duration_s` is how long the channel has existed; `bridge_id`
    is "" when not bridged; `application` is what the channel runs (Queue, AppQueue, AGI...)."""

    state: int
    application: str
    application_data: str
    duration_s: float
    bridge_id: str
    caller_num: str
    caller_name: str
    context: str
    exten: str


@record(kw_only=True)
class QueueMemberSnapshot(MemberEvent):
    """One `QueueMember` item of a `QueueStatus` list (`interface` comes from `Location`)."""

    status: int
    paused: bool
    paused_reason: str
    in_call: bool
    penalty: int


@record(kw_only=True)
class QueueParamsSnapshot(BaseEvent):
    """One `QueueParams` item of a `QueueStatus` list: the queue's counters."""

    queue: QueueName
    calls: int
    hold_time_s: float
    talk_time_s: float
    completed: int
    abandoned: int


@record(kw_only=True)
class QueueEntrySnapshot(BaseEvent):
    """One `QueueEntry` item of a `QueueStatus` list: a caller waiting (`wait_s` so far)."""

    queue: QueueName
    position: int
    channel: Channel
    uniqueid: UniqueId
    caller_num: str
    caller_name: str
    wait_s: float


@record(kw_only=True)
class QueueSummarySnapshot(BaseEvent):
    """One `QueueSummary` item."""

    queue: QueueName
    logged_in: int
    available: int
    callers: int
    hold_time_s: float
    talk_time_s: float
    longest_hold_s: float


# --------------------------------------------------------------------------- facts ctid adds


@record(kw_only=True)
class RingingLegCut(BaseEvent):
    """ctid hangs up a ringing seat leg itself (the ring deadline passed). Published by the call
    service before the `Hangup` action is sent, so the ring attempt ends as `cut` (a Hangup that
    finds the leg gone already is logged; the queue's own end then wins). `at` must be on the
    events' clock (`CallTracker.last_at`)."""

    channel: Channel


@record(kw_only=True)
class TalkCapApplied(BaseEvent):
    """ctid set `AbsoluteTimeout` on a call's channel (the talk-time cap). If the call then ends at
    or after `at + timeout_s`, its record says it was ended by the cap. `at` as for `RingingLegCut`."""

    channel: Channel
    timeout_s: float


Event: TypeAlias = (
    ChannelCreated
    | ChannelStateChanged
    | ChannelHungUp
    | ChannelVariableSet
    | DialEnded
    | BridgeEntered
    | BridgeLeft
    | CallerJoinedQueue
    | CallerLeftQueue
    | CallerAbandoned
    | AgentRang
    | AgentRingUnanswered
    | AgentConnected
    | AgentCompleted
    | AgentDumped
    | QueueMemberStatusChanged
    | QueueMemberPaused
    | QueueMemberAdded
    | QueueMemberRemoved
    | SpyStarted
    | SpyStopped
    | OriginateResponded
    | Transferred
    | ChannelSnapshot
    | QueueMemberSnapshot
    | QueueParamsSnapshot
    | QueueEntrySnapshot
    | QueueSummarySnapshot
    | RingingLegCut
    | TalkCapApplied
)
"""Every event ctid handles; `match` on it with `assert_never` for exhaustiveness."""
