"""The telephony engine of the simulator: channels, the lab dialplan, app_queue, seat phones, ChanSpy.

Every event sequence here is copied from Asterisk 22.10.1 recordings (shared/ami-transcripts);
where the recordings show nothing (PJSIP seats, Redirect, queue timeout) the sequence follows the
same Asterisk code paths and says so. Time is the event loop's only.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ctid.asterisk.simulator.agi_client import AgiSession
from ctid.asterisk.simulator.config import (
    PhoneSpec,
    SimulatorConfig,
    default_state_interface,
    device_key,
)
from ctid.asterisk.simulator.model import (
    Attempt,
    Bridge,
    Chan,
    Member,
    Queue,
    QueueEntry,
    Round,
)
from ctid.asterisk.simulator.wire import (
    CAUSE_TEXT,
    DEVICE_STATUS,
    DOWN,
    PRIV_AGENT,
    PRIV_CALL,
    PRIV_DIALPLAN,
    RING,
    RINGING,
    UP,
    Pairs,
    encode_event,
)

log = structlog.get_logger(__name__)

Broadcast = Callable[[str, bytes], None]

DTMF_GAP_S = 0.2
"""SendDTMF delivers a digit ~200 ms after it starts (recordings: 2.0111 → 2.2116)."""
SENDDTMF_S = 0.45
"""SendDTMF of one digit returns after ~450 ms (recordings: 2.0111 → 2.4626)."""
SPY_SCAN_S = 0.1
"""ChanSpy waits 100 ms (ast_waitfordigit) before each scan for channels."""
RECHECK_S = 1.0
"""app_queue's RECHECK: a caller not at its turn re-checks once a second."""
NEVER_S = 300.0
"""The lab phone that never answers runs `Wait(300)`."""


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
        self._call: Call | None = None

    def hangup(self) -> None:
        """The caller hangs up now."""
        call = self._call
        if call is not None and not self.ended.is_set():
            call.engine.caller_hangs_up(call)

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


class Call:
    """One hotline call inside the engine."""

    def __init__(self, engine: Engine, public: SimCall, plan: CallerPlan) -> None:
        self.engine = engine
        self.public = public
        self.plan = plan
        public._call = self
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
        self.agi: AgiSession | None = None
        self.in_agi = False
        self.program: asyncio.Task[None] | None = None
        self.caller_task: asyncio.Task[None] | None = None
        self.timers: list[asyncio.TimerHandle] = []
        self.completed = False  # AgentComplete was sent

    @property
    def ended(self) -> bool:
        return self.phase == "done"


class SpySession:
    def __init__(self, spyer: Chan, prefix: str, options: str) -> None:
        self.spyer = spyer
        self.prefix = prefix
        self.options = options
        self.target: Chan | None = None
        self.stopped: asyncio.Event = asyncio.Event()


@dataclass(frozen=True)
class MemberInfo:
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


