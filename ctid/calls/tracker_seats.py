"""The call tracker's seats: each seat's view (activity, pauses, queues) from its channels,
rings and queue memberships, and the queue member events that change those memberships."""

from __future__ import annotations

from ctid.calls.call_state import STATE_RINGING, STATE_UP, Chan, Member, SeatSlot
from ctid.calls.seats import UNAVAILABLE_DEVICE_STATES
from ctid.calls.tracker_tables import TrackerTables
from ctid.core.calls import Activity, SeatState, SeatStateChanged
from ctid.core.events import (
    QueueMemberAdded,
    QueueMemberPaused,
    QueueMemberRemoved,
    QueueMemberStatusChanged,
)
from ctid.core.ids import CallId, QueueName


class SeatViews(TrackerTables):
    """Each seat's public `SeatState`, recomputed for the seats an event touched, and the queue
    member events that change its memberships and pauses."""

    # ------------------------------------------------------------------ views

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

    # ------------------------------------------------------------------ membership events

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
