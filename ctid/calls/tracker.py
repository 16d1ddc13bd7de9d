"""The call tracker: every live call and seat from events, pure (no I/O, no clock), returning the
`Notice`s that tell what happened. Over 700 lines because its event handlers share one invariant
(the call/channel/attempt tables of `call_state`); split apart they could not be read alone."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog

from ctid.calls.call_state import (
    CATEGORY_VAR,
    IVR_VAR,
    MAX_VARS,
    STATE_RINGING,
    STATE_UP,
    TOMBSTONES,
    Attempt,
    Chan,
    Group,
    Member,
    Recent,
    SeatSlot,
    call_record,
    call_view,
    caller_chan,
)
from ctid.calls.seats import (
    UNAVAILABLE_DEVICE_STATES,
    SeatRef,
    channel_device,
    interface_device,
)
from ctid.core.calls import (
    Activity,
    AnswerSource,
    CallAnswered,
    CallEnded,
    CallLeftQueue,
    CallQueued,
    CallStarted,
    CallState,
    CallTransferred,
    Notice,
    RingOutcome,
    SeatLegEnded,
    SeatRingEnded,
    SeatRingStarted,
    SeatState,
    SeatStateChanged,
)
from ctid.core.errors import CtidError
from ctid.core.events import (
    AgentCompleted,
    AgentConnected,
    AgentDumped,
    AgentEvent,
    AgentRang,
    AgentRingUnanswered,
    BridgeEntered,
    BridgeLeft,
    CallerAbandoned,
    CallerJoinedQueue,
    CallerLeftQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelSnapshot,
    ChannelStateChanged,
    ChannelVariableSet,
    DialEnded,
    Event,
    QueueEntrySnapshot,
    QueueMemberAdded,
    QueueMemberPaused,
    QueueMemberRemoved,
    QueueMemberSnapshot,
    QueueMemberStatusChanged,
    RingingLegCut,
    SpyStarted,
    SpyStopped,
    TalkCapApplied,
    Transferred,
)
from ctid.core.ids import CallId, Channel, QueueName, SeatId, UniqueId

log = structlog.get_logger(__name__)


class UnknownSeatError(CtidError):
    """A seat id that is not configured."""


class CallTracker:
    """Asterisk gives no ordering between channels (DESIGN.md §4), so nothing here assumes one:
    a seat leg may hang up before the queue says the ring went unanswered, a bridge may form
    before the queue says the agent connected. A ring attempt ends on the queue's verdict, a
    seat's own state follows its channels at once, and a call ends only when its last channel is
    gone (its `CallEnded` carries the `CallRecord`).

    Every live call and every seat, from events. Feed it with `apply` in bus order and, after
    (re)connecting, with `resync`; read it with `call`, `calls`, `seat`, `seats`."""

    def __init__(self, seats: Sequence[SeatRef], remember: int = TOMBSTONES) -> None:
        """`remember`: how many hung-up channels and ended calls to recognise late events for."""
        self._seats: dict[SeatId, SeatSlot] = {}
        self._by_interface: dict[str, SeatSlot] = {}
        self._by_device: dict[str, SeatSlot] = {}
        for ref in seats:
            seat = SeatSlot(ref)
            self._seats[ref.seat_id] = seat
            self._by_interface[ref.interface] = seat
            self._by_device[seat.device] = seat
        self._views: dict[SeatId, SeatState] = {sid: SeatState(seat_id=sid) for sid in self._seats}
        self._chans: dict[UniqueId, Chan] = {}
        self._by_name: dict[Channel, Chan] = {}
        self._alias: dict[str, Group] = {}
        self._calls: dict[CallId, Group] = {}
        self._leg_attempts: dict[Channel, Attempt] = {}
        self._gone_uids = Recent(remember)
        self._ended_calls = Recent(remember)
        self._notices: list[Notice] = []
        self._touched: dict[SeatId, str] = {}
        # Seats whose queue memberships changed since their view was last computed: the other
        # seats' views reuse the membership part (most touches are rings, answers and hangups).
        self._members_changed: set[SeatId] = set(self._seats)
        self._last_at = 0.0
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            ChannelCreated: self._on_created,
            ChannelStateChanged: self._on_state,
            ChannelHungUp: self._on_hangup,
            ChannelVariableSet: self._on_varset,
            DialEnded: self._on_dial_end,
            BridgeEntered: self._on_bridge_enter,
            BridgeLeft: self._on_bridge_leave,
            CallerJoinedQueue: self._on_join,
            CallerLeftQueue: self._on_leave,
            CallerAbandoned: self._on_abandon,
            AgentRang: self._on_agent_rang,
            AgentRingUnanswered: self._on_agent_rna,
            AgentConnected: self._on_agent_connect,
            AgentCompleted: self._on_agent_complete,
            AgentDumped: self._on_agent_dump,
            QueueMemberStatusChanged: self._on_member_status,
            QueueMemberPaused: self._on_member_pause,
            QueueMemberAdded: self._on_member_added,
            QueueMemberRemoved: self._on_member_removed,
            SpyStarted: self._on_spy_start,
            SpyStopped: self._on_spy_stop,
            Transferred: self._on_transfer,
            RingingLegCut: self._on_leg_cut,
            TalkCapApplied: self._on_talk_cap,
        }

    # ------------------------------------------------------------------ reading

    @property
    def last_at(self) -> float:
        """The latest `at` seen: "now" on the events' clock, for the facts ctid adds itself."""
        return self._last_at

    def call(self, call_id: CallId) -> CallState | None:
        group = self._calls.get(call_id)
        return None if group is None else call_view(group)

    def calls(self) -> tuple[CallState, ...]:
        return tuple(call_view(g) for g in self._calls.values())

    def seat(self, seat_id: SeatId) -> SeatState:
        try:
            return self._views[seat_id]
        except KeyError:
            raise UnknownSeatError(f"no seat {seat_id!r} is configured") from None

    def seats(self) -> tuple[SeatState, ...]:
        return tuple(self._views.values())

    def call_of_channel(self, channel: Channel) -> CallId | None:
        """The call a live channel belongs to (for the policy: which call is this seat leg?)."""
        chan = self._by_name.get(channel)
        if chan is None or not chan.group.is_call:
            return None
        return chan.group.call_id

    def stats(self) -> dict[str, int]:
        """Sizes of the internal tables (to watch for leaks)."""
        return {
            "channels": len(self._chans),
            "calls": len(self._calls),
            "aliases": len(self._alias),
            "leg_attempts": len(self._leg_attempts),
            "tombstones": len(self._gone_uids) + len(self._ended_calls),
        }

    def recall_answer(self, call_id: CallId, seat: SeatId, at: float) -> bool:
        """The stored answer time of a call a resync found answered (see `AnswerSource`).
        Applied only to an answer estimated from the seat leg's age, by the same seat, and only
        when it fits (not before the leg existed). Returns whether it changed anything."""
        group = self._calls.get(call_id)
        if (
            group is None
            or group.answer_source != "seat_leg_start"
            or group.answered_by != seat
            or group.answered_at is None
        ):
            return False
        attempt = group.by_leg.get(group.answered_uid) if group.answered_uid else None
        if attempt is None or at < attempt.start - 1.0 or at > self._last_at:
            return False  # Duration is whole seconds: a stored answer may precede it by < 1 s
        group.answered_at = at
        group.answer_source = "stored"
        attempt.end = at
        return True

    # ------------------------------------------------------------------ applying events

    def apply(self, event: Event) -> list[Notice]:
        """Apply one event; return what happened, in order. Never raises for odd event orders."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return []
        if event.at > self._last_at:
            self._last_at = event.at
        out: list[Notice] = []
        self._notices = out
        handler(event)
        if self._touched:
            self._flush_seats(event.at)
        return out

    def resync(
        self,
        channels: Sequence[ChannelSnapshot],
        members: Sequence[QueueMemberSnapshot],
        now: float,
        entries: Sequence[QueueEntrySnapshot] = (),
    ) -> list[Notice]:
        """Repair the state from a full snapshot (CoreShowChannels + an unfiltered QueueStatus),
        taken at `now` on the events' clock (see `last_at`), after events may have been missed.

        Calls already tracked are kept (never duplicated) and completed from the snapshot; live
        channels nobody knew become calls (an answered one's answer time is its seat leg's start,
        from `Duration`, so it may include the ring); calls whose channels are all gone end, their
        outcome `lost_during_resync` unless what was seen settles it. Every seat's queue
        memberships are replaced by the snapshot's.
        """
        out: list[Notice] = []
        self._notices = out
        if now > self._last_at:
            self._last_at = now
        live = {snap.uniqueid: snap for snap in channels if snap.uniqueid}
        for uid in [uid for uid in self._chans if uid not in live]:
            chan = self._chans.get(uid)
            if chan is not None:
                self._drop_chan(chan, now, "resync", lost=True)
        groups: dict[int, tuple[Group, list[tuple[Chan, ChannelSnapshot]]]] = {}
        for snap in live.values():
            chan = self._chans.get(snap.uniqueid)
            created = now - snap.duration_s
            if chan is None:
                self._gone_uids.discard(snap.uniqueid)  # the snapshot outranks what we inferred
                chan = self._chan_of(snap.channel, snap.uniqueid, snap.linkedid, created)
                if chan is None:
                    continue
            chan.created_at = min(chan.created_at, created)
            chan.bridge = snap.bridge_id
            self._set_state(chan, snap.state, "resync")
            group = chan.group
            group.started_at = min(group.started_at, created)
            if chan.seat is None and not group.caller_num and snap.caller_num:
                group.caller_num, group.caller_name = snap.caller_num, snap.caller_name
            groups.setdefault(id(group), (group, []))[1].append((chan, snap))
        waits = {e.uniqueid: e for e in entries}
        for group, items in groups.values():
            if group.channels:
                self._resync_group(group, items, now, waits)
        self._resync_members(members)
        for sid in self._seats:
            self._touched.setdefault(sid, "resync")
        self._flush_seats(now)
        return out

    # ------------------------------------------------------------------ channels and groups

    def _chan_of(self, name: Channel, uid: UniqueId, linkedid: UniqueId, at: float) -> Chan | None:
        """The channel for an event, created on first sight (Newchannel may be missed or late)."""
        chan = self._chans.get(uid)
        if chan is not None:
            if linkedid and linkedid not in self._alias:
                # Asterisk re-links channels when calls are bridged or transferred: remember the
                # new Linkedid so channels created under it join this call.
                self._alias[linkedid] = chan.group
                chan.group.keys.append(linkedid)
            return chan
        if not uid or uid in self._gone_uids:
            return None  # a late event for a channel that already hung up
        group = self._alias.get(linkedid) if linkedid else None
        if group is None:
            key = linkedid or uid
            group = Group(CallId(key), at, late=key in self._ended_calls)
            self._alias[key] = group
            group.keys.append(key)
        seat = self._by_device.get(channel_device(name)) if name else None
        chan = Chan(name, uid, group, at, seat)
        self._chans[uid] = chan
        if name:
            self._by_name[name] = chan
        group.channels[uid] = chan
        if uid not in self._alias:
            self._alias[uid] = group
            group.keys.append(uid)
        if seat is not None:
            seat.chans[uid] = chan
            self._touch(seat, "channel")
        return chan

    def _group_of(self, *keys: str) -> Group | None:
        for key in keys:
            if key:
                chan = self._chans.get(UniqueId(key))
                if chan is not None:
                    return chan.group
                group = self._alias.get(key)
                if group is not None:
                    return group
        return None

    def _set_state(self, chan: Chan, state: int, reason: str) -> None:
        if chan.state == state:
            return
        chan.state = state
        if state == STATE_UP:
            attempt = chan.group.by_leg.get(chan.uniqueid)
            if attempt is not None:
                attempt.answering = True
        if chan.seat is not None:
            self._touch(chan.seat, reason)

    def _drop_chan(self, chan: Chan, at: float, reason: str, lost: bool = False) -> None:
        uid = chan.uniqueid
        self._chans.pop(uid, None)
        if self._by_name.get(chan.name) is chan:
            del self._by_name[chan.name]
        self._gone_uids.add(uid, at)
        group = chan.group
        group.channels.pop(uid, None)
        seat = chan.seat
        if seat is not None:
            seat.chans.pop(uid, None)
            seat.ringing.pop(uid, None)
            self._touch(seat, reason)
        attempt = group.by_leg.get(uid)
        if attempt is not None and attempt.outcome is None and attempt.leg_gone is None:
            attempt.leg_gone = at
        if attempt is not None and attempt.outcome == "answered" and attempt.talk_end is None:
            # This seat's part of the conversation is over, whether or not the call goes on
            # (after a Redirect to another queue Asterisk sends no AgentComplete until the end).
            attempt.talk_end = at
            if group.is_call:
                talk_s = max(0.0, at - (attempt.end if attempt.end is not None else at))
                self._notices.append(
                    SeatLegEnded(group.call_id, attempt.seat, attempt.channel, at, talk_s)
                )
        if uid == group.answered_uid:
            group.answered_leg_gone = at
        if uid == group.caller_uid and not lost:
            # The queue's caller channel is gone: no seat can answer this call any more.
            self._finish_open(group, at, "caller_left")
        if not group.channels:
            self._end(group, at, lost)

    def _mark_call(self, group: Group) -> None:
        if group.is_call or group.late:
            return
        group.is_call = True
        self._calls[group.call_id] = group
        caller = caller_chan(group)
        self._notices.append(
            CallStarted(
                group.call_id,
                group.started_at,
                group.caller_num,
                group.caller_name,
                caller.name if caller is not None else None,
            )
        )
        for chan in group.channels.values():
            if chan.seat is not None:
                self._touch(chan.seat, "call")

    def _end(self, group: Group, at: float, lost: bool) -> None:
        for attempt in group.attempts:
            if attempt.outcome is None:
                if attempt.cut:
                    outcome: RingOutcome = "cut"
                elif group.answered_at is not None:
                    outcome = "other_answered"
                else:
                    outcome = "other" if lost else "caller_left"
                self._finish(group, attempt, at, outcome)
        for key in group.keys:
            if self._alias.get(key) is group:
                del self._alias[key]
        for attempt in group.attempts:
            if self._leg_attempts.get(attempt.channel) is attempt:
                del self._leg_attempts[attempt.channel]
        if group.is_call:
            self._ended_calls.add(group.call_id, at)
            self._calls.pop(group.call_id, None)
            self._notices.append(CallEnded(call_record(group, at, lost)))

    def _merge(self, src: Group, dst: Group) -> None:
        """An attended transfer joined `src`'s channels to call `dst`."""
        for uid, chan in src.channels.items():
            chan.group = dst
            dst.channels[uid] = chan
            if chan.seat is not None:
                self._touch(chan.seat, "transfer")
        for key in src.keys:
            self._alias[key] = dst
            dst.keys.append(key)
        src.channels.clear()
        src.keys.clear()

    # ------------------------------------------------------------------ ring attempts

    def _ring_started(
        self,
        group: Group,
        seat: SeatSlot,
        leg: Channel,
        leg_uid: UniqueId,
        queue: QueueName,
        at: float,
    ) -> Attempt:
        # The queue moves on only after the previous ring is over: earlier rings whose legs are
        # gone (or that rang this same seat) have had their verdict even if it was not delivered.
        for earlier in group.attempts:
            if earlier.outcome is None and (
                earlier.leg_gone is not None or earlier.seat == seat.ref.seat_id
            ):
                self._finish(group, earlier, at, "no_answer")
        attempt = self._new_attempt(group, seat, leg, leg_uid, queue, at)
        self._notices.append(
            SeatRingStarted(
                group.call_id,
                seat.ref.seat_id,
                leg,
                queue,
                at,
                group.caller_num,
                group.caller_name,
                group.vars.get(IVR_VAR, ""),
                group.started_at,
            )
        )
        return attempt

    def _new_attempt(
        self,
        group: Group,
        seat: SeatSlot,
        leg: Channel,
        leg_uid: UniqueId,
        queue: QueueName,
        start: float,
    ) -> Attempt:
        attempt = Attempt(group.call_id, seat.ref.seat_id, leg, leg_uid, queue, start)
        group.attempts.append(attempt)
        group.by_leg[leg_uid] = attempt
        if leg:
            self._leg_attempts[leg] = attempt
        if leg_uid in self._chans:
            seat.ringing[leg_uid] = attempt
        else:
            # The leg's Hangup overtook AgentCalled (or the leg is unknown): it rang until then.
            gone = self._gone_uids.get(leg_uid)
            attempt.leg_gone = start if gone is None else max(start, gone)
        self._touch(seat, "ring_started")
        return attempt

    def _finish(
        self,
        group: Group,
        attempt: Attempt,
        at: float,
        outcome: RingOutcome,
        ring_s: float | None = None,
    ) -> None:
        if attempt.outcome is not None:
            return
        if outcome == "no_answer" and attempt.cut:
            outcome = "cut"
        end = at
        if attempt.leg_gone is not None and outcome != "answered":
            end = min(at, attempt.leg_gone)  # the seat stopped ringing when its leg went
        attempt.end = end
        attempt.outcome = outcome
        attempt.ring_s = (
            ring_s if ring_s is not None and ring_s > 0 else max(0.0, end - attempt.start)
        )
        seat = self._seats.get(attempt.seat)
        if seat is not None:
            seat.ringing.pop(attempt.uniqueid, None)
            self._touch(seat, "ring_ended")
        self._notices.append(
            SeatRingEnded(
                group.call_id, attempt.seat, attempt.channel, end, outcome, attempt.ring_s
            )
        )

    def _finish_open(self, group: Group, at: float, outcome: RingOutcome) -> None:
        for attempt in group.attempts:
            if attempt.outcome is None and not attempt.answering:
                self._finish(group, attempt, at, outcome)

    def _answer(
        self,
        group: Group,
        attempt: Attempt,
        at: float,
        hold_s: float | None,
        ring_s: float | None = None,
        source: AnswerSource = "live",
    ) -> None:
        if attempt.outcome is not None:
            return
        if source == "live":
            self._finish(group, attempt, at, "answered", ring_s)
        else:
            # Found answered by a resync: how long it rang is unknown, so no ring is announced
            # or counted (the ring rule and the reports must not see an invented ring time).
            attempt.end = at
            attempt.outcome = "answered"
            attempt.ring_s = None
            seat_slot = self._seats.get(attempt.seat)
            if seat_slot is not None:
                seat_slot.ringing.pop(attempt.uniqueid, None)
                self._touch(seat_slot, "answered")
        for other in group.attempts:
            if other is not attempt and other.outcome is None:
                self._finish(group, other, at, "other_answered")
        group.in_queue = False
        transfer = group.answered_at is not None
        if not transfer:
            group.answered_at = at
            group.answered_by = attempt.seat
            group.answered_uid = attempt.uniqueid
            group.answered_channel = attempt.channel
            group.answer_source = source
        else:
            # Answered again: the call was moved to another queue (a transfer) and this seat
            # took it over. The first answer stays the call's answer; each seat has its own leg.
            group.transferred = True
            group.transferred_to = attempt.seat
            group.answered_channel = attempt.channel
        if source != "live":
            hold_s = None
        elif hold_s is None and group.queued_at is not None and not transfer:
            hold_s = max(0.0, at - group.queued_at)
        if hold_s is not None and group.hold_s is None:
            group.hold_s = hold_s
        caller = caller_chan(group)
        self._notices.append(
            CallAnswered(
                group.call_id,
                attempt.seat,
                attempt.channel,
                at,
                attempt.ring_s if source == "live" else None,
                hold_s,
                caller_num=group.caller_num,
                caller_name=group.caller_name,
                caller_channel=caller.name if caller is not None else None,
                started_at=group.started_at,
                queue=attempt.queue or group.queue,
                ivr_choice=group.vars.get(IVR_VAR, ""),
                category=group.vars.get(CATEGORY_VAR, ""),
                answer_source=source,
                transfer=transfer,
                first_answered_at=group.answered_at,
            )
        )

    def _attempt_for(self, group: Group, ev: AgentEvent, ring_s: float) -> Attempt | None:
        """The ring attempt an agent event is about, made up if AgentCalled was missed."""
        attempt = group.by_leg.get(ev.dest_uniqueid) if ev.dest_uniqueid else None
        if attempt is not None:
            return attempt
        seat = self._seat_for_interface(ev.interface)
        if seat is None:
            if not ev.dest_uniqueid:
                return None
            chan = self._chans.get(ev.dest_uniqueid)
            seat = chan.seat if chan is not None else None
            if seat is None:
                return None
        if not ev.dest_uniqueid:
            # Without the leg's id, the open ring of this seat is the one meant.
            for attempt in group.attempts:
                if attempt.seat == seat.ref.seat_id and attempt.outcome is None:
                    return attempt
            return None
        return self._new_attempt(
            group, seat, ev.dest_channel, ev.dest_uniqueid, ev.queue, ev.at - ring_s
        )

    # ------------------------------------------------------------------ seats

    def _seat_for_interface(self, interface: str) -> SeatSlot | None:
        seat = self._by_interface.get(interface)
        if seat is None:
            seat = self._by_device.get(interface_device(interface))
        return seat

    def _touch(self, seat: SeatSlot, reason: str) -> None:
        if seat.ref.seat_id not in self._touched:
            self._touched[seat.ref.seat_id] = reason

    def _flush_seats(self, at: float) -> None:
        for sid, reason in self._touched.items():
            new = self._seat_view(self._seats[sid])
            old = self._views[sid]
            if new != old:
                self._views[sid] = new
                self._notices.append(SeatStateChanged(sid, at, old, new, reason))
        self._touched.clear()

    def _seat_view(self, seat: SeatSlot) -> SeatState:
        activity: Activity = "idle"
        call_id: CallId | None = None
        ringing_chan: Chan | None = None
        for chan in seat.chans.values():
            if chan.state == STATE_UP:
                activity = "on_call"
                call_id = chan.group.call_id if chan.group.is_call else None
                break
            if chan.state == STATE_RINGING and ringing_chan is None:
                ringing_chan = chan
        if activity == "idle":
            if seat.ringing:
                activity = "ringing"
                call_id = next(iter(seat.ringing.values())).call_id
                if call_id not in self._calls:
                    call_id = None
            elif ringing_chan is not None:
                activity = "ringing"
                group = ringing_chan.group
                call_id = group.call_id if group.is_call else None
        sid = seat.ref.seat_id
        if sid in self._members_changed:
            self._members_changed.discard(sid)
            members = seat.members
            paused_in = frozenset(q for q, m in members.items() if m.paused)
            reason = ""
            if paused_in:
                last = seat.last_paused
                if last is not None and last in paused_in:
                    reason = members[last].reason
                else:
                    reason = next(members[q].reason for q in members if q in paused_in)
            available = seat.device_status not in UNAVAILABLE_DEVICE_STATES and (
                not seat.members_known or bool(members)
            )
            queues = frozenset(members)
        else:
            # `_flush_seats` keeps the last view computed (or one equal to it): its membership
            # part is still true.
            last_view = self._views[sid]
            paused_in, reason = last_view.paused_in, last_view.pause_reason
            available, queues = last_view.available, last_view.queues
        return SeatState(
            seat_id=sid,
            activity=activity,
            call_id=call_id,
            paused=bool(paused_in),
            pause_reason=reason,
            available=available,
            queues=queues,
            paused_in=paused_in,
        )

    def _member(self, seat: SeatSlot, queue: QueueName) -> Member:
        member = seat.members.get(queue)
        if member is None:
            member = Member(0, False, "", False)
            seat.members[queue] = member
        return member

    # ------------------------------------------------------------------ event handlers

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

    def _on_member_status(self, ev: QueueMemberStatusChanged) -> None:
        seat = self._seat_for_interface(ev.interface)
        if seat is None:
            return
        member = seat.members.get(ev.queue)
        if (
            member is not None
            and seat.device_status == ev.status
            and member.status == ev.status
            and member.paused == ev.paused
            and member.reason == ev.paused_reason
            and member.in_call == ev.in_call
        ):
            return  # a repeat (Asterisk sends one per queue and per device change): view as is
        member = self._member(seat, ev.queue)
        if ev.paused and not member.paused:
            seat.last_paused = ev.queue
        member.status = ev.status
        member.paused = ev.paused
        member.reason = ev.paused_reason
        member.in_call = ev.in_call
        seat.device_status = ev.status
        self._members_changed.add(seat.ref.seat_id)
        self._touch(seat, "member_status")

    def _on_member_pause(self, ev: QueueMemberPaused) -> None:
        seat = self._seat_for_interface(ev.interface)
        if seat is None:
            return
        member = self._member(seat, ev.queue)
        member.paused = ev.paused
        member.reason = ev.reason if ev.paused else ""
        if ev.paused:
            seat.last_paused = ev.queue
        self._members_changed.add(seat.ref.seat_id)
        self._touch(seat, "paused" if ev.paused else "unpaused")

    def _on_member_added(self, ev: QueueMemberAdded) -> None:
        seat = self._seat_for_interface(ev.interface)
        if seat is None:
            return
        member = self._member(seat, ev.queue)
        member.status = ev.status
        member.paused = ev.paused
        member.reason = ev.paused_reason
        seat.device_status = ev.status
        if ev.paused:
            seat.last_paused = ev.queue
        self._members_changed.add(seat.ref.seat_id)
        self._touch(seat, "member_added")

    def _on_member_removed(self, ev: QueueMemberRemoved) -> None:
        seat = self._seat_for_interface(ev.interface)
        if seat is None:
            return
        seat.members.pop(ev.queue, None)
        self._members_changed.add(seat.ref.seat_id)
        self._touch(seat, "member_removed")

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

    # ------------------------------------------------------------------ resync helpers

    def _resync_group(
        self,
        group: Group,
        items: list[tuple[Chan, ChannelSnapshot]],
        now: float,
        waits: dict[UniqueId, QueueEntrySnapshot],
    ) -> None:
        in_queue: tuple[Chan, ChannelSnapshot] | None = None
        looks_like_call = False
        for chan, snap in items:
            if snap.application in ("Queue", "AppQueue", "AGI"):
                looks_like_call = True
            if chan.seat is None and snap.application == "Queue" and in_queue is None:
                in_queue = (chan, snap)
        if in_queue is not None:
            chan, snap = in_queue
            group.caller_uid = chan.uniqueid
            queue = QueueName(snap.application_data.split(",", 1)[0])
            if queue:
                group.queue = queue
            if group.queued_at is None:
                entry = waits.get(chan.uniqueid)
                if entry is not None:
                    group.queued_at = now - entry.wait_s
                elif any(c.seat is not None and sn.bridge_id for c, sn in items):
                    # Answered before ctid looked: it joined the queue at some point after its
                    # channel appeared (the earliest it can be, not "now").
                    group.queued_at = chan.created_at
                else:
                    group.queued_at = now
            if not group.caller_num and snap.caller_num:
                group.caller_num, group.caller_name = snap.caller_num, snap.caller_name
        if looks_like_call:
            self._mark_call(group)
        if not group.is_call:
            return
        queue_name = group.queue or QueueName("")
        answered: Chan | None = None
        for chan, snap in items:
            if chan.seat is not None and snap.state == STATE_UP and snap.bridge_id:
                answered = chan
                break
        if answered is not None and group.answered_at is None:
            seat = answered.seat
            assert seat is not None
            attempt = group.by_leg.get(answered.uniqueid)
            if attempt is None:
                # Missed ring: record it (it rang from the leg's start) but do not announce it.
                attempt = self._new_attempt(
                    group, seat, answered.name, answered.uniqueid, queue_name, answered.created_at
                )
            self._answer(group, attempt, answered.created_at, None, source="seat_leg_start")
        elif answered is None and group.answered_at is None:
            was_waiting = group.in_queue
            group.in_queue = in_queue is not None
            if group.in_queue and not was_waiting:
                # Found waiting (it joined while ctid was not listening): told like a join.
                entry = waits.get(in_queue[0].uniqueid) if in_queue is not None else None
                self._notices.append(
                    CallQueued(
                        group.call_id,
                        group.queued_at if group.queued_at is not None else now,
                        queue_name,
                        entry.position if entry is not None else 0,
                    )
                )
            elif was_waiting and not group.in_queue:
                self._notices.append(CallLeftQueue(group.call_id, now))
            for chan, snap in items:
                seat = chan.seat
                if seat is None or chan.uniqueid in group.by_leg:
                    continue
                if snap.state == STATE_RINGING or (
                    snap.application == "AppQueue" and snap.state != STATE_UP
                ):
                    self._ring_started(
                        group, seat, chan.name, chan.uniqueid, queue_name, chan.created_at
                    )
        for attempt in group.attempts:
            if attempt.outcome is None and attempt.leg_gone is not None:
                # Its leg vanished while ctid was not listening.
                self._finish(group, attempt, now, "cut" if attempt.cut else "other")

    def _resync_members(self, members: Iterable[QueueMemberSnapshot]) -> None:
        fresh: dict[SeatId, dict[QueueName, Member]] = {sid: {} for sid in self._seats}
        statuses: dict[SeatId, int] = {}
        for snap in members:
            seat = self._seat_for_interface(snap.interface)
            if seat is None:
                continue
            sid = seat.ref.seat_id
            old = seat.members.get(snap.queue)
            reason = snap.paused_reason
            fresh[sid][snap.queue] = Member(snap.status, snap.paused, reason, snap.in_call)
            statuses[sid] = snap.status
            if snap.paused and (old is None or not old.paused):
                seat.last_paused = snap.queue
        self._members_changed.update(self._seats)
        for sid, seat in self._seats.items():
            seat.members = fresh[sid]
            seat.members_known = True
            if sid in statuses:
                seat.device_status = statuses[sid]
