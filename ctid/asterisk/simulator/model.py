"""The simulator's data types: channels (with Asterisk's snapshot header block), bridges, queue
members, queues and their callers, calls as the engine and the tests see them, ChanSpy legs.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ctid.asterisk.simulator.wire import STATE_DESC, Pairs

UNKNOWN = "<unknown>"


class Chan:
    """One Asterisk channel. `block()` renders the standard snapshot headers (with a prefix such as
    `Dest`, `Spyer`, `LocalOne`), exactly in Asterisk's order."""

    def __init__(
        self,
        name: str,
        tech: str,
        uniqueid: str,
        linkedid: str,
        state: int,
        context: str,
        exten: str,
        created: float,
        created_epoch: float,
    ) -> None:
        self.name = name
        self.tech = tech
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.state = state
        self.cid_num = ""
        self.cid_name = ""
        self.conn_num = ""
        self.conn_name = ""
        self.language = "en"
        self.accountcode = ""
        self.context = context
        self.exten = exten
        self.priority = 1
        self.app = ""
        self.appdata = ""
        self.created = created
        self.created_epoch = created_epoch
        self.vars: dict[str, str] = {}
        self.alive = True
        self.dead = False  # hangup requested: AGI commands see a dead channel
        self.soft_hangup_sent = False
        self.role = ""
        self.other: Chan | None = None  # the other half of a Local pair
        self.call: HotlineCall | None = None
        self.bridge: Bridge | None = None
        self.spied_by: list[ChanSpyLeg] = []
        self.spy: ChanSpyLeg | None = None
        self.task: asyncio.Task[None] | None = None
        self.timeout_handle: asyncio.TimerHandle | None = None
        self.dtmf_waiter: asyncio.Future[str] | None = None
        self.hangup_cause = 0
        self.seat_key = ""  # for phone legs: which seat phone this is
        self.dnid = ""  # the number dialled to reach this channel (a trunk call's exten)
        self.left_cause = 0
        """A hangup cause a torn-down bridge left on the channel (a later BYE's HangupRequest
        carries it)."""

    def block(self, prefix: str = "") -> Pairs:
        p = prefix
        return [
            (p + "Channel", self.name),
            (p + "ChannelState", str(self.state)),
            (p + "ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (p + "CallerIDNum", self.cid_num or UNKNOWN),
            (p + "CallerIDName", self.cid_name or UNKNOWN),
            (p + "ConnectedLineNum", self.conn_num or UNKNOWN),
            (p + "ConnectedLineName", self.conn_name or UNKNOWN),
            (p + "Language", self.language),
            (p + "AccountCode", self.accountcode),
            (p + "Context", self.context),
            (p + "Exten", self.exten),
            (p + "Priority", str(self.priority)),
            (p + "Uniqueid", self.uniqueid),
            (p + "Linkedid", self.linkedid),
        ]

    def __repr__(self) -> str:
        return f"Chan({self.name!r})"


class Bridge:
    def __init__(self, bridge_id: str) -> None:
        self.id = bridge_id
        self.chans: list[Chan] = []

    def block(self) -> Pairs:
        return [
            ("BridgeUniqueid", self.id),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", UNKNOWN),
            ("BridgeName", UNKNOWN),
            ("BridgeNumChannels", str(len(self.chans))),
            ("BridgeVideoSourceMode", "none"),
        ]


class Member:
    """A queue member (one per queue it belongs to)."""

    def __init__(
        self,
        queue: str,
        interface: str,
        name: str,
        state_interface: str,
        penalty: int,
        dynamic: bool,
        login_time: int,
    ) -> None:
        self.queue = queue
        self.interface = interface
        self.name = name
        self.state_interface = state_interface
        self.penalty = penalty
        self.dynamic = dynamic
        self.paused = False
        self.reason = ""
        self.calls_taken = 0
        self.last_call = 0
        self.last_pause = 0
        self.login_time = login_time
        self.in_call = False
        self.status = 1
        self.ringinuse = False

    def event_fields(self) -> Pairs:
        """The body of QueueMemberStatus / Pause / Added / Removed."""
        return [
            ("Queue", self.queue),
            ("MemberName", self.name),
            ("Interface", self.interface),
            *self._state_fields(),
            ("Ringinuse", "1" if self.ringinuse else "0"),
            ("Wrapuptime", "0"),
        ]

    def status_fields(self) -> Pairs:
        """The body of a QueueStatus list's QueueMember event (no Ringinuse, Name/Location)."""
        return [
            ("Queue", self.queue),
            ("Name", self.name),
            ("Location", self.interface),
            *self._state_fields(),
            ("Wrapuptime", "0"),
        ]

    def _state_fields(self) -> Pairs:
        """StateInterface to PausedReason: the same in both bodies, in this order."""
        return [
            ("StateInterface", self.state_interface),
            ("Membership", "dynamic" if self.dynamic else "static"),
            ("Penalty", str(self.penalty)),
            ("CallsTaken", str(self.calls_taken)),
            ("LastCall", str(self.last_call)),
            ("LastPause", str(self.last_pause)),
            ("LoginTime", str(self.login_time)),
            ("InCall", "1" if self.in_call else "0"),
            ("Status", str(self.status)),
            ("Paused", "1" if self.paused else "0"),
            ("PausedReason", self.reason),
        ]

    @property
    def available(self) -> bool:
        """Can take a call now (not paused; device NOT_INUSE or UNKNOWN)."""
        return not self.paused and self.status in (0, 1)


@dataclass
class QueueEntry:
    """A caller waiting in a queue."""

    call: HotlineCall
    chan: Chan
    start: float
    start_epoch: float
    expire: float
    original_position: int
    expire_epoch: int = 0
    pending: bool = False


@dataclass
class Attempt:
    """One member considered in a ring round (Asterisk's `struct callattempt`)."""

    member: Member
    metric: int
    stillgoing: bool = True
    leg: Chan | None = None  # the channel the queue dialled (Local ;1 or the PJSIP channel)
    far: Chan | None = None  # the phone side (Local ;2), None for PJSIP
    started: float = 0.0
    started_epoch: float = 0.0
    dialed: bool = False
    done_stats: bool = False


@dataclass
class Round:
    """A ring round: try_calling + wait_for_answer."""

    attempts: list[Attempt]
    started: float
    timeout_ms: int
    done: asyncio.Future[str]
    timer: asyncio.TimerHandle | None = None
    starttime: int = 0  # time(NULL) when ring_one last rang someone (for RingTime on hangup)

    def ringing(self) -> list[Attempt]:
        return [a for a in self.attempts if a.leg is not None and a.leg.alive]


@dataclass
class Queue:
    name: str
    strategy: str
    timeout_s: int
    retry_s: int
    ringinuse: bool
    autofill: bool
    leavewhenempty: bool = False
    members: list[Member] = field(default_factory=list)
    callers: list[QueueEntry] = field(default_factory=list)
    rrpos: int = 0
    wrapped: bool = False
    holdtime: int = 0
    talktime: int = 0
    completed: int = 0
    abandoned: int = 0

    def member(self, interface: str) -> Member | None:
        for m in self.members:
            if m.interface.lower() == interface.lower():
                return m
        return None

    def position(self, entry: QueueEntry) -> int:
        return self.callers.index(entry) + 1


class AgiLink(Protocol):
    """What the engine needs of a running FastAGI session."""

    writer: asyncio.StreamWriter | None

    def channel_died(self) -> None: ...


class SimCall:
    """A call the simulator placed (or the lab Originate started), as a test sees it.

    Await `answered.wait()` / `ended.wait()` (bounded by `asyncio.wait_for`). `outcome` is one of
    `answered`, `abandoned`, `ivr_hangup`, `routed_hangup`, `timeout`, `dropped` once it ended.
    """

    def __init__(self, number: str, name: str) -> None:
        self.number = number
        self.name = name
        self.answered = asyncio.Event()
        self.queued = asyncio.Event()
        self.ringing = asyncio.Event()
        self.ended = asyncio.Event()
        self.outcome: str | None = None
        self.seat: str | None = None
        self.queue: str | None = None
        self.caller_channel = ""
        """The channel that runs the dialplan and waits in the queue (`Local/4000@hotline-…;2`)."""
        self.originator_channel = ""
        """The caller's own half (`Local/4000@hotline-…;1`); empty for trunk calls."""
        self.uniqueid = ""
        self.linkedid = ""
        self.channels: list[str] = []
        self.rang: list[str] = []
        """Seat ids the queue rang, in order."""
        self.agent_channel = ""
        self.ivr_vars: dict[str, str] = {}
        self._hangup: Callable[[], None] | None = None

    def bind_hangup(self, hangup: Callable[[], None]) -> None:
        """The engine's way to hang this caller up (set when the call starts)."""
        self._hangup = hangup

    def hangup(self) -> None:
        """The caller hangs up now."""
        if self._hangup is not None and not self.ended.is_set():
            self._hangup()

    def __repr__(self) -> str:
        return f"SimCall({self.number!r}, outcome={self.outcome!r}, seat={self.seat!r})"


class DigitScript:
    """What a simulated caller presses: one entry per IVR input command (None = silence)."""

    def __init__(self, digits: str | Sequence[str | None] | None) -> None:
        entries: list[str | None]
        if digits is None:
            entries = []
        elif isinstance(digits, str):
            entries = list(digits)
        else:
            entries = list(digits)
        self.entries: deque[str | None] = deque(entries)

    def take(self, kind: str, escape: str) -> tuple[bool, str | None]:
        """(consumed, entry) for an input command of `kind` (`digit`, `data`, `stream`)."""
        if not self.entries:
            return (kind != "stream", None)
        head = self.entries[0]
        if kind == "stream":
            if head and head[0] in escape:
                self.entries.popleft()
                return (True, head[:1])
            return (False, None)
        self.entries.popleft()
        if kind == "digit" and head:
            return (True, head[:1])
        return (True, head)


@dataclass
class CallerPlan:
    """How the caller behaves (place_call's knobs); `lab` mode follows the lab's callerside."""

    mode: str = "sim"  # sim | lab | app
    script: DigitScript | None = None
    hangup_after_s: float | None = None
    hangup_in_ivr_after_s: float | None = None
    talk_s: float | None = None
    lab_ivr: str = ""
    lab_stay: float = 0.0
    app: str = ""
    app_data: str = ""
    dtmf_at: tuple[tuple[float, str], ...] = ()
    sends_audio: bool = True


@dataclass(frozen=True)
class EarlierMember:
    """A member whose bridge a Redirect took the caller out of, still open in app_queue's books."""

    queue: Queue
    member: Member
    hold_s: int
    connected_epoch: float
    caller_pos: int


class HotlineCall:
    """One hotline call inside the engine."""

    def __init__(self, public: SimCall, plan: CallerPlan) -> None:
        self.public = public
        self.plan = plan
        self.one: Chan | None = None
        self.two: Chan = None  # type: ignore[assignment]  # set right after creation
        self.phase = "dialplan"
        self.queue: Queue | None = None
        self.entry: QueueEntry | None = None
        self.round: Round | None = None
        self.agent: Attempt | None = None
        self.bridge: Bridge | None = None
        self.connected: float = 0.0
        self.connected_epoch: float = 0.0
        self.agi: AgiLink | None = None
        self.in_agi = False
        self.program: asyncio.Task[None] | None = None
        self.caller_task: asyncio.Task[None] | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.completed = False  # AgentComplete was sent
        self.caller_pos = 0  # the caller's original position in the queue that connected it
        self.earlier: list[EarlierMember] = []
        """Members this caller was redirected away from: app_queue completes them only when the
        caller's channel hangs up (pjsip_transfer_redirect)."""

    @property
    def ended(self) -> bool:
        return self.phase == "done"


class ChanSpyLeg:
    """One running ChanSpy() on a spy channel (`spyer`) and the channel it listens to now."""

    def __init__(self, spyer: Chan, prefix: str, options: str) -> None:
        self.spyer = spyer
        self.prefix = prefix
        self.options = options
        self.target: Chan | None = None
        self.stopped: asyncio.Event = asyncio.Event()
        self.hangup_pending = False
        """A Hangup of the spy leg that ChanSpy has not acted on yet (silent spied call)."""


@dataclass(frozen=True)
class MemberInfo:
    """A queue member as tests read it (`PbxSimulator.queue_members`)."""

    queue: str
    interface: str
    name: str
    penalty: int
    paused: bool
    reason: str
    dynamic: bool
    status: int
    in_call: bool
    calls_taken: int


def device_of(chan: Chan) -> str:
    """The device a channel belongs to: `Local/seat1@phones`, `PJSIP/seat1`."""
    return chan.name.rsplit("-", 1)[0]


def num_text(value: float) -> str:
    """A number as the dialplan writes it: `4`, `4.5`."""
    return str(int(value)) if float(value).is_integer() else str(value)


def float_or_none(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None
