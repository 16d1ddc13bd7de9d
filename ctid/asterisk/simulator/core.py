"""The simulated PBX's shared state and primitives: clock, ids, tasks and timers, AMI event emission,
channels and their device states, queue config, variables, and how a caller's channels end.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from ctid.asterisk.simulator.config import PhoneSpec, SimulatorConfig, device_key
from ctid.asterisk.simulator.model import (
    Chan,
    ChanSpyLeg,
    HotlineCall,
    Member,
    Queue,
    device_of,
    float_or_none,
    num_text,
)
from ctid.asterisk.simulator.queue_log import QueueLog
from ctid.asterisk.simulator.wire import (
    CAUSE_TEXT,
    DEVICE_STATUS,
    DOWN,
    PRIV_AGENT,
    PRIV_CALL,
    PRIV_DIALPLAN,
    RING,
    RINGING,
    Pairs,
    encode_event,
)

log = structlog.get_logger(__name__)

Broadcast = Callable[[str, bytes], None]


def _no_spy(spy: ChanSpyLeg) -> None:
    """No ChanSpy attached yet."""


class PbxCore:
    """All PBX state and the primitives every part uses. Methods that emit events are synchronous."""

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
        self.seat_names: dict[str, str] = {}  # device key → the seat's name (its caller id)
        self.calls: list[HotlineCall] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self.timers: set[asyncio.TimerHandle] = set()
        self._timers_pruned_at = 256
        self.rng = random.Random(0)
        self._avail_dirty: set[str] = set()
        self.spy_gone: Callable[[ChanSpyLeg], None] = _no_spy
        self.wedged: set[str] = set()
        """Channel-name prefixes whose hangup requests are taken but never carried out (a test
        knob: a channel stuck in its driver)."""
        self.queue_log = QueueLog(cfg.queue_log_path, self.epoch_int)
        self.queue_log.queue_start()
        """ChanSpy's hook: a spied channel is gone (set by `ChanSpy`)."""
        self.load_config(initial=True)

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

    def reboot(self) -> None:
        """After a restart: uptime, channel numbers and Uniqueids start again, queues reload and
        the queue_log says QUEUESTART."""
        self.boot = self.loop.time()
        self.uniq_seq = self.local_seq = self.pjsip_seq = self.thread_seq = 0
        self.load_config()
        self.queue_log.queue_start()

    def load_config(self, initial: bool = False) -> None:
        """(Re)build queues from config, as Asterisk does at boot: dynamic members are gone."""
        cfg = self.cfg
        boot_epoch = self.epoch_int()
        if initial:
            for seat in cfg.seats:
                self.phones[seat.device_key] = seat.phone
                self.seat_ids[seat.device_key] = seat.id
                self.seat_names[seat.device_key] = seat.name
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
                leavewhenempty=spec.leavewhenempty,
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
                m.status = self.device_status(m.state_interface)
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
                self.db[(family, key)] = num_text(value)

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
                        self.set_device_state(device, self.idle_state(device))

    def phone(self, key: str) -> PhoneSpec:
        spec = self.phones.get(key, PhoneSpec())
        answer = self.db.get(("answer", key))
        talk = self.db.get(("talk", key))
        return PhoneSpec(
            answer_after_s=float_or_none(answer),
            talk_s=float_or_none(talk),
            busy=spec.busy,
            unavailable=spec.unavailable,
            sends_audio=spec.sends_audio,
        )

    def seat_id(self, key: str) -> str:
        return self.seat_ids.get(key, key)

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

    def hangup_request(self, chan: Chan, cause: int | None) -> None:
        """HangupRequest; `None`: a hangup queued without a cause (a PJSIP BYE), no Cause header."""
        self.ev_chan("HangupRequest", chan, [] if cause is None else [("Cause", str(cause))])

    def bye_cause(self, chan: Chan) -> int | None:
        """The Cause a PJSIP BYE's HangupRequest shows: none, unless a bridge left one."""
        return chan.left_cause or None

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
            self.spy_gone(spy)

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

    def _members_on(self, device: str) -> list[Member]:
        return [m for q in self.queues.values() for m in q.members if m.state_interface == device]

    def device_status(self, device: str) -> int:
        key = device_key(device)
        if self.phones.get(key, PhoneSpec()).unavailable:
            return DEVICE_STATUS["UNAVAILABLE"]
        for chan in self.channels.values():
            if device_of(chan) == device:
                if device.startswith("Local/"):
                    return DEVICE_STATUS["INUSE"]
                return DEVICE_STATUS["RINGING" if chan.state in (RING, RINGING) else "INUSE"]
        return DEVICE_STATUS["NOT_INUSE"]

    def idle_state(self, device: str) -> str:
        """The state a device settles in once a call on it ended: UNAVAILABLE for an unreachable
        phone, INUSE for a PJSIP device still carrying another channel, else NOT_INUSE."""
        if self.phones.get(device_key(device), PhoneSpec()).unavailable:
            return "UNAVAILABLE"
        if not device.startswith("Local/") and any(
            device_of(c) == device for c in self.channels.values()
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
        for stored in (name, "_" + name, "__" + name):  # `__X` is read as X, as Asterisk does
            if stored in chan.vars:
                return chan.vars[stored]
        return None

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

    def end_dialplan(self, call: HotlineCall, outcome: str, soft: bool) -> None:
        """The caller's dialplan ended (Hangup() or fell off the end): tear the caller down."""
        two = call.two
        two.task = None
        if soft:
            self.soft_hangup_request(two, 16)
        self._teardown_caller_channels(call, two_first=True, cause=16)
        self.finish(call, outcome)

    def _teardown_caller_channels(self, call: HotlineCall, two_first: bool, cause: int) -> None:
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
        self.caller_devstate(call)

    def caller_devstate(self, call: HotlineCall) -> None:
        if call.one is not None:
            device = device_of(call.one)
            self.dsc(device, "NOT_INUSE")
            self.dsc(device, "NOT_INUSE")
        else:
            self.trunk_idle(call)

    def trunk_idle(self, call: HotlineCall) -> None:
        device = device_of(call.two)
        self.cached_dsc(device, self.idle_state(device))

    def finish(self, call: HotlineCall, outcome: str) -> None:
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

    def member_status_only(self, device: str) -> None:
        """Member status follows a Local device without publishing it again."""
        status = DEVICE_STATUS[self.idle_state(device)]
        for q in self.queues.values():
            for m in q.members:
                if m.state_interface == device and m.status != status:
                    m.status = status
                    self.ev("QueueMemberStatus", PRIV_AGENT, m.event_fields())
                    self._schedule_avail(q)

    def plain_hangup(self, chan: Chan, cause: int) -> None:
        other = chan.other
        if other is not None and other.alive:
            self.hangup_request(other, cause)
        self.hangup_event(chan, cause)
        if other is not None and other.alive:
            self.soft_hangup_request(other, 16)
            self.hangup_event(other, cause)
        device = device_of(chan)
        if chan.tech == "Local":
            self.dsc(device, "NOT_INUSE")
            self.dsc(device, "NOT_INUSE")
        else:
            self.cached_dsc(device, "NOT_INUSE")
