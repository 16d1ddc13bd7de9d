"""AMI list items → snapshot events: what CoreShowChannels, QueueStatus and QueueSummary answer,
read after every login to repair ctid's picture of the PBX (`CallService.resync`)."""

from __future__ import annotations

from ctid.asterisk.ami_values import (
    VALUE_MAX,
    Headers,
    caller_text,
    channel_ids,
    read_flag,
    read_float,
    read_hms,
    read_int,
    skip,
)
from ctid.core.events import (
    ChannelSnapshot,
    Event,
    QueueEntrySnapshot,
    QueueMemberSnapshot,
    QueueParamsSnapshot,
    QueueSummarySnapshot,
)
from ctid.core.ids import Channel, QueueName, UniqueId


def core_show_channel(f: Headers, at: float) -> Event | None:
    ids = channel_ids(f)
    if ids is None:
        return None
    return ChannelSnapshot(
        at=at,
        **ids,
        state=read_int(f.get("ChannelState")),
        application=f.get("Application", ""),
        application_data=f.get("ApplicationData", "")[:VALUE_MAX],
        duration_s=read_hms(f.get("Duration")),
        bridge_id=f.get("BridgeId", ""),
        caller_num=caller_text(f.get("CallerIDNum")),
        caller_name=caller_text(f.get("CallerIDName")),
        context=f.get("Context", ""),
        exten=f.get("Exten", ""),
    )


def queue_member(f: Headers, at: float) -> Event | None:
    # QueueStatus's list item names the interface `Location` and the member `Name`, unlike the
    # QueueMember* events (Interface, MemberName).
    interface = f.get("Location") or f.get("Interface")
    if not interface:
        skip(f, "no Location")
        return None
    return QueueMemberSnapshot(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        interface=interface,
        member_name=f.get("Name") or f.get("MemberName", ""),
        status=read_int(f.get("Status")),
        paused=read_flag(f.get("Paused")),
        paused_reason=f.get("PausedReason", ""),
        in_call=read_flag(f.get("InCall")),
        penalty=read_int(f.get("Penalty")),
    )


def queue_params(f: Headers, at: float) -> Event | None:
    queue = f.get("Queue")
    if not queue:
        skip(f, "no Queue")
        return None
    return QueueParamsSnapshot(
        at=at,
        queue=QueueName(queue),
        calls=read_int(f.get("Calls")),
        hold_time_s=read_float(f.get("Holdtime")),
        talk_time_s=read_float(f.get("TalkTime")),
        completed=read_int(f.get("Completed")),
        abandoned=read_int(f.get("Abandoned")),
    )


def queue_entry(f: Headers, at: float) -> Event | None:
    uid = f.get("Uniqueid")
    if not uid:
        skip(f, "no Uniqueid")
        return None
    return QueueEntrySnapshot(
        at=at,
        queue=QueueName(f.get("Queue", "")),
        position=read_int(f.get("Position")),
        channel=Channel(f.get("Channel", "")),
        uniqueid=UniqueId(uid),
        caller_num=caller_text(f.get("CallerIDNum")),
        caller_name=caller_text(f.get("CallerIDName")),
        wait_s=read_float(f.get("Wait")),
    )


def queue_summary(f: Headers, at: float) -> Event | None:
    queue = f.get("Queue")
    if not queue:
        skip(f, "no Queue")
        return None
    return QueueSummarySnapshot(
        at=at,
        queue=QueueName(queue),
        logged_in=read_int(f.get("LoggedIn")),
        available=read_int(f.get("Available")),
        callers=read_int(f.get("Callers")),
        hold_time_s=read_float(f.get("HoldTime")),
        talk_time_s=read_float(f.get("TalkTime")),
        longest_hold_s=read_float(f.get("LongestHoldTime")),
    )
