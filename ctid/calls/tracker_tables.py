"""The call tracker's tables (channels, calls, ring attempts, seats, tombstones) and the
bookkeeping that keeps them consistent: channels into calls, ring attempts and answers, ends."""

from __future__ import annotations

from collections.abc import Sequence

from ctid.calls.call_state import (
    CATEGORY_VAR,
    IVR_VAR,
    STATE_UP,
    TOMBSTONES,
    Attempt,
    Chan,
    Group,
    Recent,
    SeatSlot,
    call_record,
    caller_chan,
)
from ctid.calls.seats import SeatRef, channel_device, interface_device
from ctid.core.calls import (
    AnswerSource,
    CallAnswered,
    CallEnded,
    CallStarted,
    Notice,
    RingOutcome,
    SeatLegEnded,
    SeatRingEnded,
    SeatRingStarted,
    SeatState,
)
from ctid.core.events import AgentEvent
from ctid.core.ids import CallId, Channel, QueueName, SeatId, UniqueId


class TrackerTables:
    """The tables every part of the tracker reads and writes, and the operations that keep them
    consistent. A live channel is in `_chans` (by Uniqueid), `_by_name`, its group's `channels`
    and, if a seat's, that seat's `chans`. A group is in `_alias` under each of its `keys` (its
    channels' Uniqueids, every Linkedid it had) and, once a call, in `_calls`. A ring attempt is
    in its group's `by_leg`, in `_leg_attempts` (by leg name, until its call ends) and, while it
    rings, in its seat's `ringing`. An event's notices go to `_notices`; the seats it touched
    (`_touch`) have their views recomputed (`tracker_seats`) before `apply` returns them."""

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

    # ------------------------------------------------------------------ seat lookups

    def _seat_for_interface(self, interface: str) -> SeatSlot | None:
        seat = self._by_interface.get(interface)
        if seat is None:
            seat = self._by_device.get(interface_device(interface))
        return seat

    def _touch(self, seat: SeatSlot, reason: str) -> None:
        if seat.ref.seat_id not in self._touched:
            self._touched[seat.ref.seat_id] = reason

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
