"""AMI frame → typed event: the table of the events ctid translates, the headers each reads, and
their handlers (list items in `translate_lists`). A malformed frame is skipped, never raised."""

from __future__ import annotations

from collections.abc import Callable

from ctid.asterisk.ami_protocol import EventFilter
from ctid.asterisk.ami_values import (
    VALUE_MAX,
    Headers,
    agent_ids,
    caller_text,
    channel_ids,
    read_at,
    read_flag,
    read_float,
    read_int,
    skip,
)
from ctid.asterisk.frame import Frame, HeaderKeys, header_keys
from ctid.asterisk.translate_lists import (
    core_show_channel,
    queue_entry,
    queue_member,
    queue_params,
    queue_summary,
)
from ctid.core.events import (
    AgentCompleted,
    AgentConnected,
    AgentDumped,
    AgentRang,
    AgentRingUnanswered,
    BridgeEntered,
    BridgeLeft,
    CallerAbandoned,
    CallerJoinedQueue,
    CallerLeftQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelStateChanged,
    ChannelVariableSet,
    DialEnded,
    Event,
    OriginateResponded,
    QueueMemberAdded,
    QueueMemberPaused,
    QueueMemberRemoved,
    QueueMemberStatusChanged,
    SpyStarted,
    SpyStopped,
    Transferred,
    clean_caller_text,
)
from ctid.core.ids import Channel, QueueName, UniqueId

CTID_VARIABLE_PREFIX = "CTID_"
"""Only channel variables with this prefix become events; ctid's dialplan and AGI set them."""


def _newchannel(f: Headers, at: float) -> Event | None:
    ids = channel_ids(f)
    if ids is None:
        return None
    return ChannelCreated(
        at=at,
        **ids,
        state=read_int(f.get("ChannelState")),
        caller_num=caller_text(f.get("CallerIDNum")),
        caller_name=caller_text(f.get("CallerIDName")),
        context=f.get("Context", ""),
        exten=f.get("Exten", ""),
    )


def _newstate(f: Headers, at: float) -> Event | None:
    ids = channel_ids(f)
    if ids is None:
        return None
    return ChannelStateChanged(
        at=at,
        **ids,
        state=read_int(f.get("ChannelState")),
    )


def _hangup(f: Headers, at: float) -> Event | None:
    ids = channel_ids(f)
    if ids is None:
        return None
    return ChannelHungUp(
        at=at,
        **ids,
        cause=read_int(f.get("Cause")),
        cause_txt=f.get("Cause-txt", ""),
    )


def _varset(f: Headers, at: float) -> Event | None:
    name = f.get("Variable", "")
    if not name.startswith(CTID_VARIABLE_PREFIX):
        return None  # the overwhelming majority of VarSet frames
    ids = channel_ids(f)
    if ids is None:
        return None
    return ChannelVariableSet(
        at=at,
        **ids,
        name=name[:64],
        value=clean_caller_text(f.get("Value", ""), VALUE_MAX),
        caller_num=caller_text(f.get("CallerIDNum")),
        caller_name=caller_text(f.get("CallerIDName")),
    )


def _dialend(f: Headers, at: float) -> Event | None:
    uid = f.get("Uniqueid")
    dest_uid = f.get("DestUniqueid")
    if not uid or not dest_uid:
        # Originate's own dial has no caller side; ctid only cares about dials from a channel.
        return None
    return DialEnded(
        at=at,
        channel=Channel(f.get("Channel", "")),
        uniqueid=UniqueId(uid),
        linkedid=UniqueId(f.get("Linkedid") or uid),
        dest_channel=Channel(f.get("DestChannel", "")),
        dest_uniqueid=UniqueId(dest_uid),
        status=f.get("DialStatus", ""),
    )


def _bridge_enter(f: Headers, at: float) -> Event | None:
    ids = channel_ids(f)
    if ids is None:
        return None
    return BridgeEntered(
        at=at,
        **ids,
        bridge_id=f.get("BridgeUniqueid", ""),
    )


def _bridge_leave(f: Headers, at: float) -> Event | None:
    ids = channel_ids(f)
    if ids is None:
        return None
    return BridgeLeft(
        at=at,
        **ids,
        bridge_id=f.get("BridgeUniqueid", ""),
    )


# --------------------------------------------------------------------------- queue, caller side


