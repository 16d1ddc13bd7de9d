"""AMI frame → typed event: the one module that knows AMI event and header names.

Pure and fast (a dict dispatch on the `Event` header, no regexes): most frames on a busy PBX are
noise (`Newexten`, `VarSet`, `DeviceStateChange`...) and must cost one dict lookup. A malformed
frame never raises: it is skipped (debug log) or its bad numbers read as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import structlog

from ctid.asterisk.ami_protocol import EventFilter
from ctid.asterisk.frame import Frame, HeaderKeys, header_keys
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
    ChannelSnapshot,
    ChannelStateChanged,
    ChannelVariableSet,
    DialEnded,
    Event,
    OriginateResponded,
    QueueEntrySnapshot,
    QueueMemberAdded,
    QueueMemberPaused,
    QueueMemberRemoved,
    QueueMemberSnapshot,
    QueueMemberStatusChanged,
    QueueParamsSnapshot,
    QueueSummarySnapshot,
    SpyStarted,
    SpyStopped,
    Transferred,
    clean_caller_text,
)
from ctid.core.ids import Channel, QueueName, UniqueId

log = structlog.get_logger(__name__)

Headers = dict[str, str]
"""A handled frame's headers, split once (`Frame.headers`): the handlers read them with plain
`dict.get`, far cheaper per header than a `Frame` method call."""

CTID_VARIABLE_PREFIX = "CTID_"
"""Only channel variables with this prefix become events; ctid's dialplan and AGI set them."""

_VALUE_MAX = 256
"""Longest `CTID_*` value kept (they are short routing words; anything longer is not ours)."""


# --------------------------------------------------------------------------- header readers


def _at(f: Headers, received_at: float) -> float:
    # Timestamp is epoch seconds with microseconds ("1795358660.825488") when the PBX has
    # `timestampevents = yes`; list items of action responses never carry one.
    ts = f.get("Timestamp")
    if ts:
        try:
            return float(ts)
        except ValueError:
            pass
    return received_at


