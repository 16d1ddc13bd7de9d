"""The simulated app_chanspy: a spy channel scans for its target, ChanSpyStart/Stop, how the spy
leg ends (its own Hangup, the target going away, the lab supervisor phone giving up), and contrib's
[ctid-spy] path, where the supervisor's phone Dials a Local whose `;2` runs ChanSpy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from ctid.asterisk.simulator.core import PbxCore
from ctid.asterisk.simulator.model import Bridge, Chan, ChanSpyLeg, device_of, num_text
from ctid.asterisk.simulator.wire import PRIV_CALL, UP

SPY_RUN_CONTEXT = "ctid-spy-run"
"""contrib's context whose Local `;2` runs ChanSpy (see contrib/asterisk/extensions.conf)."""

SPY_SCAN_S = 0.1
"""ChanSpy waits 100 ms (ast_waitfordigit) before each scan for channels."""


class ChanSpy:
    """Every ChanSpy() running on the PBX."""

    def __init__(self, pbx: PbxCore) -> None:
        self.pbx = pbx
        pbx.spy_gone = self.spy_target_gone

    def start_spy(self, spyer: Chan, data: str, on_end: Callable[[], None] | None = None) -> None:
        prefix, _, options = data.partition(",")
        spy = ChanSpyLeg(spyer, prefix.strip(), options)
        spyer.spy = spy
        spyer.app, spyer.appdata = "ChanSpy", data
        spyer.task = self.pbx.spawn(self._spy_program(spy), f"chanspy-{spyer.name}")

    async def _spy_program(self, spy: ChanSpyLeg) -> None:
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
                    self.pbx.varset(target, "BRIDGEPEER", peer.name)
                for peer in peers:
                    self.pbx.varset(peer, "BRIDGEPEER", target.name)
            await spy.stopped.wait()
            if "E" in opts or spy.hangup_pending or not spyer.alive:
                break
        if spyer.alive:
            spyer.task = None
            self._spy_exit(spyer)

    def _spy_find(self, spy: ChanSpyLeg) -> Chan | None:
        spyer = spy.spyer
        low = spy.prefix.lower()
        for chan in self.pbx.channels.values():
            if chan is spyer or chan is spyer.other or not chan.alive:
                continue
            if chan.spy is not None or chan.dead:
                continue
            if chan.name.lower().startswith(low):
                return chan
        return None

    def _spy_event(self, name: str, spy: ChanSpyLeg, target: Chan) -> None:
        self.pbx.ev(name, PRIV_CALL, spy.spyer.block("Spyer") + target.block("Spyee"))

    def spy_target_gone(self, spy: ChanSpyLeg) -> None:
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
        """ChanSpy returned: the originated spy channel hangs up (cause 0, as recorded); a Hangup
        it ignored while the call was silent is carried out now (pjsip_spy_silent)."""
        if spyer.role == "spyrun_two":
            self._spyrun_two_exit(spyer, 16)
            return
        if spyer.spy is not None and spyer.spy.hangup_pending:
            self.pbx.soft_hangup_request(spyer, 16)
        other = spyer.other
        if other is not None and other.alive:
            self.pbx.hangup_request(other, 0)
        self.pbx.hangup_event(spyer, 0)
        if other is not None and other.alive:
            self.pbx.soft_hangup_request(other, 16)
            self.pbx.hangup_event(other, 0)
        self._spyer_idle(spyer)

    def spy_hangup(self, chan: Chan, cause: int) -> None:
        """The spy's own side is hung up (Hangup action on it, or its phone gave up)."""
        if chan.role in ("spyrun_phone", "spyrun_one"):
            self._spyrun_phone_hangup(chan, cause)
            return
        if chan.role == "spyrun_two":
            self._spyrun_two_hangup(chan, cause)
            return
        spyer = chan if chan.spy is not None else chan.other
        if spyer is None or spyer.spy is None:
            self.pbx.plain_hangup(chan, cause)
            return
        spy = spyer.spy
        if spyer.tech == "PJSIP" and chan is spyer:
            self._hangup_when_audio(spy)
            return
        self._stop_spying(spy)
        other = spyer.other
        if chan is spyer:
            if other is not None and other.alive:
                self.pbx.hangup_request(other, cause)
            self.pbx.hangup_event(spyer, cause)
            if other is not None and other.alive:
                self.pbx.soft_hangup_request(other, 16)
                self.pbx.hangup_event(other, cause)
        else:
            self.pbx.hangup_request(spyer, cause)
            self.pbx.hangup_event(chan, cause)
            self.pbx.hangup_event(spyer, cause)
        self._spyer_idle(spyer)

    def _spyer_idle(self, spyer: Chan) -> None:
        device = device_of(spyer)
        if spyer.tech == "Local":
            self.pbx.dsc(device, "NOT_INUSE")
            self.pbx.dsc(device, "NOT_INUSE")
        else:
            self.pbx.cached_dsc(device, "NOT_INUSE")

    def _stop_spying(self, spy: ChanSpyLeg) -> None:
        """ChanSpy leaves its loop now: its target is let go (ChanSpyStop), its task ends."""
        spyer = spy.spyer
        if spy.target is not None:
            self.spy_target_gone(spy)
        spy.stopped.set()
        if spyer.task is not None and spyer.task is not asyncio.current_task():
            spyer.task.cancel()
        spyer.task = None

    def _hangup_when_audio(self, spy: ChanSpyLeg) -> None:
        """A Hangup of a channel inside ChanSpy (a supervisor phone's leg, or `;2`). app_chanspy
        only notices it when a frame arrives from the spied call: on a silent call nothing
        happens until that call ends (pjsip_spy_silent); with audio the leg ends ~2 ms later
        (pjsip_spy_rtp)."""
        if spy.hangup_pending:
            return
        spy.hangup_pending = True
        target = spy.target
        if target is not None and not self._carries_audio(target):
            return
        self.pbx.later(0.002, self._end_spy_leg, spy)

    def _end_spy_leg(self, spy: ChanSpyLeg) -> None:
        spyer = spy.spyer
        if not spyer.alive:
            return
        self._stop_spying(spy)
        self._spy_exit(spyer)

    def _carries_audio(self, target: Chan) -> bool:
        """Does the spied channel pass audio frames? The lab's Local phones always do; a PJSIP
        seat leg does if its phone sends RTP or a bridged caller does."""
        if target.tech == "Local":
            return True
        call = target.call
        if target.seat_key and self.pbx.phone(target.seat_key).sends_audio:
            return True
        return call is not None and call.phase == "bridged" and call.plan.sends_audio

    async def supervisor_program(self, two: Chan) -> None:
        """The lab's `supervisor` context: Answer, Wait(60), then hang up."""
        await asyncio.sleep(self.pbx.cfg.answer_media_delay_s)
        self.pbx.newexten(two, "Wait", num_text(self.pbx.cfg.supervisor_stay_s), 2)
        await asyncio.sleep(self.pbx.cfg.supervisor_stay_s)
        two.task = None
        if two.alive:
            self.spy_hangup(two, 16)

    # ------------------------------------------------------------ [ctid-spy]: Dial a Local
    # The phone Dials `Local/spy<id>@ctid-spy-run/n` and the Local's `;2` runs ChanSpy, so the
    # phone is never the spying channel: hanging it up frees it even while ChanSpy lingers on `;2`
    # during a silent call (`_spyrun_phone_hangup`, `_spyrun_two_hangup`).

    def dial_local_spy(self, phone: Chan, exten: str) -> None:
        """The answered supervisor phone runs `Dial(Local/<exten>@ctid-spy-run/n)`. Dial copies
        the phone's `__` variables to `;1` (ast_channel_inherit_variables), core_unreal copies
        all of `;1`'s to `;2` (neither emits VarSet); the `;2` runs ChanSpy, which answers it, so
        Dial answers and bridges the phone with `;1`. Shapes as the Local seat phones of the
        first recording set (Newchannel ;1/;2, LocalBridge, DialBegin/End, BridgeEnter)."""
        pbx = self.pbx
        dialstring = f"{exten}@{SPY_RUN_CONTEXT}/n"
        phone.role = "spyrun_phone"
        phone.context, phone.exten = "ctid-spy", exten
        target = pbx.substitute(phone, "${CTID_SPY_CHANNEL}")
        pbx.newexten(phone, "NoOp", f"ctid listen-in {exten} on {target}", 1)
        pbx.newexten(phone, "Dial", f"Local/{dialstring}", 2)
        one, two = pbx.new_local_pair(exten, SPY_RUN_CONTEXT, linkedid=phone.linkedid)
        one.role, two.role = "spyrun_one", "spyrun_two"
        pbx.varset(one, "DIALEDPEERNUMBER", dialstring)
        inherited = {k: v for k, v in phone.vars.items() if k.startswith("_")}
        one.vars.update(inherited)
        two.vars.update(inherited)
        pbx.newexten(one, "AppDial", "(Outgoing Line)")
        cid = (phone.cid_num, phone.cid_name)
        if cid != ("", ""):
            one.cid_num, one.cid_name = cid
            pbx.newcallerid(one)
            two.cid_num, two.cid_name = cid
            pbx.newcallerid(two)
            two.conn_num, two.conn_name = cid
            pbx.newconnectedline(two)
        pbx.local_bridge(one, two, SPY_RUN_CONTEXT, exten, optimize=False)
        pbx.dial_event("DialBegin", phone, one, [("DialString", dialstring)])
        data = pbx.substitute(two, "${CTID_SPY_CHANNEL},${CTID_SPY_OPTIONS}")
        pbx.newexten(two, "ChanSpy", data, 1)
        pbx.newstate(two, UP)  # ChanSpy answers its channel
        pbx.newstate(one, UP)
        pbx.dial_event("DialEnd", phone, one, [("DialStatus", "ANSWER")])
        device = device_of(one)
        pbx.dsc(device, "INUSE")
        pbx.dsc(device, "INUSE")
        bridge = Bridge(str(uuid.UUID(int=pbx.rng.getrandbits(128), version=4)))
        pbx.ev("BridgeCreate", PRIV_CALL, bridge.block())
        for chan in (phone, one):
            bridge.chans.append(chan)
            chan.bridge = bridge
            pbx.ev("BridgeEnter", PRIV_CALL, bridge.block() + chan.block())
        self.start_spy(two, data)

    def _spyrun_phone_hangup(self, chan: Chan, cause: int) -> None:
        """The phone (or `;1`) is hung up: the bridge dissolves, app_dial hangs up `;1`, whose
        owner-side hangup queues a hangup on `;2` (HangupRequest, unreal_hangup), then the phone
        hangs up. `;2` is left to ChanSpy: it ends now with audio, or lingers (silent call)."""
        pbx = self.pbx
        bridge = chan.bridge
        phone = chan if chan.role == "spyrun_phone" else None
        one = chan if chan.role == "spyrun_one" else None
        if bridge is not None:
            for member in list(bridge.chans):
                if member.role == "spyrun_phone":
                    phone = member
                elif member.role == "spyrun_one":
                    one = member
            for member in list(bridge.chans):
                bridge.chans.remove(member)
                member.bridge = None
                pbx.ev("BridgeLeave", PRIV_CALL, bridge.block() + member.block())
            pbx.ev("BridgeDestroy", PRIV_CALL, bridge.block())
        if one is not None and one.alive:
            two = one.other
            if two is not None and two.alive:
                pbx.hangup_request(two, cause)
            pbx.hangup_event(one, cause)
            pbx.dsc(device_of(one), "NOT_INUSE")
            pbx.dsc(device_of(one), "NOT_INUSE")
            if two is not None and two.alive:
                self._spyrun_two_hangup(two, cause)
        if phone is not None and phone.alive:
            pbx.hangup_event(phone, cause)
            pbx.cached_dsc(device_of(phone), "NOT_INUSE")

    def _spyrun_two_hangup(self, two: Chan, cause: int) -> None:
        """`;2` is asked to hang up while inside ChanSpy: app_chanspy leaves its loop, then waits
        in ast_audiohook_detach() for a frame of the spied channel (pjsip_spy_silent)."""
        spy = two.spy
        if spy is None:
            self._spyrun_two_exit(two, cause)
            return
        self._hangup_when_audio(spy)  # lingers until the spied call has audio or ends

    def _spyrun_two_exit(self, two: Chan, cause: int) -> None:
        """ChanSpy returned on `;2` (or never ran): `;2` hangs up, and with it `;1`, the bridge
        and the phone, if they are still there."""
        pbx = self.pbx
        if not two.alive:
            return
        one = two.other
        if one is not None and one.alive:
            pbx.hangup_request(one, cause)
        pbx.hangup_event(two, cause)
        if one is not None and one.alive:
            self._spyrun_phone_hangup(one, cause)