def _caller_join(f: Headers, at: float) -> Event | None:
    ids = channel_ids(f)
    if ids is None:
        return None
    return CallerJoinedQueue(
        at=at,
        **ids,
        queue=QueueName(f.get("Queue", "")),
        position=read_int(f.get("Position")),
        count=read_int(f.get("Count")),
        caller_num=caller_text(f.get("CallerIDNum")),
        caller_name=caller_text(f.get("CallerIDName")),
    )


def _caller_leave(f: Headers, at: float) -> Event | None:
    ids = channel_ids(f)
    if ids is None:
        return None
    return CallerLeftQueue(
        at=at,
        **ids,
        queue=QueueName(f.get("Queue", "")),
        position=read_int(f.get("Position")),
        count=read_int(f.get("Count")),
    )


def _caller_abandon(f: Headers, at: float) -> Event | None:
    ids = channel_ids(f)
    if ids is None:
        return None
    return CallerAbandoned(
        at=at,
        **ids,
        queue=QueueName(f.get("Queue", "")),
        position=read_int(f.get("Position")),
        original_position=read_int(f.get("OriginalPosition")),
        hold_time_s=read_float(f.get("HoldTime")),
    )


# --------------------------------------------------------------------------- queue, seat side


def _agent_called(f: Headers, at: float) -> Event | None:
    ids = agent_ids(f)
    if ids is None or not ids[0] or not ids[1]:
        skip(f, "AgentCalled without both channels")
        return None
    return AgentRang(
        at=at,
        channel=Channel(f.get("Channel", "")),
        uniqueid=UniqueId(ids[0]),
        linkedid=UniqueId(ids[2]),
        dest_channel=Channel(f.get("DestChannel", "")),
        dest_uniqueid=UniqueId(ids[1]),
        queue=QueueName(f.get("Queue", "")),
        interface=f.get("Interface", ""),
        member_name=f.get("MemberName", ""),
    )


def _agent_rna(f: Headers, at: float) -> Event | None:
    ids = agent_ids(f)
    if ids is None:
        skip(f, "no Uniqueid")
        return None
    return AgentRingUnanswered(
        at=at,
        channel=Channel(f.get("Channel", "")),
        uniqueid=UniqueId(ids[0]),
        linkedid=UniqueId(ids[2]),
        dest_channel=Channel(f.get("DestChannel", "")),
        dest_uniqueid=UniqueId(ids[1]),
        queue=QueueName(f.get("Queue", "")),
        interface=f.get("Interface", ""),
        member_name=f.get("MemberName", ""),
        # AgentRingNoAnswer's RingTime is in milliseconds (AgentConnect's is in seconds).
        ring_time_s=read_int(f.get("RingTime")) / 1000.0,
    )


def _agent_connect(f: Headers, at: float) -> Event | None:
    ids = agent_ids(f)
    if ids is None:
        skip(f, "no Uniqueid")
        return None
    return AgentConnected(
        at=at,
        channel=Channel(f.get("Channel", "")),
        uniqueid=UniqueId(ids[0]),
        linkedid=UniqueId(ids[2]),
        dest_channel=Channel(f.get("DestChannel", "")),
        dest_uniqueid=UniqueId(ids[1]),
        queue=QueueName(f.get("Queue", "")),
        interface=f.get("Interface", ""),
        member_name=f.get("MemberName", ""),
        hold_time_s=read_float(f.get("HoldTime")),
        ring_time_s=read_float(f.get("RingTime")),
    )


def _agent_complete(f: Headers, at: float) -> Event | None:
    ids = agent_ids(f)
    if ids is None:
        skip(f, "no Uniqueid")
        return None
    return AgentCompleted(
        at=at,
        channel=Channel(f.get("Channel", "")),
        uniqueid=UniqueId(ids[0]),
        linkedid=UniqueId(ids[2]),
        dest_channel=Channel(f.get("DestChannel", "")),
        dest_uniqueid=UniqueId(ids[1]),
        queue=QueueName(f.get("Queue", "")),
        interface=f.get("Interface", ""),
        member_name=f.get("MemberName", ""),
        hold_time_s=read_float(f.get("HoldTime")),
        talk_time_s=read_float(f.get("TalkTime")),
        reason=f.get("Reason", ""),
    )


