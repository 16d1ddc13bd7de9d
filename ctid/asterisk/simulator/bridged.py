"""A queue call once the member answered: the bridge, AgentComplete and member stats, and every way
the bridged call ends (agent, caller, the PBX, a spy holding the leg, a Redirect away).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ctid.asterisk.simulator.chanspy import ChanSpy
from ctid.asterisk.simulator.core import PbxCore
from ctid.asterisk.simulator.model import Chan, EarlierMember, HotlineCall, Queue, device_of
from ctid.asterisk.simulator.wire import PRIV_AGENT, PRIV_CALL, Pairs


class BridgedCalls:
    """Teardown of bridged queue calls."""

    def __init__(self, pbx: PbxCore, spy: ChanSpy) -> None:
        self.pbx = pbx
        self.spy = spy
        self.after_queue: Callable[[HotlineCall], bool] = lambda _call: False
        """Queue()'s `c` option: True when the caller goes on in the dialplan (set by Dialplan)."""

    def _complete(self, call: HotlineCall, reason: str) -> None:
        """AgentComplete with whatever snapshots still exist, and the queue/member stats; first for
        the members a Redirect took this caller away from (app_queue closes them only now)."""
        q, att = call.queue, call.agent
        if q is None or att is None or call.completed:
            return
        call.completed = True
        if reason != "agent":  # the caller's hangup closes the earlier members first
            self.complete_earlier(call)
        m = att.member
        talk = self.pbx.epoch_int() - int(call.connected_epoch)
        hold = int(call.two.vars.get("QUEUEWAIT", "0") or 0)
        event = {"caller": "COMPLETECALLER", "agent": "COMPLETEAGENT"}.get(reason)
        if event is not None:
            self.pbx.queue_log.write(
                q.name, call.two.uniqueid, m.name, event, hold, talk, call.caller_pos
            )
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
        self.pbx.ev("AgentComplete", PRIV_AGENT, body)
        self.complete_earlier(call)  # after an agent's hangup: when the caller's channel goes

    def complete_earlier(self, call: HotlineCall) -> None:
        two = call.two
        for old in call.earlier:
            talk = self.pbx.epoch_int() - int(old.connected_epoch)
            m = old.member
            self.pbx.queue_log.write(
                old.queue.name,
                two.uniqueid,
                m.name,
                "COMPLETECALLER",
                old.hold_s,
                talk,
                old.caller_pos,
            )
            body: Pairs = two.block() if two.alive else []
            body += [
                ("Queue", old.queue.name),
                ("Interface", m.interface),
                ("MemberName", m.name),
                ("HoldTime", str(old.hold_s)),
                ("TalkTime", str(talk)),
                ("Reason", "caller"),
            ]
            self.pbx.ev("AgentComplete", PRIV_AGENT, body)
            m.calls_taken += 1
            m.last_call = self.pbx.epoch_int()
            _count_completed(old.queue, talk)
        call.earlier.clear()

    def _member_done(self, call: HotlineCall) -> None:
        """The member's call is over: stats first, so QueueMemberStatus shows them."""
        q, att = call.queue, call.agent
        if q is None or att is None or att.done_stats:
            return
        att.done_stats = True
        m = att.member
        m.in_call = False
        m.calls_taken += 1
        m.last_call = self.pbx.epoch_int()
        talk = self.pbx.epoch_int() - int(call.connected_epoch)
        _count_completed(q, talk)

    def _answered_times(self, call: HotlineCall) -> None:
        two = call.two
        answered_ms = int((self.pbx.epoch() - call.connected_epoch) * 1000)
        dialed_ms = int((self.pbx.epoch() - two.created_epoch) * 1000)
        self.pbx.varset(two, "ANSWEREDTIME", str(answered_ms // 1000))
        self.pbx.varset(two, "ANSWEREDTIME_MS", str(answered_ms))
        self.pbx.varset(two, "DIALEDTIME", str(dialed_ms // 1000))
        self.pbx.varset(two, "DIALEDTIME_MS", str(dialed_ms))

    def _bridge_leave(self, call: HotlineCall, chan: Chan) -> None:
        bridge = call.bridge
        if bridge is None or chan not in bridge.chans:
            return
        bridge.chans.remove(chan)
        chan.bridge = None
        self.pbx.ev("BridgeLeave", PRIV_CALL, bridge.block() + chan.block())

    def _bridge_destroy(self, call: HotlineCall) -> None:
        bridge = call.bridge
        if bridge is None:
            return
        for chan in list(bridge.chans):
            self._bridge_leave(call, chan)
        self.pbx.ev("BridgeDestroy", PRIV_CALL, bridge.block())
        call.bridge = None

    def _seat_idle(self, call: HotlineCall, twice: bool = True) -> None:
        att = call.agent
        if att is None or att.leg is None:
            return
        device = device_of(att.leg)
        if att.leg.tech == "Local":
            self.pbx.set_device_state(device, self.pbx.idle_state(device))
            if twice:
                self.pbx.dsc(device, "NOT_INUSE")
        else:
            self.pbx.set_device_state(device, self.pbx.idle_state(device))

    def agent_hangup(self, call: HotlineCall, cause: int = 16) -> None:
        """The seat hangs up a bridged call (answered.jsonl; chanspy.jsonl when spied)."""
        att = call.agent
        if call.phase != "bridged" or att is None or att.leg is None:
            return
        leg, far, two, one = att.leg, att.far, call.two, call.one
        if leg.spied_by:
            self._agent_hangup_spied(call, cause)
            return
        self._phone_hangs_up(leg, far, cause)
        self._member_done(call)
        self._complete(call, "agent")
        self.pbx.varset(leg, "BRIDGEPEER", "")
        self.pbx.varset(two, "BRIDGEPEER", "")
        self._bridge_leave(call, leg)
        self.pbx.hangup_event(leg, cause)
        self._seat_idle(call)
        self._bridge_leave(call, two)
        self._answered_times(call)
        if self.after_queue(call):
            self._bridge_destroy_quiet(call)
            return
        self.pbx.soft_hangup_request(two, 16)
        if one is not None and one.alive:
            self.pbx.hangup_request(one, 16)
        self.pbx.hangup_event(two, 16)
        self._bridge_destroy_quiet(call)
        if one is not None and one.alive:
            self.pbx.soft_hangup_request(one, 16)
            self.pbx.hangup_event(one, 16)
        self.pbx.caller_devstate(call)
        self.pbx.finish(call, "answered")

    def _phone_hangs_up(self, leg: Chan, far: Chan | None, cause: int) -> None:
        """The seat's side hangs up: a Local phone's live far half goes first and asks the leg to
        follow; without one the leg is asked at once. The leg's own Hangup event comes later."""
        if far is not None and far.alive:
            self.pbx.soft_hangup_request(far, cause)
            self.pbx.hangup_request(leg, cause)
            self.pbx.hangup_event(far, cause)
        else:
            self.pbx.hangup_request(leg, cause)

    def _bridge_destroy_quiet(self, call: HotlineCall) -> None:
        bridge = call.bridge
        if bridge is not None:
            self.pbx.ev("BridgeDestroy", PRIV_CALL, bridge.block())
            call.bridge = None

    def _agent_hangup_spied(self, call: HotlineCall, cause: int) -> None:
        """chanspy.jsonl: a spy holds the seat leg, so the caller goes first and AgentComplete
        comes without the caller's snapshot."""
        att = call.agent
        assert att is not None and att.leg is not None
        leg, far, two, one = att.leg, att.far, call.two, call.one
        self._phone_hangs_up(leg, far, cause)
        self.pbx.varset(leg, "BRIDGEPEER", "")
        self.pbx.varset(two, "BRIDGEPEER", "")
        self._bridge_leave(call, leg)
        self._bridge_leave(call, two)
        self._bridge_destroy_quiet(call)
        self._answered_times(call)
        self.pbx.soft_hangup_request(two, 16)
        if one is not None and one.alive:
            self.pbx.hangup_request(one, 16)
        self.pbx.hangup_event(two, 16)
        if one is not None and one.alive:
            self.pbx.soft_hangup_request(one, 16)
            self.pbx.hangup_event(one, 16)
        self._member_done(call)
        device = device_of(leg)
        if leg.tech == "Local":
            self.pbx.set_device_state(device, self.pbx.idle_state(device))
        self._complete(call, "agent")
        if one is not None:
            self.pbx.dsc(device_of(one), "NOT_INUSE")
            self.pbx.dsc(device_of(one), "NOT_INUSE")
        else:
            self.pbx.trunk_idle(call)
        self.pbx.finish(call, "answered")
        # the spy lets go of the leg a moment later
        self.pbx.later(0.01, self._release_spied_leg, leg, cause)

    def _release_spied_leg(self, leg: Chan, cause: int) -> None:
        for spy in list(leg.spied_by):
            self.spy.spy_target_gone(spy)
        self.pbx.hangup_event(leg, cause)
        device = device_of(leg)
        if leg.tech == "Local":
            self.pbx.dsc(device, "NOT_INUSE")
        else:
            # the seat's device goes idle only now: without this a spied PJSIP seat stayed
            # INUSE for good and was never rung again (the stuck seat of `ctid demo`)
            self.pbx.set_device_state(device, self.pbx.idle_state(device))

    def caller_hangup_bridged(self, call: HotlineCall, cause: int, soft: bool) -> None:
        """The caller hangs up during the conversation (resync.jsonl)."""
        att = call.agent
        assert att is not None and att.leg is not None
        leg, two, one = att.leg, call.two, call.one
        if one is not None and one.alive:
            if soft:
                self.pbx.soft_hangup_request(one, cause)
            self.pbx.hangup_request(two, cause)
            self.pbx.hangup_event(one, cause)
            self.pbx.dsc(device_of(one), "NOT_INUSE")
        else:
            self.pbx.hangup_request(two, self.pbx.bye_cause(two))
        self.pbx.varset(two, "BRIDGEPEER", "")
        self.pbx.varset(leg, "BRIDGEPEER", "")
        self._member_done(call)
        self._complete(call, "caller")
        self._bridge_leave(call, two)
        self._answered_times(call)
        self.pbx.soft_hangup_request(two, 16)
        self._bridge_leave(call, leg)
        self._bridge_destroy_quiet(call)
        self.pbx.hangup_event(two, cause)
        self._teardown_agent_leg(call, cause)
        if one is not None:
            self.pbx.dsc(device_of(one), "NOT_INUSE")
        else:
            self.pbx.trunk_idle(call)
        self.pbx.finish(call, "answered")

    def _teardown_agent_leg(self, call: HotlineCall, cause: int) -> None:
        att = call.agent
        if att is None or att.leg is None:
            return
        leg, far = att.leg, att.far
        if leg.spied_by:
            for spy in list(leg.spied_by):
                self.spy.spy_target_gone(spy)
        if far is not None and far.alive:
            self.pbx.hangup_request(far, cause)
            self.pbx.hangup_event(leg, cause)
            self._seat_idle(call, twice=False)
            self.pbx.soft_hangup_request(far, 16)
            self.pbx.hangup_event(far, cause)
            self.pbx.dsc(device_of(leg), "NOT_INUSE")
        else:
            self.pbx.hangup_event(leg, cause)
            self._seat_idle(call, twice=False)

    def pbx_hangup_bridged_caller(self, call: HotlineCall, cause: int) -> None:
        """The PBX tears the caller's queue channel down mid-call (AbsoluteTimeout, Hangup action):
        call_cap.jsonl."""
        att = call.agent
        assert att is not None and att.leg is not None
        leg, far, two, one = att.leg, att.far, call.two, call.one
        self.pbx.varset(two, "BRIDGEPEER", "")
        self.pbx.varset(leg, "BRIDGEPEER", "")
        self._bridge_leave(call, two)
        self._bridge_leave(call, leg)
        self._answered_times(call)
        self._bridge_destroy_quiet(call)
        self._member_done(call)
        if leg.spied_by:
            for spy in list(leg.spied_by):
                self.spy.spy_target_gone(spy)
        if far is not None and far.alive:
            self.pbx.hangup_request(far, 16)
            self.pbx.hangup_event(leg, 16)
            self.pbx.soft_hangup_request(far, 16)
            self.pbx.hangup_event(far, 16)
            self._seat_idle(call)
        else:
            self.pbx.hangup_event(leg, 16)
            self._seat_idle(call)
        self.pbx.soft_hangup_request(two, 16)
        self._complete(call, "caller")
        if one is not None and one.alive:
            self.pbx.hangup_request(one, cause)
        self.pbx.hangup_event(two, cause)
        if one is not None and one.alive:
            self.pbx.dsc(device_of(one), "NOT_INUSE")
            self.pbx.soft_hangup_request(one, 16)
            self.pbx.hangup_event(one, cause)
            self.pbx.dsc(device_of(one), "NOT_INUSE")
        else:
            self.pbx.trunk_idle(call)
        self.pbx.finish(call, "answered")

    def transfer_out(self, call: HotlineCall) -> None:
        """The caller is redirected away from the agent (pjsip_transfer_redirect): the bridge goes
        and the seat hangs up, but app_queue sends no AgentComplete and writes no queue_log line
        until the caller's channel hangs up; then TalkTime counts to that moment."""
        att = call.agent
        q = call.queue
        assert att is not None and att.leg is not None and q is not None
        if call.program is not None and call.program is not asyncio.current_task():
            call.program.cancel()
        leg, two = att.leg, call.two
        hold = int(two.vars.get("QUEUEWAIT", "0") or 0)
        call.earlier.append(
            EarlierMember(q, att.member, hold, call.connected_epoch, call.caller_pos)
        )
        self._bridge_leave(call, two)
        self._answered_times(call)
        self._bridge_leave(call, leg)
        self._bridge_destroy_quiet(call)
        att.done_stats = True
        att.member.in_call = False
        two.left_cause = 16
        self._teardown_agent_leg(call, 16)
        call.agent = None
        call.completed = False
        call.public.answered.clear()


def _count_completed(q: Queue, talk: int) -> None:
    """update_queue: one more completed call; the first talk time is taken as it is."""
    q.completed += 1
    if q.completed == 1:
        q.talktime = talk
    else:
        q.talktime = ((q.talktime << 2) - q.talktime + talk) >> 2
