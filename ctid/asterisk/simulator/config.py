"""What the simulated PBX is made of: queues, members, seats, AMI users, timings; `lab_config()` and the
builder from ctid's own configuration (`SimulatorConfig.from_ctid_config`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ctid.asterisk.simulator.ami_server import AmiUser, parse_classes

if TYPE_CHECKING:
    from ctid.config import Config

LAB_READ = "system,call,agent,user,dialplan,originate,reporting"
CONTRIB_READ = "call,agent,dialplan,reporting"
"""contrib's manager user: no `system` class (so no FullyBooted after Login)."""
CONTRIB_IGNORED = frozenset(
    {
        "Newexten", "DeviceStateChange", "NewConnectedLine", "RTCPSent", "RTCPReceived",
        "DTMFBegin", "DTMFEnd", "MusicOnHoldStart", "MusicOnHoldStop", "LocalOptimizationBegin",
        "LocalOptimizationEnd",
    }
)  # fmt: skip
"""contrib manager.conf's `!Event:` filters."""
LAB_BOOT_EPOCH = 1795358653.0
"""The lab Asterisk's `LoginTime` of its static members (its boot time), from the recordings."""


@dataclass(frozen=True)
class MemberSpec:
    """A static queue member as queues.conf declares it."""

    interface: str
    name: str
    penalty: int = 0
    state_interface: str = ""
    paused: bool = False
    reason: str = ""

    @property
    def device(self) -> str:
        return self.state_interface or default_state_interface(self.interface)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    members: tuple[MemberSpec, ...] = ()
    strategy: str = "rrmemory"
    timeout_s: int = 15
    retry_s: int = 1
    ringinuse: bool = False
    autofill: bool = True
    leavewhenempty: bool = False
    """Callers leave (QUEUESTATUS=LEAVEEMPTY, queue_log EXITEMPTY) once no member could take a
    call: every one paused, unavailable or invalid."""


@dataclass(frozen=True)
class PhoneSpec:
    """How an emulated seat phone behaves when it rings.

    `answer_after_s=None` never answers; `talk_s=None` talks until the other side hangs up;
    `busy` rejects calls with 486 (cause 17); `unavailable` makes the device UNAVAILABLE;
    `sends_audio=False` is a phone that sends no RTP (ChanSpy on its silent call ignores a Hangup
    of the spy leg until the call ends, as app_chanspy does).
    """

    answer_after_s: float | None = None
    talk_s: float | None = None
    busy: bool = False
    unavailable: bool = False
    sends_audio: bool = True


@dataclass(frozen=True)
class SeatSpec:
    """A seat: ctid's id for it, its interface, and its phone's behaviour at start."""

    id: str
    interface: str
    name: str
    phone: PhoneSpec = PhoneSpec()

    @property
    def device_key(self) -> str:
        """The name the phones dialplan / PJSIP endpoint knows the phone by (`seat1`)."""
        return device_key(self.interface)


@dataclass(frozen=True)
class SimulatorConfig:
    queues: tuple[QueueSpec, ...]
    seats: tuple[SeatSpec, ...] = ()
    users: tuple[AmiUser, ...] = (AmiUser("ctid", "ctidlab", parse_classes(LAB_READ)),)
    supervisor_endpoints: tuple[str, ...] = ("sup1",)
    """PJSIP endpoints of supervisor phones (`PJSIP/sup1`); `Local/<x>@supervisor` always works."""
    trunk_endpoint: str = "trunk"
    """The endpoint trunk calls come in on; empty: the caller's number (`PJSIP/13800138000-…`)."""
    callers_on_trunk: bool = False
    """`place_call` makes PJSIP trunk calls unless told otherwise (else lab Local/4000@hotline)."""
    dialplan_vars: tuple[tuple[str, str], ...] = ()
    """Set() right after CTID_QUEUE in `[hotline]` (contrib: CTID_ROUTE=queue)."""
    prompts: frozenset[str] | None = None
    """Sound files that exist (`ctid/welcome`); None: every prompt exists."""
    supervisor_answer_s: float = 0.0
    endpoint_names: dict[str, str] = field(default_factory=dict)
    """Caller id names of PJSIP endpoints (`sup1` → `Shift Leader`): a channel to one shows
    `<name> <endpoint>` unless an Originate gives its own CallerID."""
    """How long a supervisor's PJSIP phone rings before it answers an Originate."""
    queue_log_path: Path | None = None
    """Append app_queue's queue_log lines to this file (always kept in `PbxSimulator.queue_log`)."""
    host: str = "127.0.0.1"
    ami_port: int = 0
    hotline_context: str = "hotline"
    hotline_exten: str = "4000"
    default_queue: str = "ordinary"
    agi_url: str = "agi://127.0.0.1:4573/ivr"
    survey_agi_url: str = ""
    """contrib's survey: `Queue(q,c,...)`, and when the member hangs up the caller goes on to
    `AGI(<this>)` (QUEUESTATUS=CONTINUE), then Hangup. Empty: Queue without `c` (the recordings)."""
    queue_timeout_s: int = 120
    epoch_base: float = LAB_BOOT_EPOCH
    """Wall-clock epoch at simulator start: Uniqueid, Timestamp and LoginTime derive from it."""
    answer_media_delay_s: float = 0.5
    """Asterisk's Answer() waits up to 500 ms for media before the next priority runs."""
    prompt_s: float = 1.0
    """How long one STREAM FILE / SAY prompt plays."""
    sounds_dir: Path | None = None
    """None: every prompt exists and plays `prompt_s`. A directory: prompts are its files (a
    missing one fails like Asterisk's; a WAV plays its real length) — see `sounds.py`."""
    press_delay_s: float = 1.0
    """How long a simulated caller takes to press a key once an IVR command waits for one."""
    supervisor_stay_s: float = 60.0
    """The lab's `supervisor` context answers and waits this long (`Wait(60)`)."""
    login_fail_delay_s: float = 1.0
    agi_connect_timeout_s: float = 2.0
    queue_extensions: dict[str, str] = field(default_factory=dict)
    """Redirect targets `context,exten` → queue name (besides `<any>,<queue name>`)."""

    def with_port(self, port: int) -> SimulatorConfig:
        return replace(self, ami_port=port)

    @classmethod
    def from_ctid_config(
        cls, cfg: Config, agi_port: int | None = None, phone: PhoneSpec | None = None
    ) -> SimulatorConfig:
        """The PBX ctid's configuration describes: one static member per seat and queue tier;
        every seat phone starts as `phone` (default: never answers, like the lab's)."""
        seats = tuple(
            SeatSpec(id=s.id, interface=s.interface, name=s.name, phone=phone or PhoneSpec())
            for s in cfg.seats
        )
        queues = []
        for q in cfg.queues:
            members = tuple(
                MemberSpec(interface=s.interface, name=s.name, penalty=q.tiers[s.tier])
                for s in cfg.seats
                if s.tier in q.tiers
            )
            queues.append(QueueSpec(name=q.name, members=members))
        port = cfg.agi.listen_port if agi_port is None else agi_port
        sup = tuple(
            p.phone.split("/", 1)[1]
            for p in cfg.supervisors
            if p.phone.upper().startswith("PJSIP/")
        )
        return cls(
            queues=tuple(queues),
            seats=seats,
            users=(
                AmiUser(
                    cfg.ami.username,
                    cfg.ami.secret.get_secret_value(),
                    parse_classes(LAB_READ),
                ),
            ),
            supervisor_endpoints=sup or ("sup1",),
            default_queue=cfg.ivr.default_queue,
            agi_url=f"agi://{cfg.agi.listen_host}:{port}/ivr",
        )