def _agent_dump(f: Headers, at: float) -> Event | None:
    ids = agent_ids(f)
    if ids is None:
        skip(f, "no Uniqueid")
        return None
    return AgentDumped(
        at=at,
        channel=Channel(f.get("Channel", "")),
        uniqueid=UniqueId(ids[0]),
        linkedid=UniqueId(ids[2]),
        dest_channel=Channel(f.get("DestChannel", "")),
        dest_uniqueid=UniqueId(ids[1]),
        queue=QueueName(f.get("Queue", "")),
        interface=f.get("Interface", ""),
        member_name=f.get("MemberName", ""),
    )


# --------------------------------------------------------------------------- queue members


def _member_status(f: Headers, at: float) -> Event | None:
    interface = f.get("Interface")
    if not interface:
        skip(f, "no Interface")
        return None
    return QueueMemberStatusChanged(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        interface=interface,
        member_name=f.get("MemberName", ""),
        status=read_int(f.get("Status")),
        paused=read_flag(f.get("Paused")),
        paused_reason=f.get("PausedReason", ""),
        in_call=read_flag(f.get("InCall")),
    )


def _member_pause(f: Headers, at: float) -> Event | None:
    interface = f.get("Interface")
    if not interface:
        skip(f, "no Interface")
        return None
    return QueueMemberPaused(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        interface=interface,
        member_name=f.get("MemberName", ""),
        paused=read_flag(f.get("Paused")),
        # Asterisk ≥ 13 says PausedReason; older releases said Reason.
        reason=f.get("PausedReason") or f.get("Reason", ""),
    )


def _member_added(f: Headers, at: float) -> Event | None:
    interface = f.get("Interface")
    if not interface:
        skip(f, "no Interface")
        return None
    return QueueMemberAdded(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        interface=interface,
        member_name=f.get("MemberName", ""),
        status=read_int(f.get("Status")),
        paused=read_flag(f.get("Paused")),
        paused_reason=f.get("PausedReason", ""),
        penalty=read_int(f.get("Penalty")),
    )


def _member_removed(f: Headers, at: float) -> Event | None:
    interface = f.get("Interface")
    if not interface:
        skip(f, "no Interface")
        return None
    return QueueMemberRemoved(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        interface=interface,
        member_name=f.get("MemberName", ""),
    )


# --------------------------------------------------------------------------- spy, originate, transfer


def _spy(f: Headers, at: float, started: bool) -> Event | None:
    spyee = f.get("SpyeeChannel")
    if not spyee:
        skip(f, "no SpyeeChannel")
        return None
    cls = SpyStarted if started else SpyStopped
    return cls(
        at=at,
        spyer_channel=Channel(f.get("SpyerChannel", "")),
        spyer_uniqueid=UniqueId(f.get("SpyerUniqueid", "")),
        spyee_channel=Channel(spyee),
        spyee_uniqueid=UniqueId(f.get("SpyeeUniqueid", "")),
        spyee_linkedid=UniqueId(f.get("SpyeeLinkedid", "")),
    )


def _spy_start(f: Headers, at: float) -> Event | None:
    return _spy(f, at, True)


def _spy_stop(f: Headers, at: float) -> Event | None:
    return _spy(f, at, False)


def _originate_response(f: Headers, at: float) -> Event | None:
    return OriginateResponded(
        at=at,
        action_id=f.get("ActionID", ""),
        response=f.get("Response", ""),
        channel=Channel(f.get("Channel", "")),
        uniqueid=UniqueId(f.get("Uniqueid", "")),
        reason=read_int(f.get("Reason")),
    )


def _blind_transfer(f: Headers, at: float) -> Event | None:
    return Transferred(
        at=at,
        kind="blind",
        result=f.get("Result", ""),
        transferer_channel=Channel(f.get("TransfererChannel", "")),
        transferer_uniqueid=UniqueId(f.get("TransfererUniqueid", "")),
        transferer_linkedid=UniqueId(f.get("TransfererLinkedid", "")),
        transferee_channel=Channel(f.get("TransfereeChannel", "")),
        transferee_uniqueid=UniqueId(f.get("TransfereeUniqueid", "")),
        transferee_linkedid=UniqueId(f.get("TransfereeLinkedid", "")),
        target_channel=Channel(""),
        target_uniqueid=UniqueId(""),
        target_linkedid=UniqueId(""),
        context=f.get("Context", ""),
        exten=f.get("Extension", ""),
    )


