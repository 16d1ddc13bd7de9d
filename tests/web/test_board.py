"""The wallboard's read model (`LiveBoard`) follows the call story: replayed through the real
tracker, after every event it draws what the wallboard drew when it read the tracker itself; and
a resync (AMI reconnect, or a restart) repairs it from the resync's notices alone."""

from __future__ import annotations

from typing import get_args

import pytest

from ctid.calls.tracker import CallTracker
from ctid.config import Config, parse_config
from ctid.core.calls import (
    CallEnded,
    CallQueued,
    Notice,
    SeatsResynced,
    SeatState,
)
from ctid.core.events import ChannelSnapshot, QueueEntrySnapshot, QueueMemberSnapshot
from ctid.core.frames import BoardQueue, BoardSeat, WaitingCaller
from ctid.core.ids import QueueName, SeatId
from ctid.screenpop.board import BoardItem, LiveBoard
from tests.calls._replay import LAB_SEATS, events, ringing_after_restart

CFG: Config = parse_config(
    {
        "seats": [
            {
                "id": s.seat_id,
                "name": f"Seat {s.seat_id[-1]}",
                "tier": s.tier,
                "interface": s.interface,
            }
            for s in LAB_SEATS
        ],
        "lunch": {"enabled": False},
    }
)
SEAT_IDS = [s.seat_id for s in LAB_SEATS]
SCENARIOS = [
    "answered",
    "abandon",
    "ring_no_answer",
    "call_cap",
    "enforced_hangup",
    "hangup_in_ivr",
    "queue_ops",
    "chanspy",
]


def tracker_tiles(tracker: CallTracker, cfg: Config) -> tuple[BoardSeat, ...]:
    """What the wallboard showed when it read the tracker (its code before the read model)."""
    names = {s.id: s for s in cfg.seats}
    calls = {c.call_id: c for c in tracker.calls()}
    tiles = []
    for state in tracker.seats():
        call = calls.get(state.call_id) if state.call_id else None
        status = {"idle": "available", "unavailable": "offline"}.get(state.status, state.status)
        ring = (
            next((a for a in call.ring_attempts if a.seat == state.seat_id and a.end is None), None)
            if call
            else None
        )
        seat_cfg = names[state.seat_id]
        tiles.append(
            BoardSeat(
                seat_id=state.seat_id,
                name=seat_cfg.name,
                tier=seat_cfg.tier,
                status=status,
                pause_reason=state.pause_reason if state.paused else "",
                ring_started_at=ring.start if ring else None,
                ring_deadline_at=ring.start + cfg.ring.deadline_s if ring else None,
                talk_started_at=call.answered_at if call and state.activity == "on_call" else None,
                cap_at=call.answered_at + cfg.talk_cap.talk_cap_s
                if call and call.answered_at and state.activity == "on_call"
                else None,
                caller=(call.caller_name or call.caller_num) if call else "",
                call_id=state.call_id or "",
                channel=(call.seat_channel or "") if call else "",
            )
        )
    return tuple(tiles)


def tracker_queues(tracker: CallTracker, cfg: Config) -> tuple[BoardQueue, ...]:
    queues: dict[str, list[WaitingCaller]] = {q.name: [] for q in cfg.queues}
    for call in tracker.calls():
        if call.phase in ("queued", "ringing") and call.queue:
            queues.setdefault(call.queue, []).append(
                WaitingCaller(
                    call.caller_name or call.caller_num, call.queued_at or call.started_at
                )
            )
    return tuple(BoardQueue(n, tuple(w)) for n, w in queues.items())


def feed(board: LiveBoard, notices: list[Notice]) -> None:
    for notice in notices:
        if isinstance(notice, get_args(BoardItem)):
            board.apply(notice)


def resync(
    tracker: CallTracker,
    board: LiveBoard,
    channels: list[ChannelSnapshot],
    members: list[QueueMemberSnapshot],
    now: float,
    entries: list[QueueEntrySnapshot] | None = None,
) -> list[Notice]:
    """What the call service does after an AMI login: the resync's notices, then every seat."""
    notices = tracker.resync(channels, members, now, entries or [])
    notices.append(SeatsResynced(now, tracker.seats(), tuple(c.call_id for c in tracker.calls())))
    feed(board, notices)
    return notices