def _int(value: str | None) -> int:
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def _float(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        return 0.0


def _flag(value: str | None) -> bool:
    # Paused/InCall are "0"/"1"; some versions and actions say "true"/"yes".
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def _hms(value: str | None) -> float:
    """`Duration: 00:01:05` (hours may exceed 99) → seconds."""
    if not value:
        return 0.0
    total = 0
    for part in value.split(":"):
        if not part.isdigit():
            return 0.0
        total = total * 60 + int(part)
    return float(total)


def _caller(value: str | None) -> str:
    return clean_caller_text(value) if value else ""


def _skip(f: Headers, why: str) -> None:
    log.debug("ami_frame_skipped", ami_event=f.get("Event"), why=why)


# --------------------------------------------------------------------------- channel events


class _ChannelIds(TypedDict):
    channel: Channel
    uniqueid: UniqueId
    linkedid: UniqueId


def _channel_ids(f: Headers) -> _ChannelIds | None:
    """The channel and its correlation ids, which every channel event needs (skipped without a
    Uniqueid; a missing Linkedid is the channel's own)."""
    uid = f.get("Uniqueid")
    if not uid:
        _skip(f, "no Uniqueid")
        return None
    return {
        "channel": Channel(f.get("Channel", "")),
        "uniqueid": UniqueId(uid),
        "linkedid": UniqueId(f.get("Linkedid") or uid),
    }


def _newchannel(f: Headers, at: float) -> Event | None:
    ids = _channel_ids(f)
    if ids is None:
        return None
    return ChannelCreated(
        at=at,
        **ids,
        state=_int(f.get("ChannelState")),
        caller_num=_caller(f.get("CallerIDNum")),
        caller_name=_caller(f.get("CallerIDName")),
        context=f.get("Context", ""),
        exten=f.get("Exten", ""),
    )


def _newstate(f: Headers, at: float) -> Event | None:
    ids = _channel_ids(f)
    if ids is None:
        return None
    return ChannelStateChanged(
        at=at,
        **ids,
        state=_int(f.get("ChannelState")),
    )


def _hangup(f: Headers, at: float) -> Event | None:
    ids = _channel_ids(f)
    if ids is None:
        return None
    return ChannelHungUp(
        at=at,
        **ids,
        cause=_int(f.get("Cause")),
        cause_txt=f.get("Cause-txt", ""),
    )


def _varset(f: Headers, at: float) -> Event | None:
    name = f.get("Variable", "")
    if not name.startswith(CTID_VARIABLE_PREFIX):
        return None  # the overwhelming majority of VarSet frames
    ids = _channel_ids(f)
    if ids is None:
        return None
    return ChannelVariableSet(
        at=at,
        **ids,
        name=name[:64],
        value=clean_caller_text(f.get("Value", ""), _VALUE_MAX),
        caller_num=_caller(f.get("CallerIDNum")),
        caller_name=_caller(f.get("CallerIDName")),
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
    ids = _channel_ids(f)
    if ids is None:
        return None
    return BridgeEntered(
        at=at,
        **ids,
        bridge_id=f.get("BridgeUniqueid", ""),
    )


def _bridge_leave(f: Headers, at: float) -> Event | None:
    ids = _channel_ids(f)
    if ids is None:
        return None
    return BridgeLeft(
        at=at,
        **ids,
        bridge_id=f.get("BridgeUniqueid", ""),
    )


# --------------------------------------------------------------------------- queue, caller side


def _caller_join(f: Headers, at: float) -> Event | None:
    ids = _channel_ids(f)
    if ids is None:
        return None
    return CallerJoinedQueue(
        at=at,
        **ids,
        queue=QueueName(f.get("Queue", "")),
        position=_int(f.get("Position")),
        count=_int(f.get("Count")),
        caller_num=_caller(f.get("CallerIDNum")),
        caller_name=_caller(f.get("CallerIDName")),
    )


def _caller_leave(f: Headers, at: float) -> Event | None:
    ids = _channel_ids(f)
    if ids is None:
        return None
    return CallerLeftQueue(
        at=at,
        **ids,
        queue=QueueName(f.get("Queue", "")),
        position=_int(f.get("Position")),
        count=_int(f.get("Count")),
    )


def _caller_abandon(f: Headers, at: float) -> Event | None:
    ids = _channel_ids(f)
    if ids is None:
        return None
    return CallerAbandoned(
        at=at,
        **ids,
        queue=QueueName(f.get("Queue", "")),
        position=_int(f.get("Position")),
        original_position=_int(f.get("OriginalPosition")),
        hold_time_s=_float(f.get("HoldTime")),
    )


# --------------------------------------------------------------------------- queue, seat side


def _agent_ids(f: Headers) -> tuple[str, str, str] | None:
    """(caller uniqueid, seat-leg uniqueid, linkedid). Either side may be missing: Asterisk leaves
    out the headers of a channel already torn down (AgentComplete after the caller hung up)."""
    uid = f.get("Uniqueid", "")
    dest_uid = f.get("DestUniqueid", "")
    if not uid and not dest_uid:
        return None
    linkedid = f.get("Linkedid") or f.get("DestLinkedid") or uid or dest_uid
    return uid, dest_uid, linkedid


def _agent_called(f: Headers, at: float) -> Event | None:
    ids = _agent_ids(f)
    if ids is None or not ids[0] or not ids[1]:
        _skip(f, "AgentCalled without both channels")
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
    ids = _agent_ids(f)
    if ids is None:
        _skip(f, "no Uniqueid")
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
        ring_time_s=_int(f.get("RingTime")) / 1000.0,
    )


def _agent_connect(f: Headers, at: float) -> Event | None:
    ids = _agent_ids(f)
    if ids is None:
        _skip(f, "no Uniqueid")
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
        hold_time_s=_float(f.get("HoldTime")),
        ring_time_s=_float(f.get("RingTime")),
    )


def _agent_complete(f: Headers, at: float) -> Event | None:
    ids = _agent_ids(f)
    if ids is None:
        _skip(f, "no Uniqueid")
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
        hold_time_s=_float(f.get("HoldTime")),
        talk_time_s=_float(f.get("TalkTime")),
        reason=f.get("Reason", ""),
    )


def _agent_dump(f: Headers, at: float) -> Event | None:
    ids = _agent_ids(f)
    if ids is None:
        _skip(f, "no Uniqueid")
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
        _skip(f, "no Interface")
        return None
    return QueueMemberStatusChanged(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        interface=interface,
        member_name=f.get("MemberName", ""),
        status=_int(f.get("Status")),
        paused=_flag(f.get("Paused")),
        paused_reason=f.get("PausedReason", ""),
        in_call=_flag(f.get("InCall")),
    )


def _member_pause(f: Headers, at: float) -> Event | None:
    interface = f.get("Interface")
    if not interface:
        _skip(f, "no Interface")
        return None
    return QueueMemberPaused(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        interface=interface,
        member_name=f.get("MemberName", ""),
        paused=_flag(f.get("Paused")),
        # Asterisk ≥ 13 says PausedReason; older releases said Reason.
        reason=f.get("PausedReason") or f.get("Reason", ""),
    )


