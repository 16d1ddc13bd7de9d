"""app_queue: a caller waits in Queue(), ring rounds by strategy, ring outcomes (no answer, busy,
the queue's timeout, a cut leg), connect, abandon, Queue()'s own timeout and leaving for a Redirect.
"""

from __future__ import annotations

import asyncio
import uuid

from ctid.asterisk.simulator.bridged import BridgedCalls
from ctid.asterisk.simulator.config import device_key
from ctid.asterisk.simulator.core import PbxCore
from ctid.asterisk.simulator.model import (
    Attempt,
    Bridge,
    HotlineCall,
    Member,
    Queue,
    QueueEntry,
    Round,
    device_of,
)
from ctid.asterisk.simulator.phones import SeatPhones
from ctid.asterisk.simulator.wire import DEVICE_STATUS, PRIV_AGENT, PRIV_CALL, UP

RECHECK_S = 1.0
"""app_queue's RECHECK: a caller not at its turn re-checks once a second."""


class AppQueue:
    """Callers in queues and the ring rounds that reach members."""

    def __init__(self, pbx: PbxCore, bridged: BridgedCalls) -> None:
        self.pbx = pbx
        self.bridged = bridged
        self.seat_phones = SeatPhones(pbx, bridged, self)

    async def run_queue(self, call: HotlineCall, qname: str, timeout_s: int) -> None:
        two = call.two
        q = self.pbx.queues.get(qname)
        if q is None:
            # Queue() on a queue that does not exist returns at once (QUEUESTATUS=UNKNOWN)
            self.pbx.varset(two, "QUEUESTATUS", "UNKNOWN")
            self.pbx.end_dialplan(call, "timeout", soft=False)
            return
        for name in (
            "ANSWEREDTIME",
            "ANSWEREDTIME_MS",
            "DIALEDTIME",
            "DIALEDTIME_MS",
            "QUEUEWAIT",
            "QUEUEWAIT_MS",
        ):
            self.pbx.varset(two, name, "")
        entry = QueueEntry(
            call=call,
            chan=two,
            start=self.pbx.now(),
            start_epoch=self.pbx.epoch(),
            expire=self.pbx.now() + timeout_s,
            original_position=len(q.callers) + 1,
        )
        entry.expire_epoch = int(entry.start_epoch) + timeout_s
        q.callers.append(entry)
        call.queue, call.entry, call.phase = q, entry, "queue"
        call.public.queue = q.name
        self.pbx.cached_dsc(f"Queue:{q.name}", "RINGING")
        self.pbx.ev_chan(
            "QueueCallerJoin",
            two,
            [("Queue", q.name), ("Position", str(len(q.callers))), ("Count", str(len(q.callers)))],
            PRIV_AGENT,
        )
        self.pbx.queue_log.write(
            q.name, two.uniqueid, "NONE", "ENTERQUEUE", "", two.cid_num, entry.original_position
        )
        self.pbx.ev_chan("MusicOnHoldStart", two, [("Class", "default")])
        call.public.queued.set()
        while True:
            if self.pbx.now() >= entry.expire:
                self._queue_timeout(call)
                return
            if not self._is_our_turn(q, entry):
                if _empty(q):
                    self._leave_empty(call)
                    return
                await asyncio.sleep(min(RECHECK_S, max(0.0, entry.expire - self.pbx.now())))
                continue
            outcome = await self._try_calling(call, q, entry)
            if outcome == "answered":
                await asyncio.Event().wait()  # the bridge ends the call; this task is cancelled
                return
            if _empty(q):
                self._leave_empty(call)
                return
            left = entry.expire - self.pbx.now()
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
            metric = self.pbx.rng.randrange(1000)
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

    async def _try_calling(self, call: HotlineCall, q: Queue, entry: QueueEntry) -> str:
        q.wrapped = False
        attempts = [Attempt(m, self._metric(q, m, pos)) for pos, m in enumerate(q.members)]
        now_int = self.pbx.epoch_int()
        left = entry.expire_epoch - now_int
        to_ms = left * 1000 if left <= q.timeout_s else q.timeout_s * 1000
        if to_ms <= 0:
            return "timeout"
        rnd = Round(attempts, self.pbx.now(), to_ms, self.pbx.loop.create_future())
        rnd.starttime = now_int
        call.round = rnd
        self._ring_one(call, q, rnd)
        if q.strategy in ("rrmemory", "rrordered"):
            self._store_next_rr(q, attempts)
        if not rnd.ringing() and not rnd.done.done():
            call.round = None
            return "none"
        rnd.timer = self.pbx.later(to_ms / 1000, self._round_timeout, call, rnd)
        try:
            return await rnd.done
        finally:
            if rnd.timer is not None:
                rnd.timer.cancel()
            if call.round is rnd:
                call.round = None

    def _ring_one(self, call: HotlineCall, q: Queue, rnd: Round) -> bool:
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

    def _ring_entry(self, call: HotlineCall, q: Queue, att: Attempt, rnd: Round) -> bool:
        m = att.member
        if not self._can_ring(q, m):
            att.stillgoing = False
            return False
        att.dialed = True
        att.started = self.pbx.now()
        att.started_epoch = self.pbx.epoch()
        iface = m.interface
        key = device_key(iface)
        phone = self.pbx.phone(key)
        seat = self.pbx.seat_id(key)
        call.public.rang.append(seat)
        call.public.ringing.set()
        if iface.startswith("Local/"):
            self.seat_phones.ring_local(call, q, att, key, phone)
        elif iface.upper().startswith("PJSIP/"):
            self.seat_phones.ring_pjsip(call, q, att, key, phone)
        else:
            att.stillgoing = False
            return False
        if att.leg is not None:
            call.public.channels.append(att.leg.name)
        if att.far is not None:
            call.public.channels.append(att.far.name)
        return True

    def _cancel_leg(self, call: HotlineCall, att: Attempt, dialend: bool = True) -> None:
        """Hang up a leg the queue no longer wants (timeout, caller gone, answered elsewhere)."""
        leg, far = att.leg, att.far
        if leg is None or not leg.alive:
            return
        two = call.two
        if dialend:
            self.pbx.dial_event("DialEnd", two, leg, [("DialStatus", "CANCEL")])
        if far is not None and far.alive:
            self.pbx.hangup_request(far, 0)
            self.pbx.hangup_event(leg, 0)
        else:
            self.pbx.hangup_event(leg, 0)
        att.stillgoing = False

    def _cancel_far(self, att: Attempt) -> None:
        far = att.far
        if far is not None and far.alive:
            self.pbx.soft_hangup_request(far, 16)
            self.pbx.hangup_event(far, 0)

    def _leg_devstate_idle(self, att: Attempt) -> None:
        leg = att.leg
        if leg is None:
            return
        device = device_of(leg)
        self.pbx.set_device_state(device, self.pbx.idle_state(device))

    def _round_timeout(self, call: HotlineCall, rnd: Round) -> None:
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
            self.pbx.dial_event(
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
            self.pbx.queue_log.write(q.name, two.uniqueid, m.name, "RINGNOANSWER", rnd.timeout_ms)
        for att in ringing:
            assert att.leg is not None
            self.pbx.dial_event("DialEnd", two, att.leg, [("DialStatus", "NOANSWER")])
        for att in ringing:
            self._cancel_leg(call, att)
            self._leg_devstate_idle(att)
            if att.far is not None:
                self._cancel_far(att)
                if att.leg is not None:
                    self.pbx.dsc(device_of(att.leg), "NOT_INUSE")  # the ;2 half goes too
        rnd.done.set_result("timeout")

    def leg_gone(
        self, call: HotlineCall, att: Attempt, cause: int, status: str, far_first: bool
    ) -> None:
        """A ringing leg went away (Hangup action, busy phone): RNA, ring the next member."""
        rnd = call.round
        q = call.queue
        leg, far = att.leg, att.far
        if rnd is None or q is None or leg is None or not leg.alive or att not in rnd.attempts:
            return
        two = call.two
        m = att.member
        self.pbx.dial_event("DialEnd", two, leg, [("DialStatus", status)])
        ring_ms = (self.pbx.epoch_int() - rnd.starttime) * 1000
        self.pbx.dial_event(
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
        self.pbx.queue_log.write(q.name, two.uniqueid, m.name, "RINGNOANSWER", ring_ms)
        if far is not None:
            if far.alive:
                if far_first:
                    self.pbx.soft_hangup_request(far, cause)
                self.pbx.hangup_request(far, cause)
            self.pbx.hangup_event(leg, cause)
            if far.alive:
                self.pbx.soft_hangup_request(far, 16)
                self.pbx.hangup_event(far, cause)
        else:
            self.pbx.hangup_event(leg, cause)
        att.stillgoing = False
        remaining = rnd.timeout_ms / 1000 - (self.pbx.now() - rnd.started)
        rang = False
        # A busy phone makes app_queue ring the next member at once; a PJSIP leg cut by a Hangup
        # action ends wait_for_answer instead, and the next ring waits for `retry`
        # (pjsip_ring_cut_client_first: seat2 rings 1 s after seat1's cut).
        ring_next = status == "BUSY" or leg.tech == "Local"
        if ring_next and q.strategy != "ringall" and remaining > 0.5:
            rang = self._ring_one(call, q, rnd)
            rnd.starttime = self.pbx.epoch_int()
        device = device_of(leg)
        if leg.tech == "Local":
            self.pbx.dsc(device, "NOT_INUSE")
        self.pbx.set_device_state(device, self.pbx.idle_state(device))
        if not rang and not rnd.ringing() and not rnd.done.done():
            rnd.done.set_result("empty")

    def leg_busy(self, call: HotlineCall, att: Attempt) -> None:
        self.leg_gone(call, att, 17, "BUSY", far_first=True)

    def member_answered(self, call: HotlineCall, att: Attempt) -> bool:
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
            self.pbx.newexten(far, "Answer", "", 5)
            self.pbx.newstate(far, UP)
        self.pbx.newstate(leg, UP)
        self.pbx.dial_event("DialEnd", two, leg, [("DialStatus", "ANSWER")])
        for other in rnd.ringing():
            if other is not att:
                self._cancel_leg(call, other)
                self._cancel_far(other)
                self._leg_devstate_idle(other)
        self.pbx.ev_chan("MusicOnHoldStop", two)
        device = device_of(leg)
        if leg.tech == "Local":
            self.pbx.dsc(device, "INUSE")
            self.pbx.dsc(device, "INUSE")
        hold = self.pbx.epoch_int() - int(entry.start_epoch)
        pos = q.position(entry)
        self._leave_queue(call, q, entry)
        self.pbx.varset(two, "QUEUEPOSITION", str(pos))
        self.pbx.varset(two, "QUEUEWAIT", str(hold))
        self.pbx.varset(two, "QUEUEWAIT_MS", str(hold * 1000))
        ring_s = self.pbx.epoch_int() - int(att.started_epoch)
        self.pbx.dial_event(
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
        if q.completed + q.abandoned == 0:
            q.holdtime = hold  # recalc_holdtime: the first sample is taken as it is
        else:
            q.holdtime = ((q.holdtime << 2) - q.holdtime + hold) >> 2
        self.pbx.queue_log.write(
            q.name, two.uniqueid, m.name, "CONNECT", hold, leg.uniqueid, ring_s
        )
        call.caller_pos = entry.original_position
        m.in_call = True
        if leg.tech != "Local":
            self.pbx.set_device_state(device, "INUSE")
        bridge = Bridge(str(uuid.UUID(int=self.pbx.rng.getrandbits(128), version=4)))
        call.bridge = bridge
        self.pbx.ev("BridgeCreate", PRIV_CALL, bridge.block())
        for chan in (leg, two):
            bridge.chans.append(chan)
            chan.bridge = bridge
            self.pbx.ev("BridgeEnter", PRIV_CALL, bridge.block() + chan.block())
        self.pbx.varset(leg, "BRIDGEPEER", two.name)
        self.pbx.varset(two, "BRIDGEPEER", leg.name)
        call.agent = att
        call.phase = "bridged"
        call.connected = self.pbx.now()
        call.connected_epoch = self.pbx.epoch()
        call.round = None
        public = call.public
        public.seat = self.pbx.seat_id(leg.seat_key)
        public.agent_channel = leg.name
        public.outcome = "answered"
        public.answered.set()
        if call.plan.talk_s is not None:
            call.timers.append(self.pbx.later(call.plan.talk_s, _talk_over, call))
        rnd.done.set_result("answered")
        return True

    def _leave_queue(self, call: HotlineCall, q: Queue, entry: QueueEntry) -> None:
        pos = q.position(entry)
        q.callers.remove(entry)
        if not q.callers:
            self.pbx.cached_dsc(f"Queue:{q.name}", "NOT_INUSE")
        self.pbx.ev_chan(
            "QueueCallerLeave",
            call.two,
            [("Queue", q.name), ("Position", str(pos)), ("Count", str(len(q.callers)))],
            PRIV_AGENT,
        )

    def abandon(self, call: HotlineCall, cause: int) -> None:
        """The caller hung up while waiting in the queue (abandon.jsonl)."""
        q, entry = call.queue, call.entry
        assert q is not None and entry is not None
        two = call.two
        if call.program is not None and call.program is not asyncio.current_task():
            call.program.cancel()
        two.task = None
        self.pbx.ev_chan("MusicOnHoldStop", two)
        rnd = call.round
        ringing = rnd.ringing() if rnd is not None else []
        for att in ringing:
            assert att.leg is not None
            self.pbx.dial_event("DialEnd", two, att.leg, [("DialStatus", "CANCEL")])
        if rnd is not None:
            ring_ms = int((self.pbx.now() - rnd.started) * 1000)
            for att in ringing:
                self.pbx.queue_log.write(
                    q.name, two.uniqueid, att.member.name, "RINGCANCELED", ring_ms
                )
        for att in ringing:
            self._cancel_leg(call, att)
        if rnd is not None:
            if rnd.timer is not None:
                rnd.timer.cancel()
            if not rnd.done.done():
                rnd.done.cancel()
            call.round = None
        hold = self.pbx.epoch_int() - int(entry.start_epoch)
        dialed_ms = int((self.pbx.epoch() - two.created_epoch) * 1000)
        self.pbx.varset(two, "QUEUEWAIT", str(hold))
        self.pbx.varset(two, "QUEUEWAIT_MS", str(hold * 1000))
        self.pbx.varset(two, "DIALEDTIME", str(dialed_ms // 1000))
        self.pbx.varset(two, "DIALEDTIME_MS", str(dialed_ms))
        self.pbx.varset(two, "ANSWEREDTIME", "0")
        self.pbx.varset(two, "ANSWEREDTIME_MS", "0")
        pos = q.position(entry)
        self._record_abandoned(call, q, entry, pos, hold)
        self.pbx.queue_log.write(
            q.name, two.uniqueid, "NONE", "ABANDON", pos, entry.original_position, hold
        )
        for att in ringing:
            if att.leg is not None and att.leg.tech == "Local":
                self.pbx.dsc(device_of(att.leg), "NOT_INUSE")
        self._leave_queue(call, q, entry)
        self.pbx.varset(two, "QUEUEPOSITION", str(pos))
        for att in ringing:
            if att.leg is not None:
                device = device_of(att.leg)
                if att.leg.tech == "Local":
                    self.pbx.member_status_only(device)
                else:
                    self.pbx.set_device_state(device, self.pbx.idle_state(device))
            self._cancel_far(att)
            if att.leg is not None and att.leg.tech == "Local":
                self.pbx.dsc(device_of(att.leg), "NOT_INUSE")
        self.bridged.complete_earlier(call)
        self.pbx.soft_hangup_request(two, 16)
        self.pbx.hangup_event(two, cause)
        if call.one is not None:
            self.pbx.dsc(device_of(call.one), "NOT_INUSE")
        else:
            self.pbx.trunk_idle(call)
        self.pbx.finish(call, "abandoned")

    def _queue_timeout(self, call: HotlineCall) -> None:
        """Queue()'s own timeout (the 120 s): leave with QUEUESTATUS=TIMEOUT, dialplan ends.
        (No recording; follows app_queue's exit path.)"""
        q, entry = call.queue, call.entry
        assert q is not None and entry is not None
        two = call.two
        self.pbx.ev_chan("MusicOnHoldStop", two)
        pos = q.position(entry)
        self._leave_queue(call, q, entry)
        self.pbx.varset(two, "QUEUEPOSITION", str(pos))
        hold = self.pbx.epoch_int() - int(entry.start_epoch)
        self.pbx.varset(two, "QUEUEWAIT", str(hold))
        self.pbx.varset(two, "QUEUEWAIT_MS", str(hold * 1000))
        self.pbx.varset(two, "QUEUESTATUS", "TIMEOUT")
        self.pbx.queue_log.write(
            q.name, two.uniqueid, "NONE", "EXITWITHTIMEOUT", pos, entry.original_position, hold
        )
        call.phase = "dialplan"
        self.pbx.end_dialplan(call, "timeout", soft=False)

    def _record_abandoned(
        self, call: HotlineCall, q: Queue, entry: QueueEntry, pos: int, hold: int
    ) -> None:
        """app_queue's record_abandoned: ABANDONED=TRUE, QueueCallerAbandon, the queue's count."""
        two = call.two
        self.pbx.varset(two, "ABANDONED", "TRUE")
        self.pbx.ev_chan(
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

    def _leave_empty(self, call: HotlineCall) -> None:
        """leavewhenempty: record_abandoned (QueueCallerAbandon, ABANDONED=TRUE), EXITEMPTY, and
        Queue() returns with QUEUESTATUS=LEAVEEMPTY. (No recording; app_queue's exit path.)"""
        q, entry = call.queue, call.entry
        assert q is not None and entry is not None
        two = call.two
        pos = q.position(entry)
        hold = self.pbx.epoch_int() - int(entry.start_epoch)
        self._record_abandoned(call, q, entry, pos, hold)
        self.pbx.queue_log.write(
            q.name, two.uniqueid, "NONE", "EXITEMPTY", pos, entry.original_position, hold
        )
        self.pbx.ev_chan("MusicOnHoldStop", two)
        self._leave_queue(call, q, entry)
        self.pbx.varset(two, "QUEUEPOSITION", str(pos))
        self.pbx.varset(two, "QUEUESTATUS", "LEAVEEMPTY")
        call.phase = "dialplan"
        self.pbx.end_dialplan(call, "timeout", soft=False)

    def abandon_from_pbx(self, call: HotlineCall, cause: int) -> None:
        one = call.one
        if one is not None and one.alive:
            # the queue channel goes first; its ;1 half follows (reversed order of abandon.jsonl)
            call.one = None
            self.abandon(call, cause)
            call.one = one
            self.pbx.hangup_request(one, cause)
            self.pbx.soft_hangup_request(one, 16)
            self.pbx.hangup_event(one, cause)
            self.pbx.dsc(device_of(one), "NOT_INUSE")
            self.pbx.dsc(device_of(one), "NOT_INUSE")
        else:
            self.abandon(call, cause)
        call.public.outcome = "abandoned"

    def leave_queue_for_redirect(self, call: HotlineCall) -> None:
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
        self.pbx.ev_chan("MusicOnHoldStop", two)
        pos = q.position(entry)
        self._leave_queue(call, q, entry)
        self.pbx.varset(two, "QUEUEPOSITION", str(pos))
        call.entry = None


def _empty(q: Queue) -> bool:
    """leavewhenempty and no member could take a call (paused, unavailable or invalid)."""
    unreachable = (DEVICE_STATUS["UNAVAILABLE"], DEVICE_STATUS["INVALID"])
    return q.leavewhenempty and all(m.paused or m.status in unreachable for m in q.members)


def _talk_over(call: HotlineCall) -> None:
    """The scripted caller's talk time is up: it hangs up if still talking."""
    if not call.ended and call.phase == "bridged":
        call.public.hangup()


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