def assert_same(board: LiveBoard, tracker: CallTracker) -> None:
    assert board.tiles(CFG) == tracker_tiles(tracker, CFG)
    assert board.queues(CFG) == tracker_queues(tracker, CFG)


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_board_draws_what_the_tracker_says_after_every_event(name: str) -> None:
    tracker = CallTracker(LAB_SEATS)
    board = LiveBoard(SEAT_IDS)
    for ev in events(name):
        feed(board, tracker.apply(ev))
        assert_same(board, tracker)
    assert board.call_ids() == tuple(c.call_id for c in tracker.calls())


def test_a_resync_after_a_missed_stretch_repairs_the_board() -> None:
    evs = events("resync")
    first = next(i for i, e in enumerate(evs) if isinstance(e, ChannelSnapshot))
    chans = [e for e in evs if isinstance(e, ChannelSnapshot)]
    members = [e for e in evs if isinstance(e, QueueMemberSnapshot)]
    tracker = CallTracker(LAB_SEATS)
    board = LiveBoard(SEAT_IDS)
    rang = next(i for i, e in enumerate(evs) if type(e).__name__ == "AgentRang")
    for ev in evs[:rang]:  # then the link drops: the ring and the answer are missed
        feed(board, tracker.apply(ev))
    assert [len(q.waiting) for q in board.queues(CFG) if q.name == "ordinary"] == [1]
    resync(tracker, board, chans, members, evs[first - 1].at)
    assert_same(board, tracker)
    (seat2,) = [t for t in board.tiles(CFG) if t.seat_id == "seat2"]
    assert (seat2.status, seat2.caller) == ("on_call", "Zhang San")
    assert seat2.talk_started_at is not None
    assert all(not q.waiting for q in board.queues(CFG))  # answered: nobody waits any more
    for ev in evs[first:]:
        feed(board, tracker.apply(ev))
        assert_same(board, tracker)


def test_a_resync_ends_what_vanished_and_a_restart_finds_the_waiting_caller() -> None:
    tracker = CallTracker(LAB_SEATS)
    board = LiveBoard(SEAT_IDS)
    for ev in events("ring_no_answer"):  # the recording ends with the caller still waiting
        feed(board, tracker.apply(ev))
    assert {q.name: len(q.waiting) for q in board.queues(CFG)} == {
        "ordinary": 1,
        "expert": 0,
        "shared": 0,
    }
    notices = resync(tracker, board, [], [], tracker.last_at + 5)
    assert [type(n) for n in notices if isinstance(n, CallEnded)] == [CallEnded]
    assert all(not q.waiting for q in board.queues(CFG))
    assert board.call_ids() == ()

    # A restart: a new daemon, and a caller waiting in `shared` while seat2 rings.
    now = 1000.0
    found = ringing_after_restart()
    caller, leg, entry = found.caller, found.leg, found.entry
    member = QueueMemberSnapshot(
        at=0.0,
        queue=QueueName("shared"),
        interface="Local/seat2@phones/n",
        member_name="Seat 2",
        status=6,
        paused=False,
        paused_reason="",
        in_call=False,
        penalty=0,
    )
    tracker, board = CallTracker(LAB_SEATS), LiveBoard(SEAT_IDS)
    notices = resync(tracker, board, [caller, leg], [member], now, [entry])
    queued = [n for n in notices if isinstance(n, CallQueued)]
    assert [(n.queue, n.at, n.position) for n in queued] == [("shared", now - 12, 1)]
    assert_same(board, tracker)
    assert [q for q in board.queues(CFG) if q.waiting] == [
        BoardQueue("shared", (WaitingCaller("Li Si", now - 12),))
    ]
    (seat2,) = [t for t in board.tiles(CFG) if t.seat_id == "seat2"]
    assert (seat2.status, seat2.ring_started_at, seat2.caller) == ("ringing", now - 4, "Li Si")


def test_seats_resynced_drops_a_call_the_board_kept_by_mistake() -> None:
    tracker = CallTracker(LAB_SEATS)
    board = LiveBoard(SEAT_IDS)
    for ev in events("ring_no_answer"):
        feed(board, tracker.apply(ev))
    (call,) = tracker.calls()
    # The call ends, but the board never hears of it (say its handler failed on that item).
    gone = tracker.resync([], [], tracker.last_at + 5)
    assert any(isinstance(n, CallEnded) for n in gone)
    assert board.call_ids() == (call.call_id,)
    board.apply(SeatsResynced(tracker.last_at, tuple(SeatState(SeatId(s)) for s in SEAT_IDS), ()))
    assert board.call_ids() == ()
    assert all(not q.waiting for q in board.queues(CFG))