def _member_added(f: Headers, at: float) -> Event | None:
    interface = f.get("Interface")
    if not interface:
        _skip(f, "no Interface")
        return None
    return QueueMemberAdded(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        interface=interface,
        member_name=f.get("MemberName", ""),
        status=_int(f.get("Status")),
        paused=_flag(f.get("Paused")),
        paused_reason=f.get("PausedReason", ""),
        penalty=_int(f.get("Penalty")),
    )


def _member_removed(f: Headers, at: float) -> Event | None:
    interface = f.get("Interface")
    if not interface:
        _skip(f, "no Interface")
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
        _skip(f, "no SpyeeChannel")
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
        reason=_int(f.get("Reason")),
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


# --------------------------------------------------------------------------- resync list items


def _core_show_channel(f: Headers, at: float) -> Event | None:
    ids = _channel_ids(f)
    if ids is None:
        return None
    return ChannelSnapshot(
        at=at,
        **ids,
        state=_int(f.get("ChannelState")),
        application=f.get("Application", ""),
        application_data=f.get("ApplicationData", "")[:_VALUE_MAX],
        duration_s=_hms(f.get("Duration")),
        bridge_id=f.get("BridgeId", ""),
        caller_num=_caller(f.get("CallerIDNum")),
        caller_name=_caller(f.get("CallerIDName")),
        context=f.get("Context", ""),
        exten=f.get("Exten", ""),
    )


def _queue_member(f: Headers, at: float) -> Event | None:
    # QueueStatus's list item names the interface `Location` and the member `Name`, unlike the
    # QueueMember* events (Interface, MemberName).
    interface = f.get("Location") or f.get("Interface")
    if not interface:
        _skip(f, "no Location")
        return None
    return QueueMemberSnapshot(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        interface=interface,
        member_name=f.get("Name") or f.get("MemberName", ""),
        status=_int(f.get("Status")),
        paused=_flag(f.get("Paused")),
        paused_reason=f.get("PausedReason", ""),
        in_call=_flag(f.get("InCall")),
        penalty=_int(f.get("Penalty")),
    )


def _queue_params(f: Headers, at: float) -> Event | None:
    queue = f.get("Queue")
    if not queue:
        _skip(f, "no Queue")
        return None
    return QueueParamsSnapshot(
        at=at,
        queue=QueueName(queue),
        calls=_int(f.get("Calls")),
        hold_time_s=_float(f.get("Holdtime")),
        talk_time_s=_float(f.get("TalkTime")),
        completed=_int(f.get("Completed")),
        abandoned=_int(f.get("Abandoned")),
    )


def _queue_entry(f: Headers, at: float) -> Event | None:
    uid = f.get("Uniqueid")
    if not uid:
        _skip(f, "no Uniqueid")
        return None
    return QueueEntrySnapshot(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        position=_int(f.get("Position")),
        channel=Channel(f.get("Channel", "")),
        uniqueid=UniqueId(uid),
        caller_num=_caller(f.get("CallerIDNum")),
        caller_name=_caller(f.get("CallerIDName")),
        wait_s=_float(f.get("Wait")),
    )


def _queue_summary(f: Headers, at: float) -> Event | None:
    queue = f.get("Queue")
    if not queue:
        _skip(f, "no Queue")
        return None
    return QueueSummarySnapshot(
        at=at,
        queue=QueueName(queue),
        logged_in=_int(f.get("LoggedIn")),
        available=_int(f.get("Available")),
        callers=_int(f.get("Callers")),
        hold_time_s=_float(f.get("HoldTime")),
        talk_time_s=_float(f.get("TalkTime")),
        longest_hold_s=_float(f.get("LongestHoldTime")),
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
        _core_show_channel,
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
        _queue_member,
        (*_MEMBER, "Location", "Name", "Status", "Paused", "PausedReason", "InCall", "Penalty"),
    ),
    (
        "QueueParams",
        _queue_params,
        ("Queue", "Calls", "Holdtime", "TalkTime", "Completed", "Abandoned"),
    ),
    ("QueueEntry", _queue_entry, ("Uniqueid", "Queue", "Position", "Channel", *_CALLER_ID, "Wait")),
    (
        "QueueSummary",
        _queue_summary,
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

EVENT_FILTER: EventFilter = {name: () for name in _HANDLERS} | {
    # Only `CTID_*` variables become events (`_varset`): a frame without such a `Variable` line
    # (in either of the two forms `parse_lines` reads) is dropped before it is built. Most VarSets.
    "VarSet": ("\r\nVariable: " + CTID_VARIABLE_PREFIX, "\r\nVariable:" + CTID_VARIABLE_PREFIX),
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
    return handler(headers, _at(headers, received_at))
