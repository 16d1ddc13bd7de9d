"""The call tracker's handlers for channel, queue caller, agent, spy and transfer events: each
reads one event into the tables (`tracker_tables`); seat membership events are in `tracker_seats`."""

from __future__ import annotations

import structlog

from ctid.calls.call_state import MAX_VARS, STATE_UP
from ctid.calls.tracker_tables import TrackerTables
from ctid.core.calls import CallLeftQueue, CallQueued, CallTransferred
from ctid.core.events import (
    AgentCompleted,
    AgentConnected,
    AgentDumped,
    AgentRang,
    AgentRingUnanswered,
    BridgeEntered,
    BridgeLeft,
    CallerAbandoned,
    CallerJoinedQueue,
    CallerLeftQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelStateChanged,
    ChannelVariableSet,
    DialEnded,
    RingingLegCut,
    SpyStarted,
    SpyStopped,
    TalkCapApplied,
    Transferred,
)

log = structlog.get_logger(__name__)


class EventHandlers(TrackerTables):
    """One handler per call event type (`CallTracker.apply` dispatches on the event's type)."""

    def _on_created(self, ev: ChannelCreated) -> None:
        chan = self._chan_of(ev.channel, ev.uniqueid, ev.linkedid, ev.at)
        if chan is None:
            return
        group = chan.group
        if ev.at < group.started_at:
            group.started_at = ev.at
        if chan.seat is None and not group.caller_num and ev.caller_num:
            group.caller_num, group.caller_name = ev.caller_num, ev.caller_name
        self._set_state(chan, ev.state, "channel")

    def _on_state(self, ev: ChannelStateChanged) -> None:
        chan = self._chan_of(ev.channel, ev.uniqueid, ev.linkedid, ev.at)
        if chan is not None:
            self._set_state(chan, ev.state, "answered" if ev.state == STATE_UP else "channel")

    def _on_hangup(self, ev: ChannelHungUp) -> None:
        chan = self._chans.get(ev.uniqueid)
        if chan is None:
            self._gone_uids.add(ev.uniqueid, ev.at)
            return
        self._drop_chan(chan, ev.at, "hangup")

    def _on_varset(self, ev: ChannelVariableSet) -> None:
        chan = self._chan_of(ev.channel, ev.uniqueid, ev.linkedid, ev.at)
        if chan is None:
            return
        group = chan.group
        if len(group.vars) < MAX_VARS or ev.name in group.vars:
            group.vars[ev.name] = ev.value
        if chan.seat is None and not group.caller_num and ev.caller_num:
            group.caller_num, group.caller_name = ev.caller_num, ev.caller_name
        self._mark_call(group)

    def _on_dial_end(self, ev: DialEnded) -> None:
        group = self._group_of(ev.uniqueid, ev.dest_uniqueid, ev.linkedid)
        if group is None:
            return
        attempt = group.by_leg.get(ev.dest_uniqueid)
        if attempt is not None and ev.status == "ANSWER":
            attempt.answering = True

    def _on_bridge_enter(self, ev: BridgeEntered) -> None:
        chan = self._chan_of(ev.channel, ev.uniqueid, ev.linkedid, ev.at)
        if chan is None:
            return
        chan.bridge = ev.bridge_id
        group = chan.group
        attempt = group.by_leg.get(chan.uniqueid)
        if attempt is not None and attempt.outcome is None:
            # The seat leg is bridged: it was answered, whether or not AgentConnect came yet.
            self._answer(group, attempt, ev.at, None)

    def _on_bridge_leave(self, ev: BridgeLeft) -> None:
        chan = self._chans.get(ev.uniqueid)
        if chan is not None and chan.bridge == ev.bridge_id:
            chan.bridge = ""

    def _on_join(self, ev: CallerJoinedQueue) -> None:
        chan = self._chan_of(ev.channel, ev.uniqueid, ev.linkedid, ev.at)
        if chan is None:
            return
        group = chan.group
        group.caller_uid = chan.uniqueid
        if ev.caller_num:
            group.caller_num, group.caller_name = ev.caller_num, ev.caller_name
        group.queue = ev.queue
        if group.queued_at is None:
            group.queued_at = ev.at
        group.in_queue = True
        group.left_unanswered = False
        self._mark_call(group)
        self._notices.append(CallQueued(group.call_id, ev.at, ev.queue, ev.position))

    def _on_leave(self, ev: CallerLeftQueue) -> None:
        group = self._group_of(ev.uniqueid, ev.linkedid)
        if group is None:
            return
        was_waiting = group.in_queue
        group.in_queue = False
        # On answer Asterisk sends DialEnd(ANSWER), then QueueCallerLeave, then AgentConnect, all
        # on the caller's channel: an attempt being answered survives this, the others are over.
        answering = any(a.answering or a.outcome == "answered" for a in group.attempts)
        self._finish_open(group, ev.at, "other_answered" if answering else "caller_left")
        if not answering and group.answered_at is None:
            group.left_unanswered = True
            if was_waiting and group.is_call:
                self._notices.append(CallLeftQueue(group.call_id, ev.at))

    def _on_abandon(self, ev: CallerAbandoned) -> None:
        group = self._group_of(ev.uniqueid, ev.linkedid)
        if group is None:
            return
        group.abandoned = True
        was_waiting = group.in_queue
        group.in_queue = False
        for attempt in group.attempts:
            if attempt.outcome is None:
                self._finish(group, attempt, ev.at, "caller_left")
        if was_waiting and group.is_call and group.answered_at is None:
            self._notices.append(CallLeftQueue(group.call_id, ev.at))

    def _on_agent_rang(self, ev: AgentRang) -> None:
        caller = self._chan_of(ev.channel, ev.uniqueid, ev.linkedid, ev.at)
        group = caller.group if caller is not None else self._group_of(ev.linkedid)
        if group is None:
            return
        seat = self._seat_for_interface(ev.interface)
        if seat is None:
            log.debug("ring_for_unknown_member", interface=ev.interface, queue=ev.queue)
            return
        if caller is not None and group.caller_uid is None:
            group.caller_uid = caller.uniqueid
        if group.queue is None:
            group.queue = ev.queue
        self._mark_call(group)
        if ev.dest_uniqueid in group.by_leg:
            return  # a repeated AgentCalled
        leg = self._chans.get(ev.dest_uniqueid)
        if leg is None and ev.dest_uniqueid not in self._gone_uids:
            leg = self._chan_of(ev.dest_channel, ev.dest_uniqueid, ev.linkedid, ev.at)
        if leg is not None and leg.seat is None:
            # A member interface whose channels are not named after it: trust the queue.
            leg.seat = seat
            seat.chans[leg.uniqueid] = leg
        self._ring_started(group, seat, ev.dest_channel, ev.dest_uniqueid, ev.queue, ev.at)

    def _on_agent_rna(self, ev: AgentRingUnanswered) -> None:
        group = self._group_of(ev.uniqueid, ev.dest_uniqueid, ev.linkedid)
        if group is None:
            return
        attempt = self._attempt_for(group, ev, ev.ring_time_s)
        if attempt is not None:
            # RingTime (ms) is Asterisk's own measure of this ring; prefer it to our arithmetic.
            self._finish(group, attempt, ev.at, "no_answer", ev.ring_time_s or None)

    def _on_agent_connect(self, ev: AgentConnected) -> None:
        group = self._group_of(ev.uniqueid, ev.dest_uniqueid, ev.linkedid)
        if group is None:
            return
        attempt = self._attempt_for(group, ev, ev.ring_time_s)
        if attempt is None:
            return
        if attempt.outcome is None:
            # AgentConnect's RingTime is whole seconds: the timestamps say it better.
            self._answer(group, attempt, ev.at, None)
        elif group.queued_at is None and group.hold_s is None:
            group.hold_s = ev.hold_time_s

    def _on_agent_complete(self, ev: AgentCompleted) -> None:
        group = self._group_of(ev.uniqueid, ev.dest_uniqueid, ev.linkedid)
        if group is None:
            return
        group.complete_reason = ev.reason
        if group.talk_end_at is None or ev.at > group.talk_end_at:
            group.talk_end_at = ev.at

    def _on_agent_dump(self, ev: AgentDumped) -> None:
        group = self._group_of(ev.uniqueid, ev.dest_uniqueid, ev.linkedid)
        if group is None:
            return
        attempt = self._attempt_for(group, ev, 0.0)
        if attempt is not None:
            self._finish(group, attempt, ev.at, "no_answer")

    def _on_spy_start(self, ev: SpyStarted) -> None:
        group = self._group_of(ev.spyee_uniqueid, ev.spyee_linkedid)
        if group is not None:
            group.spies[ev.spyer_channel] = None

    def _on_spy_stop(self, ev: SpyStopped) -> None:
        group = self._group_of(ev.spyee_uniqueid, ev.spyee_linkedid)
        if group is not None:
            group.spies.pop(ev.spyer_channel, None)

    def _on_transfer(self, ev: Transferred) -> None:
        if ev.result and ev.result != "Success":
            return
        group = self._group_of(
            ev.transferee_uniqueid,
            ev.transferer_uniqueid,
            ev.transferee_linkedid,
            ev.transferer_linkedid,
        )
        if group is None:
            return
        if ev.kind == "attended":
            target = self._group_of(ev.target_uniqueid, ev.target_linkedid)
            if target is not None and target is not group:
                if target.is_call and not group.is_call:
                    group, target = target, group
                if not target.is_call:
                    self._merge(target, group)
        if not group.is_call:
            return
        group.transferred = True
        transferer = self._chans.get(ev.transferer_uniqueid)
        by_seat = transferer.seat.ref.seat_id if transferer and transferer.seat else None
        self._notices.append(
            CallTransferred(
                group.call_id, ev.at, ev.kind, by_seat, ev.context, ev.exten, ev.target_channel
            )
        )

    def _on_leg_cut(self, ev: RingingLegCut) -> None:
        attempt = self._leg_attempts.get(ev.channel)
        if attempt is None:
            return
        if attempt.outcome is None:
            attempt.cut = True
        elif attempt.outcome == "no_answer":
            # The queue's verdict overtook ctid's own note: the record still says what happened.
            attempt.outcome = "cut"

    def _on_talk_cap(self, ev: TalkCapApplied) -> None:
        chan = self._by_name.get(ev.channel)
        if chan is not None:
            chan.group.cap_deadline = ev.at + ev.timeout_s
