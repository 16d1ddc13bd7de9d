"""The seat phones the queue rings: a Local channel pair into the lab's `phones` context or a PJSIP
channel, and the phone's scripted behaviour (ring, answer after N s, talk N s, hang up, busy).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ctid.asterisk.simulator.bridged import BridgedCalls
from ctid.asterisk.simulator.config import PhoneSpec
from ctid.asterisk.simulator.core import PbxCore
from ctid.asterisk.simulator.model import Attempt, Chan, HotlineCall, Queue, num_text
from ctid.asterisk.simulator.wire import DOWN, RINGING

NEVER_S = 300.0
"""The lab phone that never answers runs `Wait(300)`."""


class RingOwner(Protocol):
    """What a ringing phone reports back to the queue that rang it."""

    def member_answered(self, call: HotlineCall, att: Attempt) -> bool: ...

    def leg_gone(
        self, call: HotlineCall, att: Attempt, cause: int, status: str, far_first: bool
    ) -> None: ...

    def leg_busy(self, call: HotlineCall, att: Attempt) -> None: ...


class SeatPhones:
    """Rings seat phones for a queue and plays each phone's script."""

    def __init__(self, pbx: PbxCore, bridged: BridgedCalls, queue_app: RingOwner) -> None:
        self.pbx = pbx
        self.bridged = bridged
        self.queue_app = queue_app

    def _agent_called(
        self, call: HotlineCall, q: Queue, att: Attempt, leg: Chan, dial_string: str
    ) -> None:
        """AgentCalled, then DialBegin whose Dest block is the leg as it was before it took the
        caller as its connected line (and the caller's exten)."""
        m, two = att.member, call.two
        stale = leg.block("Dest")
        leg.conn_num, leg.conn_name = two.cid_num, two.cid_name
        leg.exten = two.exten
        self.pbx.dial_event(
            "AgentCalled",
            two,
            leg,
            [("Queue", q.name), ("Interface", m.interface), ("MemberName", m.name)],
        )
        self.pbx.dial_event("DialBegin", two, stale, [("DialString", dial_string)])

    def ring_local(
        self, call: HotlineCall, q: Queue, att: Attempt, key: str, phone: PhoneSpec
    ) -> None:
        m = att.member
        two = call.two
        iface = m.interface
        target = iface[len("Local/") :]
        if target.endswith("/n"):
            target = target[:-2]
        exten, _, context = target.partition("@")
        leg, far = self.pbx.new_local_pair(exten, context or "default", linkedid=two.linkedid)
        att.leg, att.far = leg, far
        for c, role in ((leg, "seat_leg"), (far, "seat_far")):
            c.call, c.role, c.seat_key = call, role, key
        leg.cid_num, leg.cid_name = two.cid_num, two.cid_name
        self.pbx.newexten(leg, "AppQueue", "(Outgoing Line)")
        self.pbx.newcallerid(leg)
        dialed = target + ("/n" if iface.endswith("/n") else "")
        self.pbx.varset(leg, "DIALEDPEERNUMBER", dialed)
        self.pbx.varset(far, "DIALEDPEERNUMBER", dialed)
        far.cid_num, far.cid_name = two.cid_num, two.cid_name
        far.conn_num, far.conn_name = two.cid_num, two.cid_name
        self.pbx.newcallerid(far)
        self.pbx.newconnectedline(far)
        self.pbx.local_bridge(leg, far, context, exten, optimize=not iface.endswith("/n"))
        self._agent_called(call, q, att, leg, iface)
        # the phone's dialplan starts: NoOp, Ringing
        self.pbx.newexten(far, "NoOp", f"phone {exten} rings", 1)
        self.pbx.newexten(far, "Ringing", "", 2)
        self.pbx.newstate(leg, RINGING)
        self.pbx.newexten(leg, "AppQueue", "(Outgoing Line)")
        self.pbx.newconnectedline(leg)
        device = f"Local/{exten}@{context}"
        if phone.unavailable:
            self.pbx.set_device_state(device, "UNAVAILABLE")
        else:
            self.pbx.set_device_state(device, "INUSE")
        if phone.busy:
            self.pbx.dial_event("DialState", two, leg, [("DialStatus", "RINGING")])
            self.pbx.later(0.0, self.queue_app.leg_busy, call, att)
            return
        if phone.answer_after_s is not None:
            self.pbx.varset(far, "DB_RESULT", num_text(phone.answer_after_s))
        self.pbx.dial_event("DialState", two, leg, [("DialStatus", "RINGING")])
        if phone.answer_after_s is not None:
            self.pbx.newexten(far, "GotoIf", "0?never", 3)
            self.pbx.varset(far, "DB_RESULT", num_text(phone.answer_after_s))
            self.pbx.newexten(far, "Wait", num_text(phone.answer_after_s), 4)
        else:
            self.pbx.newexten(far, "GotoIf", "1?never", 3)
            self.pbx.newexten(far, "Wait", num_text(NEVER_S), 8)
        far.task = self.pbx.spawn(self._phone_program(call, att, phone), f"phone-{far.name}")

    def ring_pjsip(
        self, call: HotlineCall, q: Queue, att: Attempt, key: str, phone: PhoneSpec
    ) -> None:
        m = att.member
        two = call.two
        endpoint = m.interface.split("/", 1)[1]
        # the seat's own endpoint caller id (pjsip.conf `callerid = Seat 1 <seat1>`) names the
        # leg; the caller shows as its connected line (pjsip_answered)
        leg = self.pbx.new_pjsip(
            endpoint,
            DOWN,
            "seats",
            "s",
            linkedid=two.linkedid,
            cid=(key, self.pbx.seat_names.get(key, m.name)),
        )
        leg.call, leg.role, leg.seat_key = call, "seat_pjsip", key
        att.leg = leg
        self.pbx.newexten(leg, "AppQueue", "(Outgoing Line)")
        self.pbx.varset(leg, "DIALEDPEERNUMBER", endpoint)
        self._agent_called(call, q, att, leg, endpoint)
        if phone.busy:
            self.pbx.later(0.0, self.queue_app.leg_busy, call, att)
            return
        self.pbx.newstate(leg, RINGING)
        self.pbx.newexten(leg, "AppQueue", "(Outgoing Line)")
        self.pbx.newconnectedline(leg)
        self.pbx.dial_event("DialState", two, leg, [("DialStatus", "RINGING")])
        self.pbx.set_device_state(f"PJSIP/{endpoint}", "RINGING")
        leg.task = self.pbx.spawn(self._phone_program(call, att, phone), f"phone-{leg.name}")

    async def _phone_program(self, call: HotlineCall, att: Attempt, phone: PhoneSpec) -> None:
        """The seat phone: ring, answer after `answer_after_s`, talk `talk_s`, hang up."""
        if phone.answer_after_s is None:
            await asyncio.sleep(NEVER_S)
            # the lab phone gives up after Wait(300): its side hangs up
            if att.leg is not None and att.leg.alive and call.round is not None:
                self.queue_app.leg_gone(call, att, 16, "NOANSWER", far_first=True)
            return
        await asyncio.sleep(phone.answer_after_s)
        if not self.queue_app.member_answered(call, att):
            return
        far = att.far
        await asyncio.sleep(self.pbx.cfg.answer_media_delay_s if far is not None else 0.0)
        if far is not None and phone.talk_s is not None:
            self.pbx.varset(far, "DB_RESULT", num_text(phone.talk_s))
            self.pbx.varset(far, "DB_RESULT", num_text(phone.talk_s))
            self.pbx.newexten(far, "Wait", num_text(phone.talk_s), 6)
        if phone.talk_s is None:
            await asyncio.Event().wait()
            return
        await asyncio.sleep(phone.talk_s)
        if far is not None:
            self.pbx.newexten(far, "Hangup", "", 7)
        self.bridged.agent_hangup(call, cause=16)
