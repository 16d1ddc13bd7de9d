"""The simulated PBX's telephony assembled: the shared core and the parts acting on it (dialplan and
IVR, app_queue and seat phones, bridged calls, ChanSpy, membership). Event sequences are copied from
the Asterisk 22.10.1 recordings; where they show nothing, from the same Asterisk code paths.
"""

from __future__ import annotations

from ctid.asterisk.simulator.bridged import BridgedCalls
from ctid.asterisk.simulator.chanspy import ChanSpy
from ctid.asterisk.simulator.config import SimulatorConfig
from ctid.asterisk.simulator.core import Broadcast, PbxCore
from ctid.asterisk.simulator.dialplan import Dialplan
from ctid.asterisk.simulator.ivr import IvrInput
from ctid.asterisk.simulator.members import QueueMembers
from ctid.asterisk.simulator.queues import AppQueue


class Engine:
    """The parts of the PBX, wired once; `pbx` holds the state they share."""

    def __init__(self, cfg: SimulatorConfig, broadcast: Broadcast) -> None:
        self.pbx = PbxCore(cfg, broadcast)
        self.ivr = IvrInput(self.pbx)
        self.spy = ChanSpy(self.pbx)
        self.bridged = BridgedCalls(self.pbx, self.spy)
        self.queue_app = AppQueue(self.pbx, self.bridged)
        self.dialplan = Dialplan(self.pbx, self.ivr, self.spy, self.bridged, self.queue_app)
        self.members = QueueMembers(self.pbx)

    def vanish_all(self) -> None:
        """A PBX restart: every channel and call disappears without a trace on AMI."""
        for call in list(self.pbx.calls):
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
        self.pbx.calls.clear()
        for chan in list(self.pbx.channels.values()):
            chan.alive = False
            if chan.timeout_handle is not None:
                chan.timeout_handle.cancel()
        self.pbx.channels.clear()
        for task in list(self.pbx.tasks):
            task.cancel()
        for handle in list(self.pbx.timers):
            handle.cancel()
        self.pbx.timers.clear()
