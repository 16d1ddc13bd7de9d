"""Reading AMI header values: numbers, flags and durations that never raise, caller text made
safe, a frame's time and its channel ids; shared by the translate modules."""

from __future__ import annotations

from typing import TypedDict

import structlog

from ctid.core.events import clean_caller_text
from ctid.core.ids import Channel, UniqueId

log = structlog.get_logger("ctid.asterisk.translate")

Headers = dict[str, str]
"""A handled frame's headers (`Frame.pick`): the handlers read them with plain `dict.get`."""

VALUE_MAX = 256
"""Longest `CTID_*` value or application argument kept (anything longer is not ours)."""


def read_at(f: Headers, received_at: float) -> float:
    # Timestamp is epoch seconds with microseconds ("1795358660.825488") when the PBX has
    # `timestampevents = yes`; list items of action responses never carry one.
    ts = f.get("Timestamp")
    if ts:
        try:
            return float(ts)
        except ValueError:
            pass
    return received_at


def read_int(value: str | None) -> int:
    if not value:
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


def read_float(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        return float(value)
    except ValueError:
        return 0.0


def read_flag(value: str | None) -> bool:
    # Paused/InCall are "0"/"1"; some versions and actions say "true"/"yes".
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def read_hms(value: str | None) -> float:
    """`Duration: 00:01:05` (hours may exceed 99) → seconds."""
    if not value:
        return 0.0
    total = 0
    for part in value.split(":"):
        if not part.isdigit():
            return 0.0
        total = total * 60 + int(part)
    return float(total)


def caller_text(value: str | None) -> str:
    return clean_caller_text(value) if value else ""


def skip(f: Headers, why: str) -> None:
    log.debug("ami_frame_skipped", ami_event=f.get("Event"), why=why)


class ChannelIds(TypedDict):
    channel: Channel
    uniqueid: UniqueId
    linkedid: UniqueId


def channel_ids(f: Headers) -> ChannelIds | None:
    """The channel and its correlation ids, which every channel event needs (skipped without a
    Uniqueid; a missing Linkedid is the channel's own)."""
    uid = f.get("Uniqueid")
    if not uid:
        skip(f, "no Uniqueid")
        return None
    return {
        "channel": Channel(f.get("Channel", "")),
        "uniqueid": UniqueId(uid),
        "linkedid": UniqueId(f.get("Linkedid") or uid),
    }


def agent_ids(f: Headers) -> tuple[str, str, str] | None:
    """(caller uniqueid, seat-leg uniqueid, linkedid). Either side may be missing: Asterisk leaves
    out the headers of a channel already torn down (AgentComplete after the caller hung up)."""
    uid = f.get("Uniqueid", "")
    dest_uid = f.get("DestUniqueid", "")
    if not uid and not dest_uid:
        return None
    linkedid = f.get("Linkedid") or f.get("DestLinkedid") or uid or dest_uid
    return uid, dest_uid, linkedid