def _attended_transfer(f: Headers, at: float) -> Event | None:
    # The party the transferee ends up talking to: TransferTarget* when Asterisk names it, else
    # the second transferer's channel (the leg the agent used to consult).
    target = f.get("TransferTargetChannel")
    if target:
        target_uid = f.get("TransferTargetUniqueid", "")
        target_lid = f.get("TransferTargetLinkedid", "")
    else:
        target = f.get("SecondTransfererChannel", "")
        target_uid = f.get("SecondTransfererUniqueid", "")
        target_lid = f.get("SecondTransfererLinkedid", "")
    return Transferred(
        at=at,
        kind="attended",
        result=f.get("Result", ""),
        transferer_channel=Channel(f.get("OrigTransfererChannel", "")),
        transferer_uniqueid=UniqueId(f.get("OrigTransfererUniqueid", "")),
        transferer_linkedid=UniqueId(f.get("OrigTransfererLinkedid", "")),
        transferee_channel=Channel(f.get("TransfereeChannel", "")),
        transferee_uniqueid=UniqueId(f.get("TransfereeUniqueid", "")),
        transferee_linkedid=UniqueId(f.get("TransfereeLinkedid", "")),
        target_channel=Channel(target),
        target_uniqueid=UniqueId(target_uid),
        target_linkedid=UniqueId(target_lid),
        context="",
        exten="",
    )


Handler = Callable[[Headers, float], Event | None]

_CHANNEL = ("Uniqueid", "Channel", "Linkedid")
_CALLER_ID = ("CallerIDNum", "CallerIDName")
_AGENT = (
    "Uniqueid",
    "DestUniqueid",
    "Linkedid",
    "DestLinkedid",
    "Channel",
    "DestChannel",
    "Queue",
    "Interface",
    "MemberName",
)
_MEMBER = ("Interface", "Queue", "MemberName")
_BLIND = ("Result", "Context", "Extension")
_TRANSFER_PARTIES = ("TransfererChannel", "TransfererUniqueid", "TransfererLinkedid")
_TRANSFEREE = ("TransfereeChannel", "TransfereeUniqueid", "TransfereeLinkedid")
_ATTENDED = (
    "Result",
    "OrigTransfererChannel",
    "OrigTransfererUniqueid",
    "OrigTransfererLinkedid",
    "TransferTargetChannel",
    "TransferTargetUniqueid",
    "TransferTargetLinkedid",
    "SecondTransfererChannel",
    "SecondTransfererUniqueid",
    "SecondTransfererLinkedid",
)
_SPY = ("SpyeeChannel", "SpyerChannel", "SpyerUniqueid", "SpyeeUniqueid", "SpyeeLinkedid")

