"""The lab dialplan around a hotline call: the caller's channels, `[hotline]` (Answer, AGI, Queue),
the scripted caller, caller hangups, Redirect, AbsoluteTimeout and the Hangup action's routing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from ctid.asterisk.simulator.agi_client import AgiClientSession
from ctid.asterisk.simulator.bridged import BridgedCalls
from ctid.asterisk.simulator.chanspy import ChanSpy
from ctid.asterisk.simulator.core import PbxCore
from ctid.asterisk.simulator.ivr import DTMF_GAP_S, IvrInput
from ctid.asterisk.simulator.model import (
    Attempt,
    CallerPlan,
    Chan,
    HotlineCall,
    SimCall,
    device_of,
    float_or_none,
    num_text,
)
from ctid.asterisk.simulator.queues import AppQueue
from ctid.asterisk.simulator.wire import RING, UP

SENDDTMF_S = 0.45
"""SendDTMF of one digit returns after ~450 ms (recordings: 2.0111 → 2.4626)."""


class Dialplan:
    """Runs hotline calls through the lab dialplan."""

    def __init__(
        self, pbx: PbxCore, ivr: IvrInput, spy: ChanSpy, bridged: BridgedCalls, queue_app: AppQueue
    ) -> None:
        self.pbx = pbx
        self.ivr = ivr
        self.spy = spy
        self.bridged = bridged
        self.queue_app = queue_app
        bridged.after_queue = self.continue_after_queue

    def start_hotline_call(
        self,
        public: SimCall,
        plan: CallerPlan,
        variables: list[tuple[str, str]],
        trunk: bool = False,
        on_answer: Callable[[HotlineCall], None] | None = None,
    ) -> HotlineCall:
        """Create the caller's channels like the lab's Originate (or a trunk call) and run the
        hotline dialplan on them."""
        call = HotlineCall(public, plan)
        public.bind_hangup(partial(self.caller_hangs_up, call))
        self.pbx.calls.append(call)
        cid = (public.number, public.name)
        cfg = self.pbx.cfg
        if trunk:
            endpoint = cfg.trunk_endpoint or public.number or "anonymous"
            two = self.pbx.new_pjsip(
                endpoint, RING, cfg.hotline_context, cfg.hotline_exten, cid=cid
            )
            two.conn_num, two.conn_name = "", ""
            two.dnid = cfg.hotline_exten
            two.call, two.role = call, "trunk"
            call.two = two
            for name, value in variables:
                self.pbx.varset(two, name, value)
        else:
            one, two = self.pbx.new_local_pair(cfg.hotline_exten, cfg.hotline_context)
            one.call, two.call = call, call
            one.role, two.role = "caller_one", "caller_two"
            call.one, call.two = one, two
            self.pbx.newexten(one, "AppDial2", "(Outgoing Line)")
            for name, value in reversed(variables):
                self.pbx.varset(one, name, value)
            if public.number or public.name:
                one.cid_num, one.cid_name = cid
                self.pbx.newcallerid(one)
                one.conn_num, one.conn_name = cid
                self.pbx.newconnectedline(one)
            for name, value in variables:
                self.pbx.varset(two, name, value)
            if public.number or public.name:
                two.cid_num, two.cid_name = cid
                two.conn_num, two.conn_name = cid
                self.pbx.newcallerid(two)
                self.pbx.newconnectedline(two)
            self.pbx.local_bridge(one, two, cfg.hotline_context, cfg.hotline_exten, optimize=True)
            self.pbx.dial_event(
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
        self.pbx.newexten(
            two,
            "NoOp",
            f'hotline call from "{two.cid_name or "unknown"}" <{two.cid_num or "unknown"}>',
            1,
        )
        self.pbx.newexten(two, "Answer", "", 2)
        self.pbx.newstate(two, UP)
        if call.one is not None:
            one = call.one
            self.pbx.newstate(one, UP)
            self.pbx.dsc(device_of(one), "INUSE")
            self.pbx.dsc(device_of(one), "INUSE")
            self.pbx.dial_event("DialEnd", None, one, [("DialStatus", "ANSWER")])
        else:
            self.pbx.cached_dsc(device_of(two), "INUSE")
        self._start_caller_side(call)
        if on_answer is not None:
            on_answer(call)
        call.program = self.pbx.spawn(self._hotline_program(call), f"hotline-{two.name}")
        two.task = call.program
        return call

    def _start_caller_side(self, call: HotlineCall) -> None:
        plan = call.plan
        one = call.one
        if plan.mode == "lab" and one is not None:
            one.context, one.exten = "callerside", "s"
            self.pbx.newexten(one, "Wait", "2", 1)
            call.caller_task = self.pbx.spawn(self._lab_caller(call), f"callerside-{one.name}")
            one.task = call.caller_task
        elif plan.mode == "app" and one is not None:
            one.app, one.appdata = plan.app, plan.app_data
            call.caller_task = self.pbx.spawn(self._app_caller(call), f"app-{one.name}")
            one.task = call.caller_task
        else:
            if one is not None:
                one.context, one.exten = "callerside", "s"
                one.priority = 1
                one.app, one.appdata = "Wait", ""
            if plan.hangup_after_s is not None:
                call.timers.append(
                    self.pbx.later(plan.hangup_after_s, self.plan_hangup, call, "any")
                )
            for at, digits in plan.dtmf_at:
                for i, digit in enumerate(digits):
                    call.timers.append(
                        self.pbx.later(at + i * DTMF_GAP_S, self.ivr.deliver_dtmf, call.two, digit)
                    )

    def plan_hangup(self, call: HotlineCall, when: str) -> None:
        if call.ended:
            return
        if when == "ivr" and call.phase != "dialplan":
            return
        if when == "talk" and call.phase != "bridged":
            return
        self.caller_hangs_up(call)

    async def _lab_caller(self, call: HotlineCall) -> None:
        """The lab's `callerside` context: Wait(2), SendDTMF(${IVR}), Wait(${STAY}), Hangup."""
        one = call.one
        assert one is not None
        await asyncio.sleep(2)
        self.pbx.newexten(one, "SendDTMF", call.plan.lab_ivr, 2)
        for i, digit in enumerate(call.plan.lab_ivr):
            self.pbx.later(DTMF_GAP_S + i * SENDDTMF_S, self.ivr.deliver_dtmf, call.two, digit)
        await asyncio.sleep(SENDDTMF_S * max(1, len(call.plan.lab_ivr)))
        self.pbx.newexten(one, "Wait", num_text(call.plan.lab_stay), 3)
        await asyncio.sleep(call.plan.lab_stay)
        self.pbx.newexten(one, "Hangup", "", 4)
        one.task = None
        self.caller_hangs_up(call)

    async def _app_caller(self, call: HotlineCall) -> None:
        """An Originate with Application: the app runs on ;1, then ;1 hangs up (cause 0)."""
        plan = call.plan
        if plan.app.lower() == "wait":
            await asyncio.sleep(float_or_none(plan.app_data) or 0.0)
        else:
            await asyncio.Event().wait()
        assert call.one is not None
        call.one.task = None
        self.caller_hangs_up(call, cause=0, soft=False)

    async def _hotline_program(self, call: HotlineCall) -> None:
        two = call.two
        cfg = self.pbx.cfg
        await asyncio.sleep(cfg.answer_media_delay_s)
        self.pbx.newexten(two, "Set", f"CTID_QUEUE={cfg.default_queue}", 3)
        self.pbx.set_var(two, "CTID_QUEUE", cfg.default_queue)
        for priority, (name, value) in enumerate(cfg.dialplan_vars, start=4):
            self.pbx.newexten(two, "Set", f"{name}={value}", priority)
            self.pbx.set_var(two, name, value)
        self.pbx.newexten(two, "AGI", cfg.agi_url, 4 + len(cfg.dialplan_vars))
        if call.plan.hangup_in_ivr_after_s is not None:
            call.timers.append(
                self.pbx.later(call.plan.hangup_in_ivr_after_s, self.plan_hangup, call, "ivr")
            )
        status = await self._run_agi(call, cfg.agi_url)
        if status is None:
            return
        queue = two.vars.get("CTID_QUEUE", cfg.default_queue)
        self.pbx.newexten(two, "NoOp", f"AGISTATUS={status} queue={queue}", 5)
        if two.vars.get("CTID_ROUTE", "").lower() == "hangup":
            self.pbx.newexten(two, "Hangup", "", 6)
            self.pbx.end_dialplan(call, "routed_hangup", soft=True)
            return
        options = "c" if cfg.survey_agi_url else ""
        self.pbx.newexten(two, "Queue", f"{queue},{options},,,{cfg.queue_timeout_s}", 6)
        await self.queue_app.run_queue(call, queue, cfg.queue_timeout_s)

    def continue_after_queue(self, call: HotlineCall) -> bool:
        """Queue()'s `c` option (app_queue.c OPT_GO_ON): when the member hangs up, Queue returns
        with QUEUESTATUS=CONTINUE and the caller goes on to contrib's `AGI(<survey_agi_url>)`."""
        url = self.pbx.cfg.survey_agi_url
        if not url or call.phase != "bridged":
            return False
        if call.program is not None and call.program is not asyncio.current_task():
            call.program.cancel()
        call.phase = "dialplan"
        call.public.outcome = "answered"
        call.program = self.pbx.spawn(self._after_queue(call, url), f"survey-{call.two.name}")
        call.two.task = call.program
        return True

    async def _after_queue(self, call: HotlineCall, url: str) -> None:
        two = call.two
        self.pbx.varset(two, "QUEUESTATUS", "CONTINUE")
        self.pbx.newexten(two, "GotoIf", '$["${QUEUESTATUS}" != "CONTINUE"]?done', 8)
        self.pbx.newexten(two, "AGI", url, 9)
        if await self._run_agi(call, url) is None:
            return
        self.pbx.newexten(two, "Hangup", "", 10)
        self.pbx.end_dialplan(call, "answered", soft=True)

    async def _run_agi(self, call: HotlineCall, url: str) -> str | None:
        """AGI(url) on the caller's dialplan channel, then AGISTATUS; None when the caller hung up
        meanwhile (its channel is finished by then)."""
        two = call.two
        agi = AgiClientSession(self.pbx, self.ivr, self.hangup_channel, call, two, url)
        call.agi = agi
        call.in_agi = True
        try:
            status = await agi.run()
        finally:
            call.in_agi = False
            call.agi = None
        if two.dead:
            self.pbx.varset(two, "AGISTATUS", "HANGUP")
            self._finish_dead_caller(call)
            return None
        self.pbx.varset(two, "AGISTATUS", status)
        return status

    def caller_hangs_up(self, call: HotlineCall, cause: int = 16, soft: bool = True) -> None:
        """The caller's own side hangs up (callerside Hangup(), an app ending, a trunk BYE)."""
        if call.ended:
            return
        one, two = call.one, call.two
        phase = call.phase
        if phase == "bridged":
            self.bridged.caller_hangup_bridged(call, cause, soft)
            return
        if one is not None and one.alive:
            if soft:
                self.pbx.soft_hangup_request(one, cause)
            self.pbx.hangup_request(two, cause)
            self.pbx.hangup_event(one, cause)
            self.pbx.dsc(device_of(one), "NOT_INUSE")
        elif one is None:
            self.pbx.hangup_request(two, self.pbx.bye_cause(two))
        else:
            self.pbx.hangup_request(two, cause)
        if phase == "queue":
            # a trunk caller's BYE in the queue leaves its channel with cause 0
            # (pjsip_abandon_in_queue); the lab's Local caller passes its own cause on
            self.queue_app.abandon(call, cause if one is not None else 0)
            return
        self._caller_gone_in_ivr(call, cause, "ivr_hangup")

    def _caller_gone_in_ivr(self, call: HotlineCall, cause: int, outcome: str) -> None:
        """The caller's channel dies still in the dialplan (IVR): the AGI learns it, the channel
        goes when the AGI ends (at once when no AGI runs)."""
        two = call.two
        two.dead = True
        two.hangup_cause = cause
        if call.public.outcome is None:
            call.public.outcome = outcome
        if call.in_agi and call.agi is not None:
            self.ivr.deliver_dtmf_hangup(two)
            call.agi.channel_died()
            return
        self._finish_dead_caller(call)

    def _finish_dead_caller(self, call: HotlineCall) -> None:
        """The hung-up caller's dialplan channel finishes (after its AGI, if any)."""
        two = call.two
        two.task = None
        if not two.soft_hangup_sent:
            self.pbx.soft_hangup_request(two, 16)
        one = call.one
        if one is not None and one.alive:
            self.pbx.hangup_request(one, two.hangup_cause or 16)
            self.pbx.hangup_event(two, two.hangup_cause)
            self.pbx.soft_hangup_request(one, 16)
            self.pbx.hangup_event(one, two.hangup_cause)
            self.pbx.dsc(device_of(one), "NOT_INUSE")
            self.pbx.dsc(device_of(one), "NOT_INUSE")
        else:
            self.pbx.hangup_event(two, two.hangup_cause)
            if one is not None:
                self.pbx.dsc(device_of(one), "NOT_INUSE")
            else:
                self.pbx.trunk_idle(call)
        self.pbx.finish(call, call.public.outcome or "ivr_hangup")

    def hangup_channel(self, chan: Chan, cause: int | None) -> None:
        """Hangup action / AbsoluteTimeout / AGI HANGUP <chan> on any channel."""
        if any(chan.name.startswith(prefix) for prefix in self.pbx.wedged):
            return  # a channel stuck in its driver: the request is taken, nothing happens
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
                    self.pbx.plain_hangup(chan, cause or 16)
                    return
                if call.phase == "bridged" and call.agent is att:
                    self.bridged.agent_hangup(call, cause if cause else 16)
                    return
                self.queue_app.leg_gone(
                    call, att, cause if cause is not None else 0, "NOANSWER", far_first=False
                )
                return
        if chan.spy is not None or role in (
            "spy_one",
            "spy_two",
            "spy_pjsip",
            "spyrun_phone",
            "spyrun_one",
            "spyrun_two",
        ):
            self.spy.spy_hangup(chan, cause if cause is not None else 16)
            return
        self.pbx.plain_hangup(chan, cause if cause is not None else 16)

    def _attempt_of(self, call: HotlineCall, chan: Chan) -> Attempt | None:
        if call.agent is not None and chan in (call.agent.leg, call.agent.far):
            return call.agent
        if call.round is not None:
            for att in call.round.attempts:
                if chan is att.leg or chan is att.far:
                    return att
        return None

    def _pbx_hangup_caller(self, call: HotlineCall, cause: int) -> None:
        two = call.two
        if call.phase == "bridged":
            self.bridged.pbx_hangup_bridged_caller(call, cause)
            return
        if call.phase == "queue":
            self.queue_app.abandon_from_pbx(call, cause)
            return
        if not two.dead:  # in the IVR
            self._caller_gone_in_ivr(call, cause, "dropped")

    def absolute_timeout(self, chan: Chan, seconds: float) -> None:
        if chan.timeout_handle is not None:
            chan.timeout_handle.cancel()
            chan.timeout_handle = None
        if seconds > 0:
            chan.timeout_handle = self.pbx.later(seconds, self._timeout_fired, chan)

    def _timeout_fired(self, chan: Chan) -> None:
        chan.timeout_handle = None
        if chan.alive:
            self.hangup_channel(chan, 16)

    def redirect(self, chan: Chan, context: str, exten: str, priority: int) -> bool:
        """Send the caller's channel elsewhere: leave the queue / the agent and run the target."""
        call = chan.call
        if call is None or call.ended or chan is not call.two:
            return self._redirect_plain(chan, context, exten, priority)
        target = self._redirect_target(context, exten)
        if call.phase == "queue":
            self.queue_app.leave_queue_for_redirect(call)
        elif call.phase == "bridged":
            self.bridged.transfer_out(call)
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
            self.pbx.end_dialplan(call, "dropped", soft=False)
            return True
        kind, arg = target
        if kind == "hotline":
            call.program = self.pbx.spawn(self._hotline_program(call), f"hotline-{two.name}")
        else:
            timeout = self.pbx.cfg.queue_timeout_s

            async def run_queue() -> None:
                self.pbx.newexten(two, "Queue", f"{arg},,,,{timeout}", priority)
                await self.queue_app.run_queue(call, arg, timeout)

            call.program = self.pbx.spawn(run_queue(), f"queue-{two.name}")
        two.task = call.program
        return True

    def _redirect_target(self, context: str, exten: str) -> tuple[str, str] | None:
        if context == self.pbx.cfg.hotline_context and exten == self.pbx.cfg.hotline_exten:
            return ("hotline", exten)
        mapped = self.pbx.cfg.queue_extensions.get(f"{context},{exten}")
        if mapped:
            return ("queue", mapped)
        if exten in self.pbx.queues:
            return ("queue", exten)
        return None

    def _redirect_plain(self, chan: Chan, context: str, exten: str, priority: int) -> bool:
        chan.context, chan.exten, chan.priority = context, exten, priority
        return True
