"""The AMI actions ctid sends, as typed methods over `AmiConnection`: the PBX-control port the
services use (hang up a leg, pause a member, redirect, originate a spy or callback call)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import structlog

from ctid.asterisk.ami import AmiConnection
from ctid.asterisk.frame import Frame

log = structlog.get_logger(__name__)

# Asterisk hangup causes: 16 normal clearing; 19 "no answer" — the cause for a leg cut at the
# three-ring deadline, as the recording in enforced_hangup.jsonl uses.
CAUSE_NORMAL = 16
CAUSE_NO_ANSWER = 19

ListenMode = Literal["listen", "whisper", "barge"]
"""A supervisor's listen-in mode, as the rest of ctid names it (same words as `calls.spy`)."""

CHANSPY_COMMON = "uqE"
"""ChanSpy options for every mode: u = the first argument is a full channel name (exact, not a
prefix); q = no beep or name announcement; E = exit when the spied channel hangs up."""
CHANSPY_MODE: Mapping[ListenMode, str] = {"listen": "", "whisper": "w", "barge": "B"}
"""w = the supervisor talks to the agent's leg only; B = to both parties."""


def chanspy_options(mode: ListenMode) -> str:
    """ChanSpy's option letters for a listen-in mode (`uqE`, `uqEw`, `uqEB`)."""
    return CHANSPY_COMMON + CHANSPY_MODE[mode]


LISTEN_IN_CONTEXT = "ctid-spy"
"""contrib's context the supervisor's phone is originated into: `Dial(Local/<tag>@ctid-spy-run/n)`."""
LISTEN_IN_RUN_CONTEXT = "ctid-spy-run"
"""contrib's context whose Local `;2` half runs `ChanSpy(${CTID_SPY_CHANNEL},${CTID_SPY_OPTIONS})`."""


def listen_in_variables(channel: str, mode: ListenMode) -> tuple[tuple[str, str], ...]:
    """The Originate's variables: `__` makes Dial copy them to the Local `;1`, and core_unreal
    copies every variable of `;1` to `;2`, where ChanSpy reads them."""
    return (("__CTID_SPY_CHANNEL", channel), ("__CTID_SPY_OPTIONS", chanspy_options(mode)))


def chanspy_data(channel: str, mode: ListenMode) -> str:
    """The ChanSpy argument string: the spied channel's full name and the mode's options. The
    caller has checked `channel` is a full Asterisk channel name (see `calls.spy`)."""
    return f"{channel},{chanspy_options(mode)}"