_TABLE: tuple[tuple[str, Handler, tuple[str, ...]], ...] = (
    # (AMI event, handler, every header the handler reads besides Event and Timestamp): the
    # reader finds just those in the frame's text (`Frame.pick`); tests/test_translate.py checks
    # each handler reads nothing else.
    ("Newchannel", _newchannel, (*_CHANNEL, "ChannelState", *_CALLER_ID, "Context", "Exten")),
    ("Newstate", _newstate, (*_CHANNEL, "ChannelState")),
    ("Hangup", _hangup, (*_CHANNEL, "Cause", "Cause-txt")),
    ("VarSet", _varset, ("Variable", *_CHANNEL, "Value", *_CALLER_ID)),
    (
        "DialEnd",
        _dialend,
        ("Uniqueid", "DestUniqueid", "DialStatus", "Channel", "DestChannel", "Linkedid"),
    ),
    ("BridgeEnter", _bridge_enter, (*_CHANNEL, "BridgeUniqueid")),
    ("BridgeLeave", _bridge_leave, (*_CHANNEL, "BridgeUniqueid")),
    ("QueueCallerJoin", _caller_join, (*_CHANNEL, "Queue", "Position", "Count", *_CALLER_ID)),
    ("QueueCallerLeave", _caller_leave, (*_CHANNEL, "Queue", "Position", "Count")),
    (
        "QueueCallerAbandon",
        _caller_abandon,
        (*_CHANNEL, "Queue", "Position", "OriginalPosition", "HoldTime"),
    ),
    ("AgentCalled", _agent_called, _AGENT),
    ("AgentRingNoAnswer", _agent_rna, (*_AGENT, "RingTime")),
    ("AgentConnect", _agent_connect, (*_AGENT, "HoldTime", "RingTime")),
    ("AgentComplete", _agent_complete, (*_AGENT, "HoldTime", "TalkTime", "Reason")),
    ("AgentDump", _agent_dump, _AGENT),
    ("QueueMemberStatus", _member_status, (*_MEMBER, "Status", "Paused", "PausedReason", "InCall")),
    ("QueueMemberPause", _member_pause, (*_MEMBER, "Paused", "PausedReason", "Reason")),
    ("QueueMemberPaused", _member_pause, (*_MEMBER, "Paused", "PausedReason", "Reason")),  # < 13
    ("QueueMemberAdded", _member_added, (*_MEMBER, "Status", "Paused", "PausedReason", "Penalty")),
    ("QueueMemberRemoved", _member_removed, _MEMBER),
    ("ChanSpyStart", _spy_start, _SPY),
    ("ChanSpyStop", _spy_stop, _SPY),
    (
        "OriginateResponse",
        _originate_response,
        ("ActionID", "Response", "Channel", "Uniqueid", "Reason"),
    ),
    ("BlindTransfer", _blind_transfer, (*_BLIND, *_TRANSFER_PARTIES, *_TRANSFEREE)),
    ("AttendedTransfer", _attended_transfer, (*_ATTENDED, *_TRANSFEREE)),
    (
        "CoreShowChannel",
        core_show_channel,
        (
            *_CHANNEL,
            "ChannelState",
            "Application",
            "ApplicationData",
            "Duration",
            "BridgeId",
            *_CALLER_ID,
            "Context",
            "Exten",
        ),
    ),
    (
        "QueueMember",
        queue_member,
        (*_MEMBER, "Location", "Name", "Status", "Paused", "PausedReason", "InCall", "Penalty"),
    ),
    (
        "QueueParams",
        queue_params,
        ("Queue", "Calls", "Holdtime", "TalkTime", "Completed", "Abandoned"),
    ),
    ("QueueEntry", queue_entry, ("Uniqueid", "Queue", "Position", "Channel", *_CALLER_ID, "Wait")),
    (
        "QueueSummary",
        queue_summary,
        ("Queue", "LoggedIn", "Available", "Callers", "HoldTime", "TalkTime", "LongestHoldTime"),
    ),
)

_HANDLERS: dict[str, tuple[Handler, HeaderKeys]] = {
    name: (handler, header_keys(("Timestamp", *reads))) for name, handler, reads in _TABLE
}

READS: dict[str, frozenset[str]] = {
    name: frozenset(("Event", "Timestamp", *reads)) for name, _, reads in _TABLE
}
"""Every AMI header `translate` reads, by event."""

TRANSLATED_EVENTS: frozenset[str] = frozenset(_HANDLERS)
"""The AMI `Event:` names that can become a ctid event; every other event is ignored."""

EVENT_FILTER: EventFilter = {name: "" for name in _HANDLERS} | {
    # Only `CTID_*` variables become events (`_varset`): a frame that does not mention the prefix
    # anywhere cannot hold one (in either of the two `Variable` forms `parse_lines` reads), so it
    # is dropped before it is built — most VarSets. One needle, not one per form: the frames it
    # lets through by a mention elsewhere are judged by `translate`.
    "VarSet": CTID_VARIABLE_PREFIX,
}
"""What the AMI reader builds for `translate` (`AmiProtocol(events=...)`): the translated names,
and for VarSet only the frames that can hold a ctid variable."""

READ_HEADERS: frozenset[str] = frozenset().union(*READS.values())
"""Every AMI header `translate` reads (the simulator's conformance test compares these)."""


def translate(frame: Frame, received_at: float) -> Event | None:
    """The ctid event for one AMI frame, or None for frames ctid ignores (and malformed ones).

    `received_at` (when the frame arrived, on the events' clock: epoch seconds) becomes the
    event's `at` only when the frame has no usable `Timestamp` header.
    """
    name = frame.event
    if name is None:
        return None
    entry = _HANDLERS.get(name)
    if entry is None:
        return None
    if name == "VarSet" and not frame.get("Variable", "").startswith(CTID_VARIABLE_PREFIX):
        return None  # when the reader did not filter (an action in flight): skip it cheaply
    handler, keys = entry
    headers = frame.pick(keys)
    return handler(headers, read_at(headers, received_at))