class Engine:
    """All PBX state and behaviour. Methods that emit events are synchronous; waits are tasks."""

    def __init__(self, cfg: SimulatorConfig, broadcast: Broadcast) -> None:
        self.cfg = cfg
        self.broadcast = broadcast
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.boot = self.t0
        self.uniq_seq = 0
        self.local_seq = 0
        self.pjsip_seq = 0
        self.thread_seq = 0
        self.channels: dict[str, Chan] = {}
        self.queues: dict[str, Queue] = {}
        self.devstate: dict[str, str] = {}
        self.db: dict[tuple[str, str], str] = {}
        self.phones: dict[str, PhoneSpec] = {}
        self.seat_ids: dict[str, str] = {}  # device key → ctid seat id
        self.calls: list[Call] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self.timers: set[asyncio.TimerHandle] = set()
        self._timers_pruned_at = 256
        self.rng = random.Random(0)
        self._avail_dirty: set[str] = set()
        self.load_config(initial=True)

    # ------------------------------------------------------------------ clock and ids
    def now(self) -> float:
        return self.loop.time()

    def epoch(self) -> float:
        return self.cfg.epoch_base + (self.loop.time() - self.t0)

    def set_epoch(self, epoch: float) -> None:
        """From now on the simulated wall clock reads `epoch` at this loop instant."""
        self.t0 = self.loop.time() - (epoch - self.cfg.epoch_base)

    def epoch_int(self) -> int:
        return int(self.epoch())

    def uptime(self) -> int:
        return int(self.loop.time() - self.boot)

    def next_thread_id(self) -> int:
        self.thread_seq += 1
        return self.thread_seq * 4096

    def _uniqueid(self) -> str:
        uid = f"{self.epoch_int()}.{self.uniq_seq}"
        self.uniq_seq += 1
        return uid

    def spawn(self, coro: Coroutine[Any, Any, None], name: str = "") -> asyncio.Task[None]:
        task = self.loop.create_task(coro, name=name or None)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sim_task_failed", task=task.get_name(), exc_info=task.exception())

    def later(self, delay: float, fn: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
        """A timer the engine owns (cancelled on restart/stop)."""
        handle: asyncio.TimerHandle

        def guarded() -> None:
            self.timers.discard(handle)
            try:
                fn(*args)
            except Exception:  # one timer ends here; the simulator keeps running
                log.exception("sim_timer_failed", fn=getattr(fn, "__name__", str(fn)))

        handle = self.loop.call_later(delay, guarded)
        self.timers.add(handle)
        if len(self.timers) > self._timers_pruned_at * 2:
            # timers cancelled elsewhere (round timeouts, caller plans) never fire: drop them
            self.timers = {h for h in self.timers if not h.cancelled()}
            self._timers_pruned_at = max(256, len(self.timers))
        return handle

    # ------------------------------------------------------------------ config / reload
    def load_config(self, initial: bool = False) -> None:
        """(Re)build queues from config, as Asterisk does at boot: dynamic members are gone."""
        cfg = self.cfg
        boot_epoch = self.epoch_int()
        if initial:
            for seat in cfg.seats:
                self.phones[seat.device_key] = seat.phone
                self.seat_ids[seat.device_key] = seat.id
                self._write_phone_db(seat.device_key, seat.phone)
        self.queues = {}
        self.devstate = {}
        for spec in cfg.queues:
            q = Queue(
                name=spec.name,
                strategy=spec.strategy,
                timeout_s=spec.timeout_s,
                retry_s=spec.retry_s,
                ringinuse=spec.ringinuse,
                autofill=spec.autofill,
            )
            for ms in spec.members:
                m = Member(
                    queue=spec.name,
                    interface=ms.interface,
                    name=ms.name,
                    state_interface=ms.device,
                    penalty=ms.penalty,
                    dynamic=False,
                    login_time=boot_epoch,
                )
                m.paused = ms.paused
                m.reason = ms.reason if ms.paused else ""
                m.status = self._device_status(m.state_interface)
                q.members.append(m)
                self.devstate[f"Queue:{q.name}_pause_{m.interface}"] = (
                    "INUSE" if m.paused else "NOT_INUSE"
                )
            self.devstate[f"Queue:{q.name}"] = "NOT_INUSE"
            self.queues[q.name] = q

    def _write_phone_db(self, key: str, phone: PhoneSpec) -> None:
        for family, value in (("answer", phone.answer_after_s), ("talk", phone.talk_s)):
            if value is None:
                self.db.pop((family, key), None)
            else:
                self.db[(family, key)] = _num(value)

    def set_phone(self, key: str, phone: PhoneSpec) -> None:
        old = self.phones.get(key, PhoneSpec())
        self.phones[key] = phone
        self._write_phone_db(key, phone)
        if old.unavailable != phone.unavailable:
            for device in (f"PJSIP/{key}", f"Local/{key}@phones"):
                if self._members_on(device):
                    if phone.unavailable:
                        self.set_device_state(device, "UNAVAILABLE")
                    else:
                        self.set_device_state(device, self._idle_state(device))

    def phone(self, key: str) -> PhoneSpec:
        spec = self.phones.get(key, PhoneSpec())
        answer = self.db.get(("answer", key))
        talk = self.db.get(("talk", key))
        return PhoneSpec(
            answer_after_s=_float_or_none(answer),
            talk_s=_float_or_none(talk),
            busy=spec.busy,
            unavailable=spec.unavailable,
        )

    def seat_id(self, key: str) -> str:
        return self.seat_ids.get(key, key)

    # ------------------------------------------------------------------ events
    def ev(self, name: str, priv: str, body: Pairs) -> None:
        self.broadcast(priv, encode_event(name, priv, f"{self.epoch():.6f}", body))

    def ev_chan(
        self, name: str, chan: Chan, extra: Pairs | None = None, priv: str = PRIV_CALL
    ) -> None:
        body = chan.block()
        if extra:
            body.extend(extra)
        self.ev(name, priv, body)

    def newexten(self, chan: Chan, app: str, data: str, priority: int | None = None) -> None:
        if priority is not None:
            chan.priority = priority
        chan.app = app
        chan.appdata = data
        self.ev_chan(
            "Newexten",
            chan,
            [("Extension", chan.exten), ("Application", app), ("AppData", data)],
            PRIV_DIALPLAN,
        )

    def varset(self, chan: Chan, name: str, value: str) -> None:
        chan.vars[name] = value
        self.ev_chan("VarSet", chan, [("Variable", name), ("Value", value)], PRIV_DIALPLAN)

    def newstate(self, chan: Chan, state: int) -> None:
        chan.state = state
        self.ev_chan("Newstate", chan)

    def newcallerid(self, chan: Chan) -> None:
        self.ev_chan(
            "NewCallerid", chan, [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")]
        )

    def newconnectedline(self, chan: Chan) -> None:
        self.ev_chan("NewConnectedLine", chan)

    def soft_hangup_request(self, chan: Chan, cause: int) -> None:
        self.ev_chan("SoftHangupRequest", chan, [("Cause", str(cause))])

    def hangup_request(self, chan: Chan, cause: int) -> None:
        self.ev_chan("HangupRequest", chan, [("Cause", str(cause))])

    def hangup_event(self, chan: Chan, cause: int) -> None:
        """The channel is gone: emit Hangup and forget it."""
        if not chan.alive:
            return
        chan.alive = False
        chan.hangup_cause = cause
        self.ev_chan(
            "Hangup", chan, [("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))]
        )
        self._forget(chan)

    def _forget(self, chan: Chan) -> None:
        chan.alive = False
        self.channels.pop(chan.name, None)
        if chan.timeout_handle is not None:
            chan.timeout_handle.cancel()
            chan.timeout_handle = None
        if chan.dtmf_waiter is not None and not chan.dtmf_waiter.done():
            chan.dtmf_waiter.set_result("")
        if chan.task is not None and chan.task is not asyncio.current_task():
            chan.task.cancel()
        for spy in list(chan.spied_by):
            self._spy_target_gone(spy)

    def dial_event(
        self,
        name: str,
        caller: Chan | None,
        dest: Chan | Pairs,
        extra: Pairs,
    ) -> None:
        body: Pairs = caller.block() if caller is not None and caller.alive else []
        body.extend(dest.block("Dest") if isinstance(dest, Chan) else dest)
        body.extend(extra)
        self.ev(name, PRIV_CALL, body)

    def local_bridge(self, one: Chan, two: Chan, context: str, exten: str, optimize: bool) -> None:
        body = one.block("LocalOne") + two.block("LocalTwo")
        body += [
            ("Context", context),
            ("Exten", exten),
            ("LocalOptimization", "Yes" if optimize else "No"),
        ]
        self.ev("LocalBridge", PRIV_CALL, body)

    def dsc(self, device: str, state: str) -> None:
        self.ev("DeviceStateChange", PRIV_CALL, [("Device", device), ("State", state)])

    def cached_dsc(self, device: str, state: str) -> None:
        """Cachable devices (Queue:*, PJSIP/*) only publish when their state changes."""
        if self.devstate.get(device) != state:
            self.devstate[device] = state
            self.dsc(device, state)

    def prime_device_state(self, device: str, state: str | None) -> None:
        """Set what the device state cache holds without an event (a PBX that ran before)."""
        if state is None:
            self.devstate.pop(device, None)
        else:
            self.devstate[device] = state

    # ------------------------------------------------------------------ device / member state
    def _members_on(self, device: str) -> list[Member]:
        return [m for q in self.queues.values() for m in q.members if m.state_interface == device]

    def _device_status(self, device: str) -> int:
        key = device_key(device)
        if self.phones.get(key, PhoneSpec()).unavailable:
            return DEVICE_STATUS["UNAVAILABLE"]
        for chan in self.channels.values():
            if _device_of(chan) == device:
                if device.startswith("Local/"):
                    return DEVICE_STATUS["INUSE"]
                return DEVICE_STATUS["RINGING" if chan.state in (RING, RINGING) else "INUSE"]
        return DEVICE_STATUS["NOT_INUSE"]

    def _idle_state(self, device: str) -> str:
        """The state a device settles in once a call on it ended: UNAVAILABLE for an unreachable
        phone, INUSE for a PJSIP device still carrying another channel, else NOT_INUSE."""
        if self.phones.get(device_key(device), PhoneSpec()).unavailable:
            return "UNAVAILABLE"
        if not device.startswith("Local/") and any(
            _device_of(c) == device for c in self.channels.values()
        ):
            return "INUSE"
        return "NOT_INUSE"

    def set_device_state(self, device: str, state: str) -> None:
        """A device changed state: DeviceStateChange, then QueueMemberStatus for every member on
        it whose status changed, then the queues' `_avail` device state."""
        if device.startswith("Local/"):
            self.dsc(device, state)  # Local devices are not cachable: every change is published
        else:
            if self.devstate.get(device) == state:
                return
            self.devstate[device] = state
            self.dsc(device, state)
        status = DEVICE_STATUS.get(state, 0)
        touched: list[Queue] = []
        for q in self.queues.values():
            for m in q.members:
                if m.state_interface == device and m.status != status:
                    m.status = status
                    self.ev("QueueMemberStatus", PRIV_AGENT, m.event_fields())
                    touched.append(q)
        for q in touched:
            self._schedule_avail(q)

    def _schedule_avail(self, q: Queue) -> None:
        """Asterisk computes `Queue:<q>_avail` on its device-state thread, after the burst of
        changes that triggered it: a member that is rung while another is released never shows
        a transient INUSE."""
        if not self._avail_dirty:
            self.loop.call_soon(self._flush_avail)
        self._avail_dirty.add(q.name)

    def _flush_avail(self) -> None:
        dirty, self._avail_dirty = self._avail_dirty, set()
        for name in sorted(dirty):
            q = self.queues.get(name)
            if q is not None:
                self.update_avail(q)

    def update_avail(self, q: Queue) -> None:
        avail = any(m.available for m in q.members)
        self.cached_dsc(f"Queue:{q.name}_avail", "NOT_INUSE" if avail else "INUSE")

    # ------------------------------------------------------------------ channel creation
    def new_local_pair(
        self, exten: str, context: str, linkedid: str | None = None, cid: tuple[str, str] = ("", "")
    ) -> tuple[Chan, Chan]:
        base = f"Local/{exten}@{context}-{self.local_seq:08x}"
        self.local_seq += 1
        now, ep = self.now(), self.epoch()
        uid1 = self._uniqueid()
        one = Chan(f"{base};1", "Local", uid1, linkedid or uid1, DOWN, context, exten, now, ep)
        uid2 = self._uniqueid()
        two = Chan(f"{base};2", "Local", uid2, one.linkedid, RING, context, exten, now, ep)
        one.other, two.other = two, one
        for c in (one, two):
            c.cid_num, c.cid_name = cid
            self.channels[c.name] = c
        self.ev_chan("Newchannel", one)
        self.ev_chan("Newchannel", two)
        return one, two

    def new_pjsip(
        self,
        endpoint: str,
        state: int,
        context: str,
        exten: str,
        linkedid: str | None = None,
        cid: tuple[str, str] = ("", ""),
    ) -> Chan:
        name = f"PJSIP/{endpoint}-{self.pjsip_seq:08x}"
        self.pjsip_seq += 1
        uid = self._uniqueid()
        chan = Chan(
            name, "PJSIP", uid, linkedid or uid, state, context, exten, self.now(), self.epoch()
        )
        chan.cid_num, chan.cid_name = cid
        self.channels[name] = chan
        self.ev_chan("Newchannel", chan)
        return chan

    # ------------------------------------------------------------------ variables
    def set_var(self, chan: Chan, name: str, value: str) -> None:
        self.varset(chan, name, value)
        call = chan.call
        if call is not None and chan is call.two:
            call.public.ivr_vars[name] = value

    def get_var(self, chan: Chan, name: str) -> str | None:
        upper = name.upper()
        if upper in ("CALLERID(NUM)", "CALLERID(NUMBER)"):
            return chan.cid_num
        if upper == "CALLERID(NAME)":
            return chan.cid_name
        if upper == "CHANNEL":
            return chan.name
        if upper == "UNIQUEID":
            return chan.uniqueid
        if upper == "EXTEN":
            return chan.exten
        if upper == "CONTEXT":
            return chan.context
        return chan.vars.get(name)

    def substitute(self, chan: Chan, text: str) -> str:
        out = []
        i = 0
        while i < len(text):
            if text.startswith("${", i):
                end = text.find("}", i)
                if end > 0:
                    out.append(self.get_var(chan, text[i + 2 : end]) or "")
                    i = end + 1
                    continue
            out.append(text[i])
            i += 1
        return "".join(out)

    # ================================================================== hotline calls
    def start_hotline_call(
        self,
        public: SimCall,
        plan: CallerPlan,
        variables: list[tuple[str, str]],
        trunk: bool = False,
        on_answer: Callable[[Call], None] | None = None,
    ) -> Call:
        """Create the caller's channels like the lab's Originate (or a trunk call) and run the
        hotline dialplan on them."""
        call = Call(self, public, plan)
        self.calls.append(call)
        cid = (public.number, public.name)
        cfg = self.cfg
        if trunk:
            two = self.new_pjsip(
                cfg.trunk_endpoint, RING, cfg.hotline_context, cfg.hotline_exten, cid=cid
            )
            two.conn_num, two.conn_name = "", ""
            two.call, two.role = call, "trunk"
            call.two = two
            for name, value in variables:
                self.varset(two, name, value)
        else:
            one, two = self.new_local_pair(cfg.hotline_exten, cfg.hotline_context)
            one.call, two.call = call, call
            one.role, two.role = "caller_one", "caller_two"
            call.one, call.two = one, two
            self.newexten(one, "AppDial2", "(Outgoing Line)")
            for name, value in reversed(variables):
                self.varset(one, name, value)
            if public.number or public.name:
                one.cid_num, one.cid_name = cid
                self.newcallerid(one)
                one.conn_num, one.conn_name = cid
                self.newconnectedline(one)
            for name, value in variables:
                self.varset(two, name, value)
            if public.number or public.name:
                two.cid_num, two.cid_name = cid
                two.conn_num, two.conn_name = cid
                self.newcallerid(two)
                self.newconnectedline(two)
            self.local_bridge(one, two, cfg.hotline_context, cfg.hotline_exten, optimize=True)
            self.dial_event(
                "DialBegin",
                None,
                one,
                [("DialString", f"{cfg.hotline_exten}@{cfg.hotline_context}")],
            )
        public.caller_channel = call.two.name
        public.originator_channel = call.one.name if call.one else ""
        public.uniqueid = call.two.uniqueid
        public.linkedid = call.two.linkedid
        public.channels.extend(c.name for c in (call.one, call.two) if c is not None)
        # hotline priority 1 (NoOp) and 2 (Answer) run at once
        two = call.two
        self.newexten(
            two,
            "NoOp",
            f'hotline call from "{two.cid_name or "unknown"}" <{two.cid_num or "unknown"}>',
            1,
        )
        self.newexten(two, "Answer", "", 2)
        self.newstate(two, UP)
        if call.one is not None:
            one = call.one
            self.newstate(one, UP)
            self.dsc(_device_of(one), "INUSE")
            self.dsc(_device_of(one), "INUSE")
            self.dial_event("DialEnd", None, one, [("DialStatus", "ANSWER")])
        else:
            self.cached_dsc(_device_of(two), "INUSE")
        self._start_caller_side(call)
        if on_answer is not None:
            on_answer(call)
        call.program = self.spawn(self._hotline_program(call), f"hotline-{two.name}")
        two.task = call.program
        return call

    def _start_caller_side(self, call: Call) -> None:
        plan = call.plan
        one = call.one
        if plan.mode == "lab" and one is not None:
            one.context, one.exten = "callerside", "s"
            self.newexten(one, "Wait", "2", 1)
            call.caller_task = self.spawn(self._lab_caller(call), f"callerside-{one.name}")
            one.task = call.caller_task
        elif plan.mode == "app" and one is not None:
            one.app, one.appdata = plan.app, plan.app_data
            call.caller_task = self.spawn(self._app_caller(call), f"app-{one.name}")
            one.task = call.caller_task
        else:
            if one is not None:
                one.context, one.exten = "callerside", "s"
                one.priority = 1
                one.app, one.appdata = "Wait", ""
            if plan.hangup_after_s is not None:
                call.timers.append(self.later(plan.hangup_after_s, self._plan_hangup, call, "any"))

    def _plan_hangup(self, call: Call, when: str) -> None:
        if call.ended:
            return
        if when == "ivr" and call.phase != "dialplan":
            return
        if when == "talk" and call.phase != "bridged":
            return
        self.caller_hangs_up(call)

    async def _lab_caller(self, call: Call) -> None:
        """The lab's `callerside` context: Wait(2), SendDTMF(${IVR}), Wait(${STAY}), Hangup."""
        one = call.one
        assert one is not None
        await asyncio.sleep(2)
        self.newexten(one, "SendDTMF", call.plan.lab_ivr, 2)
        for i, digit in enumerate(call.plan.lab_ivr):
            self.later(DTMF_GAP_S + i * SENDDTMF_S, self.deliver_dtmf, call.two, digit)
        await asyncio.sleep(SENDDTMF_S * max(1, len(call.plan.lab_ivr)))
        self.newexten(one, "Wait", _num(call.plan.lab_stay), 3)
        await asyncio.sleep(call.plan.lab_stay)
        self.newexten(one, "Hangup", "", 4)
        one.task = None
        self.caller_hangs_up(call)

    async def _app_caller(self, call: Call) -> None:
        """An Originate with Application: the app runs on ;1, then ;1 hangs up (cause 0)."""
        plan = call.plan
        if plan.app.lower() == "wait":
            await asyncio.sleep(_float_or_none(plan.app_data) or 0.0)
        else:
            await asyncio.Event().wait()
        assert call.one is not None
        call.one.task = None
        self.caller_hangs_up(call, cause=0, soft=False)

    # ------------------------------------------------------------------ hotline dialplan
    async def _hotline_program(self, call: Call) -> None:
        two = call.two
        cfg = self.cfg
        await asyncio.sleep(cfg.answer_media_delay_s)
        self.newexten(two, "Set", f"CTID_QUEUE={cfg.default_queue}", 3)
        self.set_var(two, "CTID_QUEUE", cfg.default_queue)
        self.newexten(two, "AGI", cfg.agi_url, 4)
        agi = AgiSession(self, call, two, cfg.agi_url)
        call.agi = agi
        call.in_agi = True
        if call.plan.hangup_in_ivr_after_s is not None:
            call.timers.append(
                self.later(call.plan.hangup_in_ivr_after_s, self._plan_hangup, call, "ivr")
            )
        try:
            status = await agi.run()
        finally:
            call.in_agi = False
            call.agi = None
        if two.dead:
            self.varset(two, "AGISTATUS", "HANGUP")
            self._finish_dead_caller(call)
            return
        self.varset(two, "AGISTATUS", status)
        queue = two.vars.get("CTID_QUEUE", cfg.default_queue)
        self.newexten(two, "NoOp", f"AGISTATUS={status} queue={queue}", 5)
        if two.vars.get("CTID_ROUTE", "").lower() == "hangup":
            self.newexten(two, "Hangup", "", 6)
            self._end_dialplan(call, "routed_hangup", soft=True)
            return
        self.newexten(two, "Queue", f"{queue},,,,{cfg.queue_timeout_s}", 6)
        await self._queue_app(call, queue, cfg.queue_timeout_s)

    def _end_dialplan(self, call: Call, outcome: str, soft: bool) -> None:
        """The caller's dialplan ended (Hangup() or fell off the end): tear the caller down."""
        two = call.two
        two.task = None
        if soft:
            self.soft_hangup_request(two, 16)
        self._teardown_caller_channels(call, two_first=True, cause=16)
        self._finish(call, outcome)

    def _teardown_caller_channels(self, call: Call, two_first: bool, cause: int) -> None:
        two, one = call.two, call.one
        if two_first:
            if one is not None and one.alive:
                self.hangup_request(one, cause)
            self.hangup_event(two, cause)
            if one is not None and one.alive:
                self.soft_hangup_request(one, 16)
                self.hangup_event(one, cause)
        else:
            if one is not None and one.alive:
                self.hangup_event(one, cause)
            self.hangup_event(two, cause)
        self._caller_devstate(call)

    def _caller_devstate(self, call: Call) -> None:
        if call.one is not None:
            device = _device_of(call.one)
            self.dsc(device, "NOT_INUSE")
            self.dsc(device, "NOT_INUSE")
        else:
            self._trunk_idle(call)

    def _trunk_idle(self, call: Call) -> None:
        device = _device_of(call.two)
        self.cached_dsc(device, self._idle_state(device))

    def _finish(self, call: Call, outcome: str) -> None:
        if call.phase == "done":
            return
        call.phase = "done"
        for timer in call.timers:
            timer.cancel()
        call.timers.clear()
        public = call.public
        if public.outcome is None:
            public.outcome = outcome
        public.ended.set()
        with contextlib.suppress(ValueError):
            self.calls.remove(call)
        for task in (call.program, call.caller_task):
            if task is not None and task is not asyncio.current_task() and not task.done():
                task.cancel()

    # ------------------------------------------------------------------ IVR input
    def deliver_dtmf(self, chan: Chan, digit: str) -> None:
        """A DTMF digit arrives on `chan`; it is lost unless a command is reading (as in AGI)."""
        if not chan.alive or chan.dead:
            return
        waiter = chan.dtmf_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(digit)

    def _script_press(self, call: Call, chan: Chan, kind: str, escape: str) -> None:
        script = call.plan.script
        if call.plan.mode != "sim" or script is None:
            return
        consumed, entry = script.take(kind, escape)
        if not consumed or not entry:
            return
        one = call.one
        for i, digit in enumerate(entry):
            self.later(self.cfg.press_delay_s + i * DTMF_GAP_S, self._press, call, chan, one, digit)

    def _press(self, call: Call, chan: Chan, one: Chan | None, digit: str) -> None:
        if call.ended or not chan.alive:
            return
        if one is not None and one.alive:
            self.newexten(one, "SendDTMF", digit, one.priority + 1)
        self.deliver_dtmf(chan, digit)

    async def _next_digit(self, chan: Chan, timeout_s: float | None) -> str | None:
        """Next digit: '' on timeout, None when the channel hung up."""
        if chan.dead or not chan.alive:
            return None
        fut: asyncio.Future[str] = self.loop.create_future()
        chan.dtmf_waiter = fut
        try:
            if timeout_s is None:
                return await fut or (None if chan.dead else "")
            try:
                got = await asyncio.wait_for(asyncio.shield(fut), timeout_s)
            except TimeoutError:
                return ""
            if not got and (chan.dead or not chan.alive):
                return None
            return got
        finally:
            chan.dtmf_waiter = None

    async def read_digit(
        self, call: Call, chan: Chan, kind: str, escape: str, timeout_ms: int
    ) -> str | None:
        """WAIT FOR DIGIT: the digit, '' on timeout, None on hangup."""
        self._script_press(call, chan, kind, escape or "0123456789*#")
        timeout = None if timeout_ms < 0 else timeout_ms / 1000
        while True:
            got = await self._next_digit(chan, timeout)
            if got is None or got == "" or got in (escape or "0123456789*#"):
                return got

    async def play_prompt(
        self,
        call: Call,
        chan: Chan,
        escape: str,
        from_script: bool = True,
        length_s: float | None = None,
    ) -> tuple[str | None, int]:
        """STREAM FILE: ('', samples) when played out, (digit, samples) when interrupted,
        (None, 0) on hangup."""
        if escape and from_script:
            self._script_press(call, chan, "stream", escape)
        start = self.now()
        length = self.cfg.prompt_s if length_s is None else length_s
        while True:
            left = length - (self.now() - start)
            if left <= 0:
                return "", int(length * 8000)
            got = await self._next_digit(chan, left)
            if got is None:
                return None, 0
            if got and got in escape:
                return got, int((self.now() - start) * 8000)
            if got == "":
                return "", int(length * 8000)

    async def read_data(
        self,
        call: Call,
        chan: Chan,
        timeout_ms: int,
        max_digits: int,
        prompt_s: float | None = None,
    ) -> tuple[str | None, bool]:
        """GET DATA: (digits, timed_out); (None, False) on hangup."""
        self._script_press(call, chan, "data", "0123456789*#")
        digits = ""
        # the caller's whole entry was already scheduled above; the prompt just listens
        first, _ = await self.play_prompt(
            call, chan, "0123456789*#", from_script=False, length_s=prompt_s
        )
        if first is None:
            return None, False
        if first:
            if first == "#":
                return digits, False
            digits += first
        while len(digits) < max_digits:
            got = await self._next_digit(chan, timeout_ms / 1000)
            if got is None:
                return None, False
            if got == "":
                return digits, True
            if got == "#":
                return digits, False
            digits += got
        return digits, False

    async def agi_exec(self, call: Call, chan: Chan, app: str, data: str) -> int:
        low = app.lower()
        if low == "set":
            name, _, value = data.partition("=")
            self.set_var(chan, name.strip(), value)
            return 0
        if low in ("playback", "background"):
            if chan.dead:
                return -1
            got, _ = await self.play_prompt(call, chan, "")
            return -1 if got is None else 0
        if low == "wait":
            await asyncio.sleep(_float_or_none(data) or 0.0)
            return -1 if chan.dead else 0
        if low == "hangup":
            self.agi_hangup(call, chan)
            return -1
        if low in ("noop", "verbose", "log", "answer", "progress", "ringing", "userevent"):
            return 0
        return -2

    def agi_hangup(self, call: Call, chan: Chan) -> None:
        """The IVR hung the caller up (AGI HANGUP)."""
        if chan.dead or not chan.alive:
            return
        self.soft_hangup_request(chan, 16)
        chan.soft_hangup_sent = True
        chan.dead = True
        chan.hangup_cause = 16
        if call.public.outcome is None:
            call.public.outcome = "routed_hangup"

    # ------------------------------------------------------------------ caller hangs up
    def caller_hangs_up(self, call: Call, cause: int = 16, soft: bool = True) -> None:
        """The caller's own side hangs up (callerside Hangup(), an app ending, a trunk BYE)."""
        if call.ended:
            return
        one, two = call.one, call.two
        phase = call.phase
        if phase == "bridged":
            self._caller_hangup_bridged(call, cause, soft)
            return
        if one is not None and one.alive:
            if soft:
                self.soft_hangup_request(one, cause)
            self.hangup_request(two, cause)
            self.hangup_event(one, cause)
            self.dsc(_device_of(one), "NOT_INUSE")
        else:
            self.hangup_request(two, cause)
        if phase == "queue":
            self._abandon(call, cause)
            return
        # still in the dialplan (IVR): the AGI learns it, the channel goes when the AGI ends
        two.dead = True
        two.hangup_cause = cause
        if call.public.outcome is None:
            call.public.outcome = "ivr_hangup"
        if call.in_agi and call.agi is not None:
            self.deliver_dtmf_hangup(two)
            call.agi.channel_died()
            return
        self._finish_dead_caller(call)

    def deliver_dtmf_hangup(self, chan: Chan) -> None:
        waiter = chan.dtmf_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result("")

    def _finish_dead_caller(self, call: Call) -> None:
        """The hung-up caller's dialplan channel finishes (after its AGI, if any)."""
        two = call.two
        two.task = None
        if not two.soft_hangup_sent:
            self.soft_hangup_request(two, 16)
        one = call.one
        if one is not None and one.alive:
            self.hangup_request(one, two.hangup_cause or 16)
            self.hangup_event(two, two.hangup_cause)
            self.soft_hangup_request(one, 16)
            self.hangup_event(one, two.hangup_cause)
            self.dsc(_device_of(one), "NOT_INUSE")
            self.dsc(_device_of(one), "NOT_INUSE")
        else:
            self.hangup_event(two, two.hangup_cause)
            if one is not None:
                self.dsc(_device_of(one), "NOT_INUSE")
            else:
                self._trunk_idle(call)
        self._finish(call, call.public.outcome or "ivr_hangup")

    # ================================================================== app_queue
    async def _queue_app(self, call: Call, qname: str, timeout_s: int) -> None:
        two = call.two
        q = self.queues.get(qname)
        if q is None:
            # Queue() on a queue that does not exist returns at once (QUEUESTATUS=UNKNOWN)
            self.varset(two, "QUEUESTATUS", "UNKNOWN")
            self._end_dialplan(call, "timeout", soft=False)
            return
        for name in (
            "ANSWEREDTIME",
            "ANSWEREDTIME_MS",
            "DIALEDTIME",
            "DIALEDTIME_MS",
            "QUEUEWAIT",
            "QUEUEWAIT_MS",
        ):
            self.varset(two, name, "")
        entry = QueueEntry(
            call=call,
            chan=two,
            start=self.now(),
            start_epoch=self.epoch(),
            expire=self.now() + timeout_s,
            original_position=len(q.callers) + 1,
        )
        entry.expire_epoch = int(entry.start_epoch) + timeout_s
        q.callers.append(entry)
        call.queue, call.entry, call.phase = q, entry, "queue"
        call.public.queue = q.name
        self.cached_dsc(f"Queue:{q.name}", "RINGING")
        self.ev_chan(
            "QueueCallerJoin",
            two,
            [("Queue", q.name), ("Position", str(len(q.callers))), ("Count", str(len(q.callers)))],
            PRIV_AGENT,
        )
        self.ev_chan("MusicOnHoldStart", two, [("Class", "default")])
        call.public.queued.set()
        while True:
            if self.now() >= entry.expire:
                self._queue_timeout(call)
                return
            if not self._is_our_turn(q, entry):
                await asyncio.sleep(min(RECHECK_S, max(0.0, entry.expire - self.now())))
                continue
            outcome = await self._try_calling(call, q, entry)
            if outcome == "answered":
                await asyncio.Event().wait()  # the bridge ends the call; this task is cancelled
                return
            left = entry.expire - self.now()
            if left <= 0:
                continue
            await asyncio.sleep(min(float(q.retry_s), left))

    def _is_our_turn(self, q: Queue, entry: QueueEntry) -> bool:
        avl = 0
        for m in q.members:
            if m.available:
                avl += 1
                if not q.autofill or q.strategy == "ringall":
                    break
        idx = 0
        for other in q.callers:
            if other is entry:
                break
            if idx >= avl:
                break
            if not other.pending:
                idx += 1
        return idx < avl and (q.autofill or q.callers.index(entry) == 0)

    def _metric(self, q: Queue, m: Member, pos: int) -> int:
        strategy = q.strategy
        if strategy in ("rrmemory", "rrordered", "roundrobin"):
            if pos < q.rrpos:
                metric = 1000 + pos
            else:
                if pos > q.rrpos:
                    q.wrapped = True
                metric = pos
        elif strategy == "linear":
            metric = pos
        elif strategy == "leastrecent":
            metric = m.last_call
        elif strategy == "fewestcalls":
            metric = m.calls_taken
        elif strategy == "random":
            metric = self.rng.randrange(1000)
        else:  # ringall
            metric = 0
        return metric + m.penalty * 1000000

    def _store_next_rr(self, q: Queue, attempts: list[Attempt]) -> None:
        best = _find_best(attempts)
        if best is not None:
            q.rrpos = best.metric % 1000
        elif q.wrapped:
            q.rrpos = 0
        else:
            q.rrpos += 1
        q.wrapped = False

    async def _try_calling(self, call: Call, q: Queue, entry: QueueEntry) -> str:
        q.wrapped = False
        attempts = [Attempt(m, self._metric(q, m, pos)) for pos, m in enumerate(q.members)]
        now_int = self.epoch_int()
        left = entry.expire_epoch - now_int
        to_ms = left * 1000 if left <= q.timeout_s else q.timeout_s * 1000
        if to_ms <= 0:
            return "timeout"
        rnd = Round(attempts, self.now(), to_ms, self.loop.create_future())
        rnd.starttime = now_int
        call.round = rnd
        self._ring_one(call, q, rnd)
        if q.strategy in ("rrmemory", "rrordered"):
            self._store_next_rr(q, attempts)
        if not rnd.ringing() and not rnd.done.done():
            call.round = None
            return "none"
        rnd.timer = self.later(to_ms / 1000, self._round_timeout, call, rnd)
        try:
            return await rnd.done
        finally:
            if rnd.timer is not None:
                rnd.timer.cancel()
            if call.round is rnd:
                call.round = None

    def _ring_one(self, call: Call, q: Queue, rnd: Round) -> bool:
        while True:
            best = _find_best(rnd.attempts)
            if best is None:
                return False
            if q.strategy == "ringall":
                rang = False
                for a in rnd.attempts:
                    if a.stillgoing and a.leg is None and not a.dialed and a.metric <= best.metric:
                        rang = self._ring_entry(call, q, a, rnd) or rang
                if rang:
                    return True
                continue
            if self._ring_entry(call, q, best, rnd):
                return True

    def _can_ring(self, q: Queue, m: Member) -> bool:
        if m.paused:
            return False
        if m.status in (DEVICE_STATUS["UNAVAILABLE"], DEVICE_STATUS["INVALID"]):
            return False
        return not (not q.ringinuse and m.status not in (0, 1))

    def _ring_entry(self, call: Call, q: Queue, att: Attempt, rnd: Round) -> bool:
        m = att.member
        if not self._can_ring(q, m):
            att.stillgoing = False
            return False
        att.dialed = True
        att.started = self.now()
        att.started_epoch = self.epoch()
        iface = m.interface
        key = device_key(iface)
        phone = self.phone(key)
        seat = self.seat_id(key)
        call.public.rang.append(seat)
        call.public.ringing.set()
        if iface.startswith("Local/"):
            self._ring_local(call, q, att, key, phone)
        elif iface.upper().startswith("PJSIP/"):
            self._ring_pjsip(call, q, att, key, phone)
        else:
            att.stillgoing = False
            return False
        if att.leg is not None:
            call.public.channels.append(att.leg.name)
        if att.far is not None:
            call.public.channels.append(att.far.name)
        return True

    def _ring_local(self, call: Call, q: Queue, att: Attempt, key: str, phone: PhoneSpec) -> None:
        m = att.member
        two = call.two
        iface = m.interface
        target = iface[len("Local/") :]
        if target.endswith("/n"):
            target = target[:-2]
        exten, _, context = target.partition("@")
        leg, far = self.new_local_pair(exten, context or "default", linkedid=two.linkedid)
        att.leg, att.far = leg, far
        for c, role in ((leg, "seat_leg"), (far, "seat_far")):
            c.call, c.role, c.seat_key = call, role, key
        leg.cid_num, leg.cid_name = two.cid_num, two.cid_name
        self.newexten(leg, "AppQueue", "(Outgoing Line)")
        self.newcallerid(leg)
        dialed = target + ("/n" if iface.endswith("/n") else "")
        self.varset(leg, "DIALEDPEERNUMBER", dialed)
        self.varset(far, "DIALEDPEERNUMBER", dialed)
        far.cid_num, far.cid_name = two.cid_num, two.cid_name
        far.conn_num, far.conn_name = two.cid_num, two.cid_name
        self.newcallerid(far)
        self.newconnectedline(far)
        self.local_bridge(leg, far, context, exten, optimize=not iface.endswith("/n"))
        stale = leg.block("Dest")
        leg.conn_num, leg.conn_name = two.cid_num, two.cid_name
        leg.exten = two.exten
        self.dial_event(
            "AgentCalled",
            two,
            leg,
            [("Queue", q.name), ("Interface", m.interface), ("MemberName", m.name)],
        )
        self.dial_event("DialBegin", two, stale, [("DialString", iface)])
        # the phone's dialplan starts: NoOp, Ringing
        self.newexten(far, "NoOp", f"phone {exten} rings", 1)
        self.newexten(far, "Ringing", "", 2)
        self.newstate(leg, RINGING)
        self.newexten(leg, "AppQueue", "(Outgoing Line)")
        self.newconnectedline(leg)
        device = f"Local/{exten}@{context}"
        if phone.unavailable:
            self.set_device_state(device, "UNAVAILABLE")
        else:
            self.set_device_state(device, "INUSE")
        if phone.busy:
            self.dial_event("DialState", two, leg, [("DialStatus", "RINGING")])
            self.later(0.0, self._leg_busy, call, att)
            return
        if phone.answer_after_s is not None:
            self.varset(far, "DB_RESULT", _num(phone.answer_after_s))
        self.dial_event("DialState", two, leg, [("DialStatus", "RINGING")])
        if phone.answer_after_s is not None:
            self.newexten(far, "GotoIf", "0?never", 3)
            self.varset(far, "DB_RESULT", _num(phone.answer_after_s))
            self.newexten(far, "Wait", _num(phone.answer_after_s), 4)
        else:
            self.newexten(far, "GotoIf", "1?never", 3)
            self.newexten(far, "Wait", _num(NEVER_S), 8)
        far.task = self.spawn(self._phone_program(call, att, phone), f"phone-{far.name}")

    def _ring_pjsip(self, call: Call, q: Queue, att: Attempt, key: str, phone: PhoneSpec) -> None:
        m = att.member
        two = call.two
        endpoint = m.interface.split("/", 1)[1]
        leg = self.new_pjsip(endpoint, DOWN, "phones", "s", linkedid=two.linkedid)
        leg.call, leg.role, leg.seat_key = call, "seat_pjsip", key
        att.leg = leg
        leg.cid_num, leg.cid_name = two.cid_num, two.cid_name
        self.newexten(leg, "AppQueue", "(Outgoing Line)")
        self.newcallerid(leg)
        self.varset(leg, "DIALEDPEERNUMBER", endpoint)
        stale = leg.block("Dest")
        leg.conn_num, leg.conn_name = two.cid_num, two.cid_name
        leg.exten = two.exten
        self.dial_event(
            "AgentCalled",
            two,
            leg,
            [("Queue", q.name), ("Interface", m.interface), ("MemberName", m.name)],
        )
        self.dial_event("DialBegin", two, stale, [("DialString", endpoint)])
        if phone.busy:
            self.later(0.0, self._leg_busy, call, att)
            return
        self.newstate(leg, RINGING)
        self.newexten(leg, "AppQueue", "(Outgoing Line)")
        self.newconnectedline(leg)
        self.dial_event("DialState", two, leg, [("DialStatus", "RINGING")])
        self.set_device_state(f"PJSIP/{endpoint}", "RINGING")
        leg.task = self.spawn(self._phone_program(call, att, phone), f"phone-{leg.name}")

    async def _phone_program(self, call: Call, att: Attempt, phone: PhoneSpec) -> None:
        """The seat phone: ring, answer after `answer_after_s`, talk `talk_s`, hang up."""
        if phone.answer_after_s is None:
            await asyncio.sleep(NEVER_S)
            # the lab phone gives up after Wait(300): its side hangs up
            if att.leg is not None and att.leg.alive and call.round is not None:
                self._leg_gone(call, att, 16, "NOANSWER", far_first=True)
            return
        await asyncio.sleep(phone.answer_after_s)
        if not self._member_answered(call, att):
            return
        far = att.far
        await asyncio.sleep(self.cfg.answer_media_delay_s if far is not None else 0.0)
        if far is not None and phone.talk_s is not None:
            self.varset(far, "DB_RESULT", _num(phone.talk_s))
            self.varset(far, "DB_RESULT", _num(phone.talk_s))
            self.newexten(far, "Wait", _num(phone.talk_s), 6)
        if phone.talk_s is None:
            await asyncio.Event().wait()
            return
        await asyncio.sleep(phone.talk_s)
        if far is not None:
            self.newexten(far, "Hangup", "", 7)
        self._agent_hangup(call, cause=16)

    # ------------------------------------------------------------------ ring outcomes
    def _cancel_leg(self, call: Call, att: Attempt, dialend: bool = True) -> None:
        """Hang up a leg the queue no longer wants (timeout, caller gone, answered elsewhere)."""
        leg, far = att.leg, att.far
        if leg is None or not leg.alive:
            return
        two = call.two
        if dialend:
            self.dial_event("DialEnd", two, leg, [("DialStatus", "CANCEL")])
        if far is not None and far.alive:
            self.hangup_request(far, 0)
            self.hangup_event(leg, 0)
        else:
            self.hangup_event(leg, 0)
        att.stillgoing = False

    def _cancel_far(self, att: Attempt) -> None:
        far = att.far
        if far is not None and far.alive:
            self.soft_hangup_request(far, 16)
            self.hangup_event(far, 0)

    def _leg_devstate_idle(self, att: Attempt) -> None:
        leg = att.leg
        if leg is None:
            return
        device = _device_of(leg)
        self.set_device_state(device, self._idle_state(device))

    def _round_timeout(self, call: Call, rnd: Round) -> None:
        """wait_for_answer ran out: AgentRingNoAnswer with RingTime = the round's timeout."""
        if rnd.done.done() or call.ended:
            return
        q = call.queue
        assert q is not None
        two = call.two
        ringing = rnd.ringing()
        for att in ringing:
            m = att.member
            assert att.leg is not None
            self.dial_event(
                "AgentRingNoAnswer",
                two,
                att.leg,
                [
                    ("Queue", q.name),
                    ("Interface", m.interface),
                    ("MemberName", m.name),
                    ("RingTime", str(rnd.timeout_ms)),
                ],
            )
        for att in ringing:
            assert att.leg is not None
            self.dial_event("DialEnd", two, att.leg, [("DialStatus", "NOANSWER")])
        for att in ringing:
            self._cancel_leg(call, att)
            self._leg_devstate_idle(att)
            if att.far is not None:
                self._cancel_far(att)
                if att.leg is not None:
                    self.dsc(_device_of(att.leg), "NOT_INUSE")  # the ;2 half goes too
        rnd.done.set_result("timeout")

    def _leg_gone(self, call: Call, att: Attempt, cause: int, status: str, far_first: bool) -> None:
        """A ringing leg went away (Hangup action, busy phone): RNA, ring the next member."""
        rnd = call.round
        q = call.queue
        leg, far = att.leg, att.far
        if rnd is None or q is None or leg is None or not leg.alive or att not in rnd.attempts:
            return
        two = call.two
        m = att.member
        self.dial_event("DialEnd", two, leg, [("DialStatus", status)])
        ring_ms = (self.epoch_int() - rnd.starttime) * 1000
        self.dial_event(
            "AgentRingNoAnswer",
            two,
            leg,
            [
                ("Queue", q.name),
                ("Interface", m.interface),
                ("MemberName", m.name),
                ("RingTime", str(ring_ms)),
            ],
        )
        if far is not None:
            if far.alive:
                if far_first:
                    self.soft_hangup_request(far, cause)
                self.hangup_request(far, cause)
            self.hangup_event(leg, cause)
            if far.alive:
                self.soft_hangup_request(far, 16)
                self.hangup_event(far, cause)
        else:
            self.hangup_event(leg, cause)
        att.stillgoing = False
        remaining = rnd.timeout_ms / 1000 - (self.now() - rnd.started)
        rang = False
        if q.strategy != "ringall" and remaining > 0.5:
            rang = self._ring_one(call, q, rnd)
            rnd.starttime = self.epoch_int()
        device = _device_of(leg)
        if leg.tech == "Local":
            self.dsc(device, "NOT_INUSE")
        self.set_device_state(device, self._idle_state(device))
        if not rang and not rnd.ringing() and not rnd.done.done():
            rnd.done.set_result("empty")

    def _leg_busy(self, call: Call, att: Attempt) -> None:
        self._leg_gone(call, att, 17, "BUSY", far_first=True)

    # ------------------------------------------------------------------ connect
    def _member_answered(self, call: Call, att: Attempt) -> bool:
        rnd = call.round
        q = call.queue
        entry = call.entry
        leg, far = att.leg, att.far
        if (
            rnd is None
            or q is None
            or entry is None
            or leg is None
            or not leg.alive
            or rnd.done.done()
            or att not in rnd.attempts
        ):
            return False
        two = call.two
        m = att.member
        if far is not None:
            self.newexten(far, "Answer", "", 5)
            self.newstate(far, UP)
        self.newstate(leg, UP)
        self.dial_event("DialEnd", two, leg, [("DialStatus", "ANSWER")])
        for other in rnd.ringing():
            if other is not att:
                self._cancel_leg(call, other)
                self._cancel_far(other)
                self._leg_devstate_idle(other)
        self.ev_chan("MusicOnHoldStop", two)
        device = _device_of(leg)
        if leg.tech == "Local":
            self.dsc(device, "INUSE")
            self.dsc(device, "INUSE")
        hold = self.epoch_int() - int(entry.start_epoch)
        pos = q.position(entry)
        self._leave_queue(call, q, entry)
        self.varset(two, "QUEUEPOSITION", str(pos))
        self.varset(two, "QUEUEWAIT", str(hold))
        self.varset(two, "QUEUEWAIT_MS", str(hold * 1000))
        ring_s = self.epoch_int() - int(att.started_epoch)
        self.dial_event(
            "AgentConnect",
            two,
            leg,
            [
                ("Queue", q.name),
                ("Interface", m.interface),
                ("MemberName", m.name),
                ("HoldTime", str(hold)),
                ("RingTime", str(ring_s)),
            ],
        )
        q.holdtime = ((q.holdtime << 2) - q.holdtime + hold) >> 2
        m.in_call = True
        if leg.tech != "Local":
            self.set_device_state(device, "INUSE")
        bridge = Bridge(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)))
        call.bridge = bridge
        self.ev("BridgeCreate", PRIV_CALL, bridge.block())
        for chan in (leg, two):
            bridge.chans.append(chan)
            chan.bridge = bridge
            self.ev("BridgeEnter", PRIV_CALL, bridge.block() + chan.block())
        self.varset(leg, "BRIDGEPEER", two.name)
        self.varset(two, "BRIDGEPEER", leg.name)
        call.agent = att
        call.phase = "bridged"
        call.connected = self.now()
        call.connected_epoch = self.epoch()
        call.round = None
        public = call.public
        public.seat = self.seat_id(leg.seat_key)
        public.agent_channel = leg.name
        public.outcome = "answered"
        public.answered.set()
        if call.plan.talk_s is not None:
            call.timers.append(self.later(call.plan.talk_s, self._plan_hangup, call, "talk"))
        rnd.done.set_result("answered")
        return True

    def _leave_queue(self, call: Call, q: Queue, entry: QueueEntry) -> None:
        pos = q.position(entry)
        q.callers.remove(entry)
        if not q.callers:
            self.cached_dsc(f"Queue:{q.name}", "NOT_INUSE")
        self.ev_chan(
            "QueueCallerLeave",
            call.two,
            [("Queue", q.name), ("Position", str(pos)), ("Count", str(len(q.callers)))],
            PRIV_AGENT,
        )

    # ------------------------------------------------------------------ abandon / timeout
    def _abandon(self, call: Call, cause: int) -> None:
        """The caller hung up while waiting in the queue (abandon.jsonl)."""
        q, entry = call.queue, call.entry
        assert q is not None and entry is not None
        two = call.two
        if call.program is not None and call.program is not asyncio.current_task():
            call.program.cancel()
        two.task = None
        self.ev_chan("MusicOnHoldStop", two)
        rnd = call.round
        ringing = rnd.ringing() if rnd is not None else []
        for att in ringing:
            assert att.leg is not None
            self.dial_event("DialEnd", two, att.leg, [("DialStatus", "CANCEL")])
        for att in ringing:
            self._cancel_leg(call, att)
        if rnd is not None:
            if rnd.timer is not None:
                rnd.timer.cancel()
            if not rnd.done.done():
                rnd.done.cancel()
            call.round = None
        hold = self.epoch_int() - int(entry.start_epoch)
        dialed_ms = int((self.epoch() - two.created_epoch) * 1000)
        self.varset(two, "QUEUEWAIT", str(hold))
        self.varset(two, "QUEUEWAIT_MS", str(hold * 1000))
        self.varset(two, "DIALEDTIME", str(dialed_ms // 1000))
        self.varset(two, "DIALEDTIME_MS", str(dialed_ms))
        self.varset(two, "ANSWEREDTIME", "0")
        self.varset(two, "ANSWEREDTIME_MS", "0")
        self.varset(two, "ABANDONED", "TRUE")
        pos = q.position(entry)
        self.ev_chan(
            "QueueCallerAbandon",
            two,
            [
                ("Queue", q.name),
                ("Position", str(pos)),
                ("OriginalPosition", str(entry.original_position)),
                ("HoldTime", str(hold)),
            ],
            PRIV_AGENT,
        )
        q.abandoned += 1
        for att in ringing:
            if att.leg is not None and att.leg.tech == "Local":
                self.dsc(_device_of(att.leg), "NOT_INUSE")
        self._leave_queue(call, q, entry)
        self.varset(two, "QUEUEPOSITION", str(pos))
        for att in ringing:
            if att.leg is not None:
                device = _device_of(att.leg)
                if att.leg.tech == "Local":
                    self._member_status_only(device)
                else:
                    self.set_device_state(device, self._idle_state(device))
            self._cancel_far(att)
            if att.leg is not None and att.leg.tech == "Local":
                self.dsc(_device_of(att.leg), "NOT_INUSE")
        self.soft_hangup_request(two, 16)
        self.hangup_event(two, cause)
        if call.one is not None:
            self.dsc(_device_of(call.one), "NOT_INUSE")
        else:
            self._trunk_idle(call)
        self._finish(call, "abandoned")

    def _member_status_only(self, device: str) -> None:
        """Member status follows a Local device without publishing it again."""
        status = DEVICE_STATUS[self._idle_state(device)]
        for q in self.queues.values():
            for m in q.members:
                if m.state_interface == device and m.status != status:
                    m.status = status
                    self.ev("QueueMemberStatus", PRIV_AGENT, m.event_fields())
                    self._schedule_avail(q)

    def _queue_timeout(self, call: Call) -> None:
        """Queue()'s own timeout (the 120 s): leave with QUEUESTATUS=TIMEOUT, dialplan ends.
        (No recording; follows app_queue's exit path.)"""
        q, entry = call.queue, call.entry
        assert q is not None and entry is not None
        two = call.two
        self.ev_chan("MusicOnHoldStop", two)
        pos = q.position(entry)
        self._leave_queue(call, q, entry)
        self.varset(two, "QUEUEPOSITION", str(pos))
        hold = self.epoch_int() - int(entry.start_epoch)
        self.varset(two, "QUEUEWAIT", str(hold))
        self.varset(two, "QUEUEWAIT_MS", str(hold * 1000))
        self.varset(two, "QUEUESTATUS", "TIMEOUT")
        call.phase = "dialplan"
        self._end_dialplan(call, "timeout", soft=False)

    # ------------------------------------------------------------------ bridged teardown
    def _complete(self, call: Call, reason: str) -> None:
        """AgentComplete with whatever snapshots still exist, and the queue/member stats."""
        q, att = call.queue, call.agent
        if q is None or att is None or call.completed:
            return
        call.completed = True
        m = att.member
        talk = self.epoch_int() - int(call.connected_epoch)
        hold = int(call.two.vars.get("QUEUEWAIT", "0") or 0)
        body: Pairs = call.two.block() if call.two.alive else []
        if att.leg is not None and att.leg.alive:
            body += att.leg.block("Dest")
        body += [
            ("Queue", q.name),
            ("Interface", m.interface),
            ("MemberName", m.name),
            ("HoldTime", str(hold)),
            ("TalkTime", str(talk)),
            ("Reason", reason),
        ]
        self.ev("AgentComplete", PRIV_AGENT, body)

    def _member_done(self, call: Call) -> None:
        """The member's call is over: stats first, so QueueMemberStatus shows them."""
        q, att = call.queue, call.agent
        if q is None or att is None or att.done_stats:
            return
        att.done_stats = True
        m = att.member
        m.in_call = False
        m.calls_taken += 1
        m.last_call = self.epoch_int()
        talk = self.epoch_int() - int(call.connected_epoch)
        q.talktime = ((q.talktime << 2) - q.talktime + talk) >> 2
        q.completed += 1

    def _answered_times(self, call: Call) -> None:
        two = call.two
        answered_ms = int((self.epoch() - call.connected_epoch) * 1000)
        dialed_ms = int((self.epoch() - two.created_epoch) * 1000)
        self.varset(two, "ANSWEREDTIME", str(answered_ms // 1000))
        self.varset(two, "ANSWEREDTIME_MS", str(answered_ms))
        self.varset(two, "DIALEDTIME", str(dialed_ms // 1000))
        self.varset(two, "DIALEDTIME_MS", str(dialed_ms))

    def _bridge_leave(self, call: Call, chan: Chan) -> None:
        bridge = call.bridge
        if bridge is None or chan not in bridge.chans:
            return
        bridge.chans.remove(chan)
        chan.bridge = None
        self.ev("BridgeLeave", PRIV_CALL, bridge.block() + chan.block())

    def _bridge_destroy(self, call: Call) -> None:
        bridge = call.bridge
        if bridge is None:
            return
        for chan in list(bridge.chans):
            self._bridge_leave(call, chan)
        self.ev("BridgeDestroy", PRIV_CALL, bridge.block())
        call.bridge = None

    def _seat_idle(self, call: Call, twice: bool = True) -> None:
        att = call.agent
        if att is None or att.leg is None:
            return
        device = _device_of(att.leg)
        if att.leg.tech == "Local":
            self.set_device_state(device, self._idle_state(device))
            if twice:
                self.dsc(device, "NOT_INUSE")
        else:
            self.set_device_state(device, self._idle_state(device))

    def _agent_hangup(self, call: Call, cause: int = 16) -> None:
        """The seat hangs up a bridged call (answered.jsonl; chanspy.jsonl when spied)."""
        att = call.agent
        if call.phase != "bridged" or att is None or att.leg is None:
            return
        leg, far, two, one = att.leg, att.far, call.two, call.one
        if leg.spied_by:
            self._agent_hangup_spied(call, cause)
            return
        if far is not None and far.alive:
            self.soft_hangup_request(far, cause)
            self.hangup_request(leg, cause)
            self.hangup_event(far, cause)
        else:
            self.hangup_request(leg, cause)
        self._member_done(call)
        self._complete(call, "agent")
        self.varset(leg, "BRIDGEPEER", "")
        self.varset(two, "BRIDGEPEER", "")
        self._bridge_leave(call, leg)
        self.hangup_event(leg, cause)
        self._seat_idle(call)
        self._bridge_leave(call, two)
        self._answered_times(call)
        self.soft_hangup_request(two, 16)
        if one is not None and one.alive:
            self.hangup_request(one, 16)
        self.hangup_event(two, 16)
        self._bridge_destroy_quiet(call)
        if one is not None and one.alive:
            self.soft_hangup_request(one, 16)
            self.hangup_event(one, 16)
        self._caller_devstate(call)
        self._finish(call, "answered")

    def _bridge_destroy_quiet(self, call: Call) -> None:
        bridge = call.bridge
        if bridge is not None:
            self.ev("BridgeDestroy", PRIV_CALL, bridge.block())
            call.bridge = None

    def _agent_hangup_spied(self, call: Call, cause: int) -> None:
        """chanspy.jsonl: a spy holds the seat leg, so the caller goes first and AgentComplete
        comes without the caller's snapshot."""
        att = call.agent
        assert att is not None and att.leg is not None
        leg, far, two, one = att.leg, att.far, call.two, call.one
        if far is not None and far.alive:
            self.soft_hangup_request(far, cause)
            self.hangup_request(leg, cause)
            self.hangup_event(far, cause)
        else:
            self.hangup_request(leg, cause)
        self.varset(leg, "BRIDGEPEER", "")
        self.varset(two, "BRIDGEPEER", "")
        self._bridge_leave(call, leg)
        self._bridge_leave(call, two)
        self._bridge_destroy_quiet(call)
        self._answered_times(call)
        self.soft_hangup_request(two, 16)
        if one is not None and one.alive:
            self.hangup_request(one, 16)
        self.hangup_event(two, 16)
        if one is not None and one.alive:
            self.soft_hangup_request(one, 16)
            self.hangup_event(one, 16)
        self._member_done(call)
        device = _device_of(leg)
        if leg.tech == "Local":
            self.set_device_state(device, self._idle_state(device))
        self._complete(call, "agent")
        if one is not None:
            self.dsc(_device_of(one), "NOT_INUSE")
            self.dsc(_device_of(one), "NOT_INUSE")
        else:
            self._trunk_idle(call)
        self._finish(call, "answered")
        # the spy lets go of the leg a moment later
        self.later(0.01, self._release_spied_leg, leg, cause)

    def _release_spied_leg(self, leg: Chan, cause: int) -> None:
        for spy in list(leg.spied_by):
            self._spy_target_gone(spy)
        self.hangup_event(leg, cause)
        if leg.tech == "Local":
            self.dsc(_device_of(leg), "NOT_INUSE")

    def _caller_hangup_bridged(self, call: Call, cause: int, soft: bool) -> None:
        """The caller hangs up during the conversation (resync.jsonl)."""
        att = call.agent
        assert att is not None and att.leg is not None
        leg, two, one = att.leg, call.two, call.one
        if one is not None and one.alive:
            if soft:
                self.soft_hangup_request(one, cause)
            self.hangup_request(two, cause)
            self.hangup_event(one, cause)
            self.dsc(_device_of(one), "NOT_INUSE")
        else:
            self.hangup_request(two, cause)
        self.varset(two, "BRIDGEPEER", "")
        self.varset(leg, "BRIDGEPEER", "")
        self._member_done(call)
        self._complete(call, "caller")
        self._bridge_leave(call, two)
        self._answered_times(call)
        self.soft_hangup_request(two, 16)
        self._bridge_leave(call, leg)
        self._bridge_destroy_quiet(call)
        self.hangup_event(two, cause)
        self._teardown_agent_leg(call, cause)
        if one is not None:
            self.dsc(_device_of(one), "NOT_INUSE")
        else:
            self._trunk_idle(call)
        self._finish(call, "answered")

    def _teardown_agent_leg(self, call: Call, cause: int) -> None:
        att = call.agent
        if att is None or att.leg is None:
            return
        leg, far = att.leg, att.far
        if leg.spied_by:
            for spy in list(leg.spied_by):
                self._spy_target_gone(spy)
        if far is not None and far.alive:
            self.hangup_request(far, cause)
            self.hangup_event(leg, cause)
            self._seat_idle(call, twice=False)
            self.soft_hangup_request(far, 16)
            self.hangup_event(far, cause)
            self.dsc(_device_of(leg), "NOT_INUSE")
        else:
            self.hangup_event(leg, cause)
            self._seat_idle(call, twice=False)

    def _pbx_hangup_bridged_caller(self, call: Call, cause: int) -> None:
        """The PBX tears the caller's queue channel down mid-call (AbsoluteTimeout, Hangup action):
        call_cap.jsonl."""
        att = call.agent
        assert att is not None and att.leg is not None
        leg, far, two, one = att.leg, att.far, call.two, call.one
        self.varset(two, "BRIDGEPEER", "")
        self.varset(leg, "BRIDGEPEER", "")
        self._bridge_leave(call, two)
        self._bridge_leave(call, leg)
        self._answered_times(call)
        self._bridge_destroy_quiet(call)
        self._member_done(call)
        if leg.spied_by:
            for spy in list(leg.spied_by):
                self._spy_target_gone(spy)
        if far is not None and far.alive:
            self.hangup_request(far, 16)
            self.hangup_event(leg, 16)
            self.soft_hangup_request(far, 16)
            self.hangup_event(far, 16)
            self._seat_idle(call)
        else:
            self.hangup_event(leg, 16)
            self._seat_idle(call)
        self.soft_hangup_request(two, 16)
        self._complete(call, "caller")
        if one is not None and one.alive:
            self.hangup_request(one, cause)
        self.hangup_event(two, cause)
        if one is not None and one.alive:
            self.dsc(_device_of(one), "NOT_INUSE")
            self.soft_hangup_request(one, 16)
            self.hangup_event(one, cause)
            self.dsc(_device_of(one), "NOT_INUSE")
        else:
            self._trunk_idle(call)
        self._finish(call, "answered")

    # ------------------------------------------------------------------ hangups from outside
    def hangup_channel(self, chan: Chan, cause: int | None) -> None:
        """Hangup action / AbsoluteTimeout / AGI HANGUP <chan> on any channel."""
        call = chan.call
        role = chan.role
        if call is not None and not call.ended:
            if role == "caller_one":
                self.caller_hangs_up(call, cause if cause else 16, soft=False)
                return
            if role in ("caller_two", "trunk"):
                self._pbx_hangup_caller(call, cause if cause else 16)
                return
            if role in ("seat_leg", "seat_far", "seat_pjsip"):
                att = self._attempt_of(call, chan)
                if att is None:
                    self._plain_hangup(chan, cause or 16)
                    return
                if call.phase == "bridged" and call.agent is att:
                    self._agent_hangup(call, cause if cause else 16)
                    return
                self._leg_gone(
                    call, att, cause if cause is not None else 0, "NOANSWER", far_first=False
                )
                return
        if chan.spy is not None or role in ("spy_one", "spy_two", "spy_pjsip"):
            self._spy_hangup(chan, cause if cause is not None else 16)
            return
        self._plain_hangup(chan, cause if cause is not None else 16)

    def _plain_hangup(self, chan: Chan, cause: int) -> None:
        other = chan.other
        if other is not None and other.alive:
            self.hangup_request(other, cause)
        self.hangup_event(chan, cause)
        if other is not None and other.alive:
            self.soft_hangup_request(other, 16)
            self.hangup_event(other, cause)
        device = _device_of(chan)
        if chan.tech == "Local":
            self.dsc(device, "NOT_INUSE")
            self.dsc(device, "NOT_INUSE")
        else:
            self.cached_dsc(device, "NOT_INUSE")

    def _attempt_of(self, call: Call, chan: Chan) -> Attempt | None:
        if call.agent is not None and chan in (call.agent.leg, call.agent.far):
            return call.agent
        if call.round is not None:
            for att in call.round.attempts:
                if chan is att.leg or chan is att.far:
                    return att
        return None

    def _pbx_hangup_caller(self, call: Call, cause: int) -> None:
        two = call.two
        if call.phase == "bridged":
            self._pbx_hangup_bridged_caller(call, cause)
            return
        if call.phase == "queue":
            self._abandon_from_pbx(call, cause)
            return
        # in the IVR
        if two.dead:
            return
        two.dead = True
        two.hangup_cause = cause
        if call.public.outcome is None:
            call.public.outcome = "dropped"
        if call.in_agi and call.agi is not None:
            self.deliver_dtmf_hangup(two)
            call.agi.channel_died()
            return
        self._finish_dead_caller(call)

    def _abandon_from_pbx(self, call: Call, cause: int) -> None:
        one = call.one
        if one is not None and one.alive:
            # the queue channel goes first; its ;1 half follows (reversed order of abandon.jsonl)
            call.one = None
            self._abandon(call, cause)
            call.one = one
            self.hangup_request(one, cause)
            self.soft_hangup_request(one, 16)
            self.hangup_event(one, cause)
            self.dsc(_device_of(one), "NOT_INUSE")
            self.dsc(_device_of(one), "NOT_INUSE")
        else:
            self._abandon(call, cause)
        call.public.outcome = "abandoned"

    # ------------------------------------------------------------------ AbsoluteTimeout
    def absolute_timeout(self, chan: Chan, seconds: float) -> None:
        if chan.timeout_handle is not None:
            chan.timeout_handle.cancel()
            chan.timeout_handle = None
        if seconds > 0:
            chan.timeout_handle = self.later(seconds, self._timeout_fired, chan)

    def _timeout_fired(self, chan: Chan) -> None:
        chan.timeout_handle = None
        if chan.alive:
            self.hangup_channel(chan, 16)

    # ------------------------------------------------------------------ Redirect
    def redirect(self, chan: Chan, context: str, exten: str, priority: int) -> bool:
        """Send the caller's channel elsewhere: leave the queue / the agent and run the target."""
        call = chan.call
        if call is None or call.ended or chan is not call.two:
            return self._redirect_plain(chan, context, exten, priority)
        target = self._redirect_target(context, exten)
        if call.phase == "queue":
            self._leave_queue_for_redirect(call)
        elif call.phase == "bridged":
            self._transfer_out(call)
        else:
            if call.program is not None and call.program is not asyncio.current_task():
                call.program.cancel()
            if call.agi is not None and call.agi.writer is not None:
                call.agi.writer.close()
            call.in_agi = False
        two = call.two
        two.context, two.exten = context, exten
        call.phase = "dialplan"
        if target is None:
            self._end_dialplan(call, "dropped", soft=False)
            return True
        kind, arg = target
        if kind == "hotline":
            call.program = self.spawn(self._hotline_program(call), f"hotline-{two.name}")
        else:
            timeout = self.cfg.queue_timeout_s

            async def run_queue() -> None:
                self.newexten(two, "Queue", f"{arg},,,,{timeout}", priority)
                await self._queue_app(call, arg, timeout)

            call.program = self.spawn(run_queue(), f"queue-{two.name}")
        two.task = call.program
        return True

    def _redirect_target(self, context: str, exten: str) -> tuple[str, str] | None:
        if context == self.cfg.hotline_context and exten == self.cfg.hotline_exten:
            return ("hotline", exten)
        mapped = self.cfg.queue_extensions.get(f"{context},{exten}")
        if mapped:
            return ("queue", mapped)
        if exten in self.queues:
            return ("queue", exten)
        return None

    def _redirect_plain(self, chan: Chan, context: str, exten: str, priority: int) -> bool:
        chan.context, chan.exten, chan.priority = context, exten, priority
        return True

    def _leave_queue_for_redirect(self, call: Call) -> None:
        q, entry = call.queue, call.entry
        assert q is not None and entry is not None
        two = call.two
        if call.program is not None and call.program is not asyncio.current_task():
            call.program.cancel()
        rnd = call.round
        ringing = rnd.ringing() if rnd is not None else []
        for att in ringing:
            self._cancel_leg(call, att)
            self._cancel_far(att)
            self._leg_devstate_idle(att)
        if rnd is not None:
            if rnd.timer is not None:
                rnd.timer.cancel()
            if not rnd.done.done():
                rnd.done.cancel()
            call.round = None
        self.ev_chan("MusicOnHoldStop", two)
        pos = q.position(entry)
        self._leave_queue(call, q, entry)
        self.varset(two, "QUEUEPOSITION", str(pos))
        call.entry = None

    def _transfer_out(self, call: Call) -> None:
        """The caller is redirected away from the agent: AgentComplete(transfer), agent hung up."""
        att = call.agent
        assert att is not None and att.leg is not None
        if call.program is not None and call.program is not asyncio.current_task():
            call.program.cancel()
        leg, two = att.leg, call.two
        self.varset(two, "BRIDGEPEER", "")
        self.varset(leg, "BRIDGEPEER", "")
        self._member_done(call)
        self._complete(call, "transfer")
        self._bridge_leave(call, two)
        self._bridge_leave(call, leg)
        self._bridge_destroy_quiet(call)
        self._teardown_agent_leg(call, 16)
        call.agent = None
        call.completed = False
        call.public.answered.clear()

    # ================================================================== ChanSpy
    def start_spy(self, spyer: Chan, data: str, on_end: Callable[[], None] | None = None) -> None:
        prefix, _, options = data.partition(",")
        spy = SpySession(spyer, prefix.strip(), options)
        spyer.spy = spy
        spyer.app, spyer.appdata = "ChanSpy", data
        spyer.task = self.spawn(self._spy_program(spy), f"chanspy-{spyer.name}")

    async def _spy_program(self, spy: SpySession) -> None:
        spyer = spy.spyer
        opts = spy.options
        while spyer.alive:
            await asyncio.sleep(SPY_SCAN_S)
            target = self._spy_find(spy)
            if target is None:
                if "S" in opts:
                    break
                continue
            spy.target = target
            spy.stopped.clear()
            target.spied_by.append(spy)
            self._spy_event("ChanSpyStart", spy, target)
            if target.bridge is not None:
                peers = [c for c in target.bridge.chans if c is not target]
                for peer in peers:
                    self.varset(target, "BRIDGEPEER", peer.name)
                for peer in peers:
                    self.varset(peer, "BRIDGEPEER", target.name)
            await spy.stopped.wait()
            if "E" in opts or not spyer.alive:
                break
        if spyer.alive:
            spyer.task = None
            self._spy_exit(spyer)

    def _spy_find(self, spy: SpySession) -> Chan | None:
        spyer = spy.spyer
        low = spy.prefix.lower()
        for chan in self.channels.values():
            if chan is spyer or chan is spyer.other or not chan.alive:
                continue
            if chan.spy is not None or chan.dead:
                continue
            if chan.name.lower().startswith(low):
                return chan
        return None

    def _spy_event(self, name: str, spy: SpySession, target: Chan) -> None:
        self.ev(name, PRIV_CALL, spy.spyer.block("Spyer") + target.block("Spyee"))

    def _spy_target_gone(self, spy: SpySession) -> None:
        target = spy.target
        if target is None:
            return
        if spy in target.spied_by:
            target.spied_by.remove(spy)
        spy.target = None
        if spy.spyer.alive:
            self._spy_event("ChanSpyStop", spy, target)
        spy.stopped.set()

    def _spy_exit(self, spyer: Chan) -> None:
        """ChanSpy returned: the originated spy channel hangs up (cause 0, as recorded)."""
        other = spyer.other
        if other is not None and other.alive:
            self.hangup_request(other, 0)
        self.hangup_event(spyer, 0)
        if other is not None and other.alive:
            self.soft_hangup_request(other, 16)
            self.hangup_event(other, 0)
        device = _device_of(spyer)
        if spyer.tech == "Local":
            self.dsc(device, "NOT_INUSE")
            self.dsc(device, "NOT_INUSE")
        else:
            self.cached_dsc(device, "NOT_INUSE")

    def _spy_hangup(self, chan: Chan, cause: int) -> None:
        """The spy's own side is hung up (Hangup action on it, or its phone gave up)."""
        spyer = chan if chan.spy is not None else chan.other
        if spyer is None or spyer.spy is None:
            self._plain_hangup(chan, cause)
            return
        spy = spyer.spy
        if spy.target is not None:
            self._spy_target_gone(spy)
        spy.stopped.set()
        if spyer.task is not None and spyer.task is not asyncio.current_task():
            spyer.task.cancel()
        spyer.task = None
        other = spyer.other
        if chan is spyer:
            if other is not None and other.alive:
                self.hangup_request(other, cause)
            self.hangup_event(spyer, cause)
            if other is not None and other.alive:
                self.soft_hangup_request(other, 16)
                self.hangup_event(other, cause)
        else:
            self.hangup_request(spyer, cause)
            self.hangup_event(chan, cause)
            self.hangup_event(spyer, cause)
        device = _device_of(spyer)
        if spyer.tech == "Local":
            self.dsc(device, "NOT_INUSE")
            self.dsc(device, "NOT_INUSE")
        else:
            self.cached_dsc(device, "NOT_INUSE")

    async def supervisor_program(self, two: Chan) -> None:
        """The lab's `supervisor` context: Answer, Wait(60), then hang up."""
        await asyncio.sleep(self.cfg.answer_media_delay_s)
        self.newexten(two, "Wait", _num(self.cfg.supervisor_stay_s), 2)
        await asyncio.sleep(self.cfg.supervisor_stay_s)
        two.task = None
        if two.alive:
            self._spy_hangup(two, 16)

    # ================================================================== queue management
    def queue_pause(self, interface: str, queue: str, paused: bool, reason: str) -> bool:
        found = False
        for q in self.queues.values():
            if queue and q.name.lower() != queue.lower():
                continue
            m = q.member(interface)
            if m is None:
                continue
            found = True
            if paused:
                m.last_pause = self.epoch_int()
            m.paused = paused
            m.reason = reason if paused else ""
            self.cached_dsc(
                f"Queue:{q.name}_pause_{m.interface}", "INUSE" if paused else "NOT_INUSE"
            )
            if not paused:
                self.update_avail(q)
            self.ev("QueueMemberPause", PRIV_AGENT, m.event_fields())
            if paused:
                self.update_avail(q)
        return found

    def queue_add(
        self,
        queue: str,
        interface: str,
        name: str,
        state_interface: str,
        penalty: int,
        paused: bool,
        reason: str,
    ) -> str:
        q = self.queues.get(queue)
        if q is None:
            return "nosuchqueue"
        if q.member(interface) is not None:
            return "exists"
        m = Member(
            queue=q.name,
            interface=interface,
            name=name or interface,
            state_interface=state_interface or default_state_interface(interface),
            penalty=penalty,
            dynamic=True,
            login_time=self.epoch_int(),
        )
        m.paused = paused
        m.reason = reason if paused else ""
        m.status = self._device_status(m.state_interface)
        q.members.append(m)
        self.cached_dsc(f"Queue:{q.name}_pause_{m.interface}", "INUSE" if paused else "NOT_INUSE")
        self.ev("QueueMemberAdded", PRIV_AGENT, m.event_fields())
        self.update_avail(q)
        return "ok"

    def queue_remove(self, queue: str, interface: str) -> str:
        q = self.queues.get(queue)
        if q is None:
            return "nosuchqueue"
        m = q.member(interface)
        if m is None:
            return "notthere"
        if not m.dynamic:
            return "notdynamic"
        q.members.remove(m)
        self.ev("QueueMemberRemoved", PRIV_AGENT, m.event_fields())
        self.update_avail(q)
        return "ok"

    def queue_penalty(self, interface: str, penalty: int, queue: str) -> bool:
        found = False
        for q in self.queues.values():
            if queue and q.name != queue:
                continue
            m = q.member(interface)
            if m is not None:
                m.penalty = penalty
                found = True
                self.ev(
                    "QueueMemberPenalty",
                    PRIV_AGENT,
                    [
                        ("Queue", q.name),
                        ("Interface", m.interface),
                        ("Penalty", str(penalty)),
                    ],
                )
        return found

    def member_infos(self, queue: str) -> list[MemberInfo]:
        q = self.queues.get(queue)
        if q is None:
            return []
        return [
            MemberInfo(
                queue=q.name,
                interface=m.interface,
                name=m.name,
                penalty=m.penalty,
                paused=m.paused,
                reason=m.reason,
                dynamic=m.dynamic,
                status=m.status,
                in_call=m.in_call,
                calls_taken=m.calls_taken,
            )
            for m in q.members
        ]

    # ================================================================== restart
    def vanish_all(self) -> None:
        """A PBX restart: every channel and call disappears without a trace on AMI."""
        for call in list(self.calls):
            for timer in call.timers:
                timer.cancel()
            if call.round is not None and call.round.timer is not None:
                call.round.timer.cancel()
            if call.agi is not None and call.agi.writer is not None:
                call.agi.writer.close()
            call.phase = "done"
            if call.public.outcome is None or call.public.outcome == "answered":
                call.public.outcome = call.public.outcome or "dropped"
            call.public.ended.set()
        self.calls.clear()
        for chan in list(self.channels.values()):
            chan.alive = False
            if chan.timeout_handle is not None:
                chan.timeout_handle.cancel()
        self.channels.clear()
        for task in list(self.tasks):
            task.cancel()
        for handle in list(self.timers):
            handle.cancel()
        self.timers.clear()


def _find_best(attempts: list[Attempt]) -> Attempt | None:
    best: Attempt | None = None
    for a in attempts:
        if (
            a.stillgoing
            and a.leg is None
            and not a.dialed
            and (best is None or a.metric < best.metric)
        ):
            best = a
    return best


def _device_of(chan: Chan) -> str:
    """The device a channel belongs to: `Local/seat1@phones`, `PJSIP/seat1`."""
    name = chan.name
    if chan.tech == "Local":
        return name.rsplit("-", 1)[0]
    return name.rsplit("-", 1)[0]


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _float_or_none(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None