# No value needs escaping here: the connection refuses CR/LF in every field with
# `UnsafeValueError` (`ami_protocol.encode_action`), so a caller-controlled string can never inject a header, and
# the channel names passed in come from Asterisk's own events.
class AmiPbxControl:
    """PBX control over AMI. Every method raises `AmiError` subclasses on failure."""

    def __init__(self, ami: AmiConnection) -> None:
        self._ami = ami

    async def hangup(self, channel: str, cause: int = CAUSE_NORMAL) -> None:
        await self._ami.action("Hangup", [("Channel", channel), ("Cause", str(cause))])

    async def hang_up(self, channel: str) -> None:
        """End a channel with normal clearing."""
        await self.hangup(channel, CAUSE_NORMAL)

    async def cut_ringing_leg(self, channel: str) -> None:
        """End a seat leg still ringing at the deadline, as "no answer" (the queue rings the next)."""
        await self.hangup(channel, CAUSE_NO_ANSWER)

    async def start_listen_in(
        self, phone: str, channel: str, mode: ListenMode, caller_id: str, tag: str
    ) -> str:
        """Ring the supervisor's `phone` into contrib's [ctid-spy] (`tag`@ctid-spy), which Dials
        `Local/<tag>@ctid-spy-run/n`, whose `;2` half runs ChanSpy on `channel` (a full channel
        name) in `mode`. The phone is never the channel that runs ChanSpy: hanging it up frees it
        at once even when ChanSpy lingers (see `end_listen_in`). Returns the Originate's ActionID
        (to match its `OriginateResponse`)."""
        return await self.originate_exten(
            phone,
            LISTEN_IN_CONTEXT,
            tag,
            caller_id,
            variables=listen_in_variables(channel, mode),
        )

    async def end_listen_in(self, spy_channel: str) -> None:
        """Hang up the supervisor phone's listen-in leg (normal clearing). Its Dial and bridge end
        at once and its `Hangup` event is the proof; the Local `;2` running ChanSpy gets the
        hangup through `;1` but may linger until the spied call passes audio (app_chanspy waits
        in ast_audiohook_detach): it holds no phone. `Success` alone proves nothing."""
        await self.hangup(spy_channel, CAUSE_NORMAL)

    async def end_chanspy(self, chanspy_channel: str) -> None:
        """Best effort: hang up a lingering Local `;2` still inside ChanSpy."""
        await self.hangup(chanspy_channel, CAUSE_NORMAL)

    async def queue_pause(
        self, interface: str, paused: bool, reason: str = "", queue: str | None = None
    ) -> None:
        fields = [("Interface", interface), ("Paused", "true" if paused else "false")]
        if queue:
            fields.append(("Queue", queue))
        if reason:
            fields.append(("Reason", reason))
        await self._ami.action("QueuePause", fields)

    async def queue_add(
        self,
        queue: str,
        interface: str,
        member_name: str,
        penalty: int = 0,
        paused: bool = False,
        state_interface: str = "",
    ) -> None:
        fields = [
            ("Queue", queue),
            ("Interface", interface),
            ("MemberName", member_name),
            ("Penalty", str(penalty)),
            ("Paused", "true" if paused else "false"),
        ]
        if state_interface:
            fields.append(("StateInterface", state_interface))
        await self._ami.action("QueueAdd", fields)

    async def queue_remove(self, queue: str, interface: str) -> None:
        await self._ami.action("QueueRemove", [("Queue", queue), ("Interface", interface)])

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> None:
        await self._ami.action(
            "Redirect",
            [
                ("Channel", channel),
                ("Context", context),
                ("Exten", exten),
                ("Priority", str(priority)),
            ],
        )

    async def absolute_timeout(self, channel: str, seconds: int) -> None:
        await self._ami.action("AbsoluteTimeout", [("Channel", channel), ("Timeout", str(seconds))])

    async def originate_application(
        self,
        channel: str,
        application: str,
        data: str,
        caller_id: str,
        variables: Sequence[tuple[str, str]] = (),
    ) -> str:
        """Originate `channel` into an application (ChanSpy, …); returns the ActionID used so the
        `OriginateResponse` can be matched. Never re-sent after a reconnect (the connection fails
        it instead)."""
        fields = [
            ("Channel", channel),
            ("Application", application),
            ("Data", data),
            ("CallerID", caller_id),
            ("Async", "true"),
        ]
        fields += [("Variable", f"{k}={v}") for k, v in variables]
        reply = await self._ami.action("Originate", fields)
        return reply.action_id or ""

    async def originate_exten(
        self,
        channel: str,
        context: str,
        exten: str,
        caller_id: str,
        variables: Sequence[tuple[str, str]] = (),
        timeout_s: int = 30,
    ) -> str:
        """Ring `channel` (an agent's phone) and, when answered, dial `exten@context`."""
        fields = [
            ("Channel", channel),
            ("Context", context),
            ("Exten", exten),
            ("Priority", "1"),
            ("CallerID", caller_id),
            ("Timeout", str(timeout_s * 1000)),
            ("Async", "true"),
        ]
        fields += [("Variable", f"{k}={v}") for k, v in variables]
        reply = await self._ami.action("Originate", fields)
        return reply.action_id or ""

    async def core_show_channels(self) -> list[Frame]:
        return await self._ami.list_action("CoreShowChannels")

    async def queue_status(self) -> list[Frame]:
        return await self._ami.list_action("QueueStatus")
