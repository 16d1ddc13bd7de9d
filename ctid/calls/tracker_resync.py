"""The call tracker's resync: the repair of its calls, rings and seats' memberships from a full
snapshot of the PBX (channels, queue members and entries) after events may have been missed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ctid.calls.call_state import STATE_RINGING, STATE_UP, Chan, Group, Member
from ctid.calls.tracker_seats import SeatViews
from ctid.core.calls import CallLeftQueue, CallQueued, Notice
from ctid.core.events import ChannelSnapshot, QueueEntrySnapshot, QueueMemberSnapshot
from ctid.core.ids import QueueName, SeatId, UniqueId


class Resync(SeatViews):
    """The repair from a full snapshot after (re)connecting, when events may have been missed."""

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
