"""The spy's targets (`TalkingSeats`) follow the call story: replayed through the real tracker,
after every event a seat has a target exactly when the spy used to find one in the tracker, and
a resync repairs them from its notices."""

from __future__ import annotations

from typing import get_args

import pytest

from ctid.calls.spy_targets import SeatLeg, TalkingSeats, TargetItems
from ctid.calls.tracker import CallTracker
from ctid.core.calls import Notice, SeatsResynced
from ctid.core.events import ChannelSnapshot, QueueMemberSnapshot
from ctid.core.ids import SeatId
from tests.calls._replay import LAB_SEATS, events

SEATS = [s.seat_id for s in LAB_SEATS]


def tracker_target(tracker: CallTracker, seat_id: SeatId) -> SeatLeg | None:
    """What the spy found when it read the tracker (its check before the read model)."""
    seat = tracker.seat(seat_id)
    call = tracker.call(seat.call_id) if seat.call_id is not None else None
    if (
        seat.activity != "on_call"
        or call is None
        or call.answered_by != seat_id
        or call.seat_channel is None
        or call.seat_channel not in call.channels
    ):
        return None
    return SeatLeg(call.call_id, call.seat_channel)


def feed(targets: TalkingSeats, notices: list[Notice]) -> None:
    for notice in notices:
        if isinstance(notice, get_args(TargetItems)):
            targets.on_item(notice)


@pytest.mark.parametrize("name", ["answered", "call_cap", "chanspy", "resync"])
def test_a_seat_is_a_target_exactly_when_the_tracker_says_it_talks(name: str) -> None:
    tracker, targets = CallTracker(LAB_SEATS), TalkingSeats()
    talked = 0
    for ev in events(name):
        feed(targets, tracker.apply(ev))
        for seat in SEATS:
            assert targets.leg(seat) == tracker_target(tracker, seat), (name, ev)
            talked += targets.leg(seat) is not None
    assert talked


def test_a_resync_ends_a_leg_that_vanished_and_finds_one_answered_meanwhile() -> None:
    evs = events("resync")
    first = next(i for i, e in enumerate(evs) if isinstance(e, ChannelSnapshot))
    chans = [e for e in evs if isinstance(e, ChannelSnapshot)]
    members = [e for e in evs if isinstance(e, QueueMemberSnapshot)]
    tracker, targets = CallTracker(LAB_SEATS), TalkingSeats()
    now = evs[first - 1].at
    notices = tracker.resync(chans, members, now)  # a restart: only the snapshot is known
    notices.append(SeatsResynced(now, tracker.seats(), tuple(c.call_id for c in tracker.calls())))
    feed(targets, notices)
    (talking,) = [s for s in SEATS if targets.leg(s) is not None]
    assert targets.leg(talking) == tracker_target(tracker, talking)
    # the link drops again, and the seat's leg hangs up meanwhile
    leg = targets.leg(talking)
    assert leg is not None
    left = [c for c in chans if c.channel != leg.channel]
    later = now + 10
    notices = tracker.resync(left, members, later)
    notices.append(SeatsResynced(later, tracker.seats(), tuple(c.call_id for c in tracker.calls())))
    feed(targets, notices)
    assert targets.leg(talking) is None
    assert all(targets.leg(s) == tracker_target(tracker, s) for s in SEATS)
