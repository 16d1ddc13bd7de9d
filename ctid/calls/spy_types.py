"""Spying's vocabulary: modes and states, errors, the exact-channel rule (pure), the ports to the
PBX, the supervisors' desktops and the audit store, their values, and the session record."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, TypeAlias

from ctid.calls.seats import interface_device
from ctid.config import SupervisorConfig
from ctid.core.errors import CtidError
from ctid.core.frames import SpyAlertFrame
from ctid.core.ids import CallId, Channel, SeatId

SpyMode = Literal["listen", "whisper", "barge"]
SPY_MODES: tuple[SpyMode, ...] = ("listen", "whisper", "barge")
SpyState = Literal["requested", "active", "stopped", "failed"]
"""requested: Originate sent, ChanSpy not attached yet; active: ChanSpyStart seen; stopped: it
ended after starting; failed: it never started (refused, not answered, link lost...)."""

END_BOUND_S = 0.8
"""How long stop/switch wait for the PBX's proof that a leg ended (under the 1 s the desk asks)."""

# Why ctid passes ChanSpy a full channel name (with option `u`), never an interface, and why that
# is exact: docs/architecture.md, "Listening in".
# `<tech>/<resource>-<8 hex digits>` plus `;1`/`;2` for Local halves: a name Asterisk gave a
# channel, never an interface. The resource may not hold what ChanSpy's argument parser treats
# specially (`,` separates arguments; quotes, parentheses and brackets group them).
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9_]+/[A-Za-z0-9_.@+:=#*~/\-]+-[0-9a-f]{8}(?:;[12])?$")
_SPY_LOCAL = re.compile(r"^Local/(spy[0-9]+)@ctid-spy-run-[0-9a-f]{8};2$")
"""The ChanSpy half of a listen-in's Local channel in contrib's [ctid-spy-run] (which `ctid
doctor` checks): its extension is the session's tag (see `SpyPbx.start_listen_in`)."""
_CALLER_ID_UNSAFE = re.compile(r'[<>"\\\x00-\x1f\x7f]')


# --------------------------------------------------------------------------- errors


class SpyError(CtidError):
    """A spy request was refused or could not be carried out."""


class NotSupervisorError(SpyError):
    """The person is not a configured supervisor with a phone (the web answers 403)."""


class SeatNotOnCallError(SpyError):
    """The seat is unknown or not talking on a live call right now (409)."""


class BadSpyModeError(SpyError):
    """The mode is not listen, whisper or barge (400)."""


class UnsafeSpyTargetError(SpyError):
    """The seat's channel is not a full Asterisk channel name, so ChanSpy could not be exact."""


class UnknownSpySessionError(SpyError):
    """No such spy session (404)."""


class SpySessionEndedError(SpyError):
    """The session has already ended, so it cannot switch mode (409)."""


class SpyRequestFailedError(SpyError):
    """The PBX did not take the request (AMI down, link lost, refused). Never retried: the
    session is marked failed and the supervisor may ask again."""

    def __init__(self, message: str, session: SpyView) -> None:
        super().__init__(message)
        self.session = session


class SpyLegNotEndedError(SpyRequestFailedError):
    """The PBX took the request to end a leg but gave no proof (ChanSpyStop/Hangup) within
    `END_BOUND_S`; the leg may still run. A switch does not start its new leg."""


# --------------------------------------------------------------------------- pure helpers


def spy_mode(mode: str) -> SpyMode:
    """`mode` as a `SpyMode`, or `BadSpyModeError`."""
    for known in SPY_MODES:
        if mode == known:
            return known
    raise BadSpyModeError(f"mode must be one of {', '.join(SPY_MODES)} (got {mode!r})")


def is_exact_channel_name(channel: str) -> bool:
    """True for a channel name as Asterisk makes them (`PJSIP/seat1-0000002a`,
    `Local/seat3@phones-0000000e;1`), false for an interface (`PJSIP/seat1`) or anything else."""
    return bool(_CHANNEL_NAME.match(channel))


def check_exact_target(channel: str) -> None:
    """`UnsafeSpyTargetError` unless `channel` is a full channel name ChanSpy will match exactly."""
    if not is_exact_channel_name(channel):
        raise UnsafeSpyTargetError(
            f"{channel!r} is not a full Asterisk channel name; ChanSpy would treat it as a prefix"
        )


def spy_caller_id(mode: str, seat_name: str, seat_id: str) -> str:
    """What the supervisor's phone shows when it rings: `"Listen Seat 1" <seat1>`."""
    name = _CALLER_ID_UNSAFE.sub("", f"{mode.capitalize()} {seat_name}")[:64]
    number = _CALLER_ID_UNSAFE.sub("", seat_id)
    return f'"{name}" <{number}>'


def local_tag(channel: str) -> str | None:
    """`spy12` for the listen-in half `Local/spy12@ctid-spy-run-0000000a;2`, else None."""
    m = _SPY_LOCAL.match(channel)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- ports and values


class SpyPbx(Protocol):
    """The PBX actions spying needs (`ctid.asterisk.actions.AmiPbxControl` fits)."""

    async def start_listen_in(
        self, phone: str, channel: str, mode: SpyMode, caller_id: str, tag: str
    ) -> str:
        """Ring `phone` into a listen-in on the exact `channel` through a Local channel whose
        extension is `tag` (`Local/<tag>@…`); returns the ActionID."""
        ...

    async def end_listen_in(self, spy_channel: str) -> None:
        """Ask the PBX to end the leg; its `Success` proves nothing (see the module)."""
        ...

    async def end_chanspy(self, chanspy_channel: str) -> None:
        """Best effort: hang up a Local half still inside ChanSpy after its phone hung up."""
        ...


class SupervisorAlerts(Protocol):
    """Frames to the supervisors' desktops (`ctid.screenpop.hub.PopHub` fits)."""

    def publish_supervisor(self, frame: SpyAlertFrame) -> int: ...


AuditValue: TypeAlias = str | int | bool | None


@dataclass(frozen=True, slots=True)
class SpyAudit:
    """One audit-log entry: `actor` (employee id) did `action` on seat `target`."""

    at: datetime
    actor: str
    action: str
    target: str
    detail: Mapping[str, AuditValue]


@dataclass(frozen=True, slots=True)
class SpyRow:
    """A new `spy_sessions` row."""

    supervisor: str
    seat_id: str
    call_id: str
    mode: SpyMode
    requested_at: datetime


class SpyStore(Protocol):
    """Where sessions and their audit entries are written (`ctid.calls.spy_store.SqlSpyStore`).
    Every method raises `StoreError` when the database cannot be used."""

    async def add(self, row: SpyRow, audit: SpyAudit) -> int:
        """Insert the session and its audit entry in one transaction; return the session id
        (also added to the entry's detail as `session`)."""
        ...

    async def set_action(self, session_id: int, action_id: str) -> None: ...

    async def set_spy_channel(self, session_id: int, spy_channel: str) -> None: ...

    async def set_started(
        self, session_id: int, at: datetime, spy_channel: str, audit: SpyAudit
    ) -> None:
        """`started_at` and `spy_channel` (a start also clears `stopped_at`), plus the entry."""
        ...

    async def set_stopped(self, session_id: int, at: datetime, audit: SpyAudit) -> None: ...

    async def audit(self, entry: SpyAudit) -> None: ...


@dataclass(frozen=True, slots=True)
class SpyView:
    """A spy session as the web sees it (a snapshot)."""

    session_id: int
    supervisor: str
    seat_id: SeatId
    call_id: CallId
    mode: SpyMode
    target_channel: Channel
    state: SpyState
    requested_at: datetime
    action_id: str | None = None
    spy_channel: Channel | None = None
    """The supervisor phone's channel (hung up to stop; its Hangup proves the end)."""
    chanspy_channel: Channel | None = None
    """The channel running ChanSpy (a Local `;2`), from ChanSpyStart."""
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    reason: str = ""
    """Why it failed or was stopped (empty while it runs)."""


class Session:
    """One listen-in session as `SpyService` tracks it (mutable; only the service changes it,
    under its locks): the request, the two channels, its state and why it ended."""

    __slots__ = (
        "action_id",
        "call_id",
        "chanspy",
        "chanspy_gone",
        "device",
        "gone",
        "hangup_sent",
        "id",
        "maybe_sent",
        "mode",
        "reason",
        "requested_at",
        "seat_id",
        "spy_channel",
        "started_at",
        "state",
        "stop_by",
        "stop_reason",
        "stopped_at",
        "supervisor",
        "tag",
        "target",
    )

    def __init__(
        self,
        session_id: int,
        supervisor: SupervisorConfig,
        seat_id: SeatId,
        call_id: CallId,
        mode: SpyMode,
        target: Channel,
        requested_at: datetime,
    ) -> None:
        self.id = session_id
        self.supervisor = supervisor.employee_id
        self.device = interface_device(supervisor.phone)
        self.seat_id = seat_id
        self.call_id = call_id
        self.mode: SpyMode = mode
        self.target = target
        self.requested_at = requested_at
        self.state: SpyState = "requested"
        self.action_id: str | None = None
        self.spy_channel: Channel | None = None
        self.chanspy: Channel | None = None  # the Local ;2 running ChanSpy
        self.chanspy_gone = False  # its Hangup was seen
        self.tag = f"spy{session_id}"  # the Local channel's extension: Local/spy<id>@…
        self.started_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.reason = ""
        self.stop_reason: str | None = None  # ctid asked to end it (stop, switch, superseded...)
        self.stop_by = ""
        self.maybe_sent = False  # the Originate failed in a way that does not say it was not run
        self.hangup_sent = False
        self.gone = asyncio.Event()  # set when it ended (stopped or failed)

    @property
    def ended(self) -> bool:
        return self.state in ("stopped", "failed")

    def view(self) -> SpyView:
        return SpyView(
            session_id=self.id,
            supervisor=self.supervisor,
            seat_id=self.seat_id,
            call_id=self.call_id,
            mode=self.mode,
            target_channel=self.target,
            state=self.state,
            requested_at=self.requested_at,
            action_id=self.action_id,
            spy_channel=self.spy_channel,
            chanspy_channel=self.chanspy,
            started_at=self.started_at,
            stopped_at=self.stopped_at,
            reason=self.reason,
        )

    def detail(self, **more: AuditValue) -> dict[str, AuditValue]:
        return {
            "session": self.id,
            "call_id": self.call_id,
            "mode": self.mode,
            "channel": self.target,
            **more,
        }