def pjsip_lab_config(
    ami_port: int = 0,
    agi_port: int = 4573,
    agi_host: str = "127.0.0.1",
    queue_log_path: Path | None = None,
) -> SimulatorConfig:
    """The PBX of the PJSIP recordings (shared/ami-transcripts/pjsip): contrib's queues and
    dialplan, PJSIP/seat1..4 (shared lists all four, seats 3 and 4 at penalty 1), callers on the
    trunk endpoint named after their number, supervisor phone sup1 answering after 1 s."""
    seats = tuple(SeatSpec(f"seat{n}", f"PJSIP/seat{n}", f"Seat {n}") for n in (1, 2, 3, 4))

    def member(n: int, penalty: int = 0) -> MemberSpec:
        return MemberSpec(f"PJSIP/seat{n}", f"Seat {n}", penalty=penalty)

    return SimulatorConfig(
        # Asterisk walks its queue container in this order (shared, ordinary, expert)
        queues=(
            QueueSpec("shared", (member(1), member(2), member(3, 1), member(4, 1))),
            QueueSpec("ordinary", (member(1), member(2))),
            QueueSpec("expert", (member(3), member(4))),
        ),
        seats=seats,
        users=(AmiUser("ctid", "ctidlab", parse_classes(CONTRIB_READ), ignored=CONTRIB_IGNORED),),
        trunk_endpoint="",
        callers_on_trunk=True,
        dialplan_vars=(("CTID_ROUTE", "queue"),),
        supervisor_answer_s=1.0,
        endpoint_names={"sup1": "Shift Leader"},
        prompt_s=4.6,  # ctid/welcome in the lab
        ami_port=ami_port,
        agi_url=f"agi://{agi_host}:{agi_port}/ivr",
        queue_log_path=queue_log_path,
    )


def default_state_interface(interface: str) -> str:
    """`Local/seat1@phones/n` → `Local/seat1@phones`; `PJSIP/seat1` stays."""
    if interface.startswith("Local/") and interface.endswith("/n"):
        return interface[:-2]
    return interface


def device_key(interface: str) -> str:
    """`Local/seat1@phones/n` → `seat1`; `PJSIP/seat1` → `seat1`."""
    rest = interface.split("/", 1)[1] if "/" in interface else interface
    if interface.startswith("Local/"):
        return rest.split("@", 1)[0]
    return rest.split("/", 1)[0]


def lab_config(
    ami_port: int = 0, agi_port: int = 4573, agi_host: str = "127.0.0.1"
) -> SimulatorConfig:
    """The PBX that produced the recordings: seats 1,2 ordinary; 3,4 expert; user ctid/ctidlab."""

    def seat(n: int) -> SeatSpec:
        return SeatSpec(id=f"seat{n}", interface=f"Local/seat{n}@phones/n", name=f"Seat {n}")

    seats = tuple(seat(n) for n in (1, 2, 3, 4))

    def member(n: int) -> MemberSpec:
        return MemberSpec(interface=f"Local/seat{n}@phones/n", name=f"Seat {n}")

    return SimulatorConfig(
        queues=(
            QueueSpec("ordinary", (member(1), member(2))),
            QueueSpec("expert", (member(3), member(4))),
        ),
        seats=seats,
        ami_port=ami_port,
        agi_url=f"agi://{agi_host}:{agi_port}/ivr",
    )
