"""Queue membership from AMI: QueuePause, QueueAdd, QueueRemove, QueuePenalty, and member snapshots."""

from __future__ import annotations

from ctid.asterisk.simulator.config import default_state_interface
from ctid.asterisk.simulator.core import PbxCore
from ctid.asterisk.simulator.model import Member, MemberInfo
from ctid.asterisk.simulator.wire import PRIV_AGENT


class QueueMembers:
    """Changes to who is in which queue, paused or not."""

    def __init__(self, pbx: PbxCore) -> None:
        self.pbx = pbx

    def queue_pause(self, interface: str, queue: str, paused: bool, reason: str) -> bool:
        found = False
        for q in self.pbx.queues.values():
            if queue and q.name.lower() != queue.lower():
                continue
            m = q.member(interface)
            if m is None:
                continue
            if not found and not queue:
                # set_member_paused: one PAUSEALL/UNPAUSEALL line before the first queue's
                self.pbx.queue_log.write(
                    "NONE", "NONE", m.name, "PAUSEALL" if paused else "UNPAUSEALL", reason
                )
            found = True
            if paused:
                m.last_pause = self.pbx.epoch_int()
            m.paused = paused
            m.reason = reason if paused else ""
            self.pbx.cached_dsc(
                f"Queue:{q.name}_pause_{m.interface}", "INUSE" if paused else "NOT_INUSE"
            )
            if not paused:
                self.pbx.update_avail(q)
            self.pbx.queue_log.write(
                q.name, "NONE", m.name, "PAUSE" if paused else "UNPAUSE", reason if paused else ""
            )
            self.pbx.ev("QueueMemberPause", PRIV_AGENT, m.event_fields())
            if paused:
                self.pbx.update_avail(q)
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
        q = self.pbx.queues.get(queue)
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
            login_time=self.pbx.epoch_int(),
        )
        m.paused = paused
        m.reason = reason if paused else ""
        m.status = self.pbx.device_status(m.state_interface)
        q.members.append(m)
        self.pbx.cached_dsc(
            f"Queue:{q.name}_pause_{m.interface}", "INUSE" if paused else "NOT_INUSE"
        )
        # log_membername_as_agent = no (the default): the agent field is the interface
        self.pbx.queue_log.write(
            q.name, "MANAGER", m.interface, "ADDMEMBER", "PAUSED" if paused else ""
        )
        self.pbx.ev("QueueMemberAdded", PRIV_AGENT, m.event_fields())
        self.pbx.update_avail(q)
        return "ok"

    def queue_remove(self, queue: str, interface: str) -> str:
        q = self.pbx.queues.get(queue)
        if q is None:
            return "nosuchqueue"
        m = q.member(interface)
        if m is None:
            return "notthere"
        if not m.dynamic:
            return "notdynamic"
        q.members.remove(m)
        self.pbx.queue_log.write(q.name, "MANAGER", m.interface, "REMOVEMEMBER", "")
        self.pbx.ev("QueueMemberRemoved", PRIV_AGENT, m.event_fields())
        self.pbx.update_avail(q)
        return "ok"

    def queue_penalty(self, interface: str, penalty: int, queue: str) -> bool:
        found = False
        for q in self.pbx.queues.values():
            if queue and q.name != queue:
                continue
            m = q.member(interface)
            if m is not None:
                m.penalty = penalty
                found = True
                self.pbx.ev(
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
        q = self.pbx.queues.get(queue)
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
