"""The call/seat tracker: recorded Asterisk scenarios replayed in order and shuffled across channels,
resync from snapshots, seat mapping, and no per-call memory growth."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterable, Sequence

import pytest

from ctid.calls.seats import SeatRef, channel_device, interface_device
from ctid.calls.tracker import CallTracker, UnknownSeatError
from ctid.core.calls import (
    CallAnswered,
    CallEnded,
    CallLeftQueue,
    CallQueued,
    CallRecord,
    CallStarted,
    CallTransferred,
    Notice,
    SeatLegEnded,
    SeatRingEnded,
    SeatRingStarted,
    SeatState,
    SeatStateChanged,
)
from ctid.core.events import (
    AgentCompleted,
    AgentConnected,
    AgentRang,
    AgentRingUnanswered,
    BridgeEntered,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelSnapshot,
    ChannelStateChanged,
    ChannelVariableSet,
    Event,
    QueueMemberPaused,
    QueueMemberSnapshot,
    Transferred,
)
from ctid.core.ids import CallId, Channel, QueueName, SeatId, UniqueId

from ._replay import LAB_SEATS, events, interleave, ringing_after_restart, with_ctid_facts

S1, S2, S3 = SeatId("seat1"), SeatId("seat2"), SeatId("seat3")


def run(
    evs: Iterable[Event], tracker: CallTracker | None = None
) -> tuple[CallTracker, list[Notice]]:
    tracker = tracker or CallTracker(LAB_SEATS)
    notices: list[Notice] = []
    for ev in evs:
        notices.extend(tracker.apply(ev))
    return tracker, notices


def records(notices: Sequence[Notice]) -> list[CallRecord]:
    return [n.record for n in notices if isinstance(n, CallEnded)]


def only_record(notices: Sequence[Notice]) -> CallRecord:
    recs = records(notices)
    assert len(recs) == 1, recs
    return recs[0]


def of_type(notices: Sequence[Notice], cls: type) -> list[Notice]:
    return [n for n in notices if isinstance(n, cls)]


# --------------------------------------------------------------------------- recorded scenarios


def test_answered_call_is_answered_by_seat1_after_a_six_second_ring() -> None:
    tracker, notices = run(events("answered"))
    rec = only_record(notices)
    assert rec.outcome == "answered"
    assert rec.answered_by == S1
    assert (rec.caller_num, rec.caller_name) == ("13800138000", "Zhang San")
    assert rec.queue == "ordinary"
    assert rec.ivr_choice == "1"
    assert len(rec.ring_attempts) == 1
    ring = rec.ring_attempts[0]
    assert (ring.seat, ring.outcome, ring.channel) == (
        S1,
        "answered",
        "Local/seat1@phones-00000001;1",
    )
    assert ring.ring_s == pytest.approx(6.0, abs=0.1)
    assert rec.talk_s == pytest.approx(5.5, abs=0.1)
    assert rec.hold_s == pytest.approx(6.0, abs=0.1)
    assert rec.ended_by == "agent"
    assert rec.started_at < rec.queued_at < rec.answered_at < rec.ended_at  # type: ignore[operator]
    kinds = [type(n) for n in notices if not isinstance(n, SeatStateChanged)]
    assert kinds == [
        CallStarted,
        CallQueued,
        SeatRingStarted,
        SeatRingEnded,
        CallAnswered,
        SeatLegEnded,
        CallEnded,
    ]
    ring_start = of_type(notices, SeatRingStarted)[0]
    assert isinstance(ring_start, SeatRingStarted)
    assert (ring_start.caller_num, ring_start.ivr_choice) == ("13800138000", "1")
    activities = [n.new.activity for n in notices if isinstance(n, SeatStateChanged)]
    assert activities[0] == "ringing" and "on_call" in activities and activities[-1] == "idle"
    assert tracker.calls() == ()
    assert tracker.seat(S1).activity == "idle"
    assert tracker.stats()["channels"] == 0 and tracker.stats()["aliases"] == 0


def test_ring_no_answer_records_two_unanswered_fifteen_second_rings_and_the_call_stays() -> None:
    tracker, notices = run(events("ring_no_answer"))
    assert records(notices) == []  # the recording ends with the caller still waiting
    (call,) = tracker.calls()
    assert call.phase == "queued"
    assert call.queue == "ordinary"
    assert [(a.seat, a.outcome, a.ring_s) for a in call.ring_attempts] == [
        (S1, "no_answer", 15.0),
        (S1, "no_answer", 15.0),
    ]
    ended = of_type(notices, SeatRingEnded)
    assert [n.reason for n in ended] == ["no_answer", "no_answer"]  # type: ignore[attr-defined]
    # seat 2 was paused with reason "test", then unpaused
    s2 = [n.new for n in notices if isinstance(n, SeatStateChanged) and n.seat == S2]
    assert s2[0].paused and s2[0].pause_reason == "test" and s2[0].status == "paused"
    assert not tracker.seat(S2).paused and tracker.seat(S2).pause_reason == ""
    assert tracker.seat(S1).activity == "idle"


def test_abandon_is_abandoned_in_queue_and_the_ring_ends_because_the_caller_left() -> None:
    tracker, notices = run(events("abandon"))
    rec = only_record(notices)
    assert rec.outcome == "abandoned_in_queue"
    assert rec.answered_at is None and rec.answered_by is None
    assert [(a.seat, a.outcome) for a in rec.ring_attempts] == [(S1, "caller_left")]
    assert rec.ring_attempts[0].ring_s == pytest.approx(8.25, abs=0.1)
    assert tracker.seat(S1).activity == "idle"
    kinds = [type(n) for n in notices if not isinstance(n, SeatStateChanged)]
    # the caller's leaving the queue is told once (the wallboard stops showing them waiting)
    assert kinds == [
        CallStarted,
        CallQueued,
        SeatRingStarted,
        SeatRingEnded,
        CallLeftQueue,
        CallEnded,
    ]


def test_enforced_hangup_cuts_seat2_after_two_seconds_and_the_queue_rings_seat1() -> None:
    last_at = [0.0]
    tracker, notices = run(with_ctid_facts("enforced_hangup", last_at))
    (call,) = tracker.calls()
    first, second, third = call.ring_attempts
    assert (first.seat, first.outcome, first.ring_s) == (S2, "cut", 2.0)
    assert (second.seat, second.outcome, second.ring_s) == (S1, "no_answer", 15.0)
    assert (third.seat, third.outcome) == (S1, None)
    assert call.phase == "ringing"
    assert tracker.seat(S1).activity == "ringing" and tracker.seat(S1).call_id == call.call_id
    assert tracker.seat(S2).activity == "idle"
    started = [n.seat for n in notices if isinstance(n, SeatRingStarted)]
    assert started == [S2, S1, S1]


def test_enforced_hangup_without_ctids_note_is_a_plain_no_answer() -> None:
    tracker, _ = run(events("enforced_hangup"))
    (call,) = tracker.calls()
    assert (call.ring_attempts[0].outcome, call.ring_attempts[0].ring_s) == ("no_answer", 2.0)


def test_chanspy_follows_the_supervisor_on_the_exact_seat_channel() -> None:
    evs = events("chanspy")
    tracker = CallTracker(LAB_SEATS)
    spied: list[tuple[Channel, ...]] = []
    notices: list[Notice] = []
    for ev in evs:
        notices.extend(tracker.apply(ev))
        calls = tracker.calls()
        if calls:
            spied.append(calls[0].spied_by)
            assert calls[0].seat_channel in (None, "Local/seat3@phones-0000000e;1")
    assert ("Local/spy1@supervisor-0000000f;1",) in spied
    assert spied[-1] == ()  # ChanSpyStop came before the call ended
    rec = only_record(notices)  # the supervisor's own channels are not a hotline call
    assert (rec.outcome, rec.answered_by, rec.queue, rec.ivr_choice) == (
        "answered",
        S3,
        "expert",
        "2",
    )
    assert rec.talk_s == pytest.approx(20.5, abs=0.2)
    assert len(of_type(notices, CallStarted)) == 1
    assert tracker.stats()["channels"] == 0


def test_call_cap_is_answered_and_ended_by_ctids_absolute_timeout() -> None:
    last_at = [0.0]
    _, notices = run(with_ctid_facts("call_cap", last_at))
    rec = only_record(notices)
    assert (rec.outcome, rec.answered_by, rec.ended_by) == ("answered", S1, "talk_cap")
    assert rec.talk_s == pytest.approx(5.0, abs=0.1)


def test_call_cap_without_ctids_note_is_ended_by_the_caller() -> None:
    _, notices = run(events("call_cap"))
    assert only_record(notices).ended_by == "caller"


def test_hangup_in_ivr_is_abandoned_in_ivr_without_rings() -> None:
    _tracker, notices = run(events("hangup_in_ivr"))
    rec = only_record(notices)
    assert rec.outcome == "abandoned_in_ivr"
    assert rec.ring_attempts == () and rec.queue is None and rec.queued_at is None
    assert (rec.caller_num, rec.caller_name, rec.ivr_choice) == ("13700001111", "Wang Wu", "")
    assert of_type(notices, SeatRingStarted) == []


def test_queue_ops_pause_with_reason_and_membership_changes() -> None:
    tracker, notices = run(events("queue_ops"))
    s1 = [n for n in notices if isinstance(n, SeatStateChanged) and n.seat == S1]
    assert [n.reason for n in s1] == ["paused", "unpaused", "member_added", "member_removed"]
    paused = s1[0].new
    assert (paused.paused, paused.pause_reason, paused.status) == (True, "lunch", "paused")
    assert paused.paused_in == {"ordinary"}
    assert s1[2].new.queues == {"ordinary", "expert"}
    assert tracker.seat(S1).queues == {"ordinary"}
    assert tracker.seat(S1).status == "idle"


# --------------------------------------------------------------------------- out of order


def summary(tracker: CallTracker, notices: Sequence[Notice]) -> object:
    def attempts(items: Iterable[object]) -> list[tuple[object, object]]:
        return [(a.seat, a.outcome) for a in items]  # type: ignore[attr-defined]

    ended = [
        (r.call_id, r.outcome, r.answered_by, r.ended_by, attempts(r.ring_attempts))
        for r in records(notices)
    ]
    live = [(c.call_id, c.phase, c.answered_by, attempts(c.ring_attempts)) for c in tracker.calls()]
    seats = [(s.seat_id, s.activity, s.paused, s.queues) for s in tracker.seats()]
    return ended, live, seats


def ring_times(notices: Sequence[Notice], tracker: CallTracker) -> list[float | None]:
    out = [a.ring_s for r in records(notices) for a in r.ring_attempts]
    out += [a.ring_s for c in tracker.calls() for a in c.ring_attempts]
    return out


@pytest.mark.parametrize(
    "name",
    [
        "answered",
        "abandon",
        "enforced_hangup",
        "ring_no_answer",
        "chanspy",
        "call_cap",
        "hangup_in_ivr",
    ],
)
def test_shuffling_events_across_channels_gives_the_same_outcome(name: str) -> None:
    evs = events(name)
    tracker, notices = run(evs)
    expected = summary(tracker, notices)
    expected_rings = ring_times(notices, tracker)
    for seed in range(40):
        shuffled = interleave(evs, seed)
        assert shuffled != evs or seed > 0
        t2, n2 = run(shuffled)
        assert summary(t2, n2) == expected, f"seed {seed}"
        assert ring_times(n2, t2) == pytest.approx(expected_rings, abs=0.05), f"seed {seed}"
        assert len(of_type(n2, CallStarted)) == len(of_type(notices, CallStarted)), f"seed {seed}"


def test_seat_leg_hangup_before_agent_ring_no_answer() -> None:
    evs = events("ring_no_answer")
    rna = next(i for i, e in enumerate(evs) if isinstance(e, AgentRingUnanswered))
    leg = evs[rna]
    assert isinstance(leg, AgentRingUnanswered)
    hangup = next(
        i
        for i, e in enumerate(evs)
        if isinstance(e, ChannelHungUp) and e.uniqueid == leg.dest_uniqueid
    )
    assert hangup > rna
    moved = [*evs[:rna], evs[hangup], *evs[rna:hangup], *evs[hangup + 1 :]]
    tracker = CallTracker(LAB_SEATS)
    notices: list[Notice] = []
    for ev in moved[: rna + 1]:
        notices.extend(tracker.apply(ev))
    # the seat stops ringing at once, but the ring's verdict waits for the queue
    assert tracker.seat(S1).activity == "idle"
    assert of_type(notices, SeatRingEnded) == []
    _, rest = run(moved[rna + 1 :], tracker)
    ended = of_type(rest, SeatRingEnded)
    assert [(n.reason, n.ring_s) for n in ended] == [("no_answer", 15.0), ("no_answer", 15.0)]  # type: ignore[attr-defined]


def test_bridge_enter_before_agent_connect_answers_once() -> None:
    evs = events("answered")
    connect = next(i for i, e in enumerate(evs) if isinstance(e, AgentConnected))
    enter = next(
        i
        for i, e in enumerate(evs)
        if isinstance(e, BridgeEntered) and e.channel.startswith("Local/seat1")
    )
    moved = [*evs[:connect], evs[enter], *evs[connect:enter], *evs[enter + 1 :]]
    _, notices = run(moved)
    answered = of_type(notices, CallAnswered)
    assert len(answered) == 1
    assert answered[0].seat == S1  # type: ignore[attr-defined]
    rec = only_record(notices)
    assert rec.outcome == "answered"
    assert rec.ring_attempts[0].ring_s == pytest.approx(6.0, abs=0.1)


def test_late_events_for_an_ended_call_do_not_bring_it_back() -> None:
    evs = events("answered")
    tracker, _ = run(evs)
    caller = next(e for e in evs if isinstance(e, ChannelVariableSet))
    late = ChannelVariableSet(
        at=caller.at + 100,
        channel=caller.channel,
        uniqueid=caller.uniqueid,
        linkedid=caller.linkedid,
        name="CTID_LATE",
        value="x",
        caller_num="",
        caller_name="",
    )
    assert tracker.apply(late) == []
    assert tracker.calls() == ()


# --------------------------------------------------------------------------- resync


def snapshot(name: str) -> tuple[int, list[ChannelSnapshot], list[QueueMemberSnapshot]]:
    """The position of the first list item in the events, and the lists themselves."""
    evs = events(name)
    chans = [e for e in evs if isinstance(e, ChannelSnapshot)]
    members = [e for e in evs if isinstance(e, QueueMemberSnapshot)]
    first = next(i for i, e in enumerate(evs) if isinstance(e, ChannelSnapshot))
    return first, chans, members


def comparable(tracker: CallTracker) -> object:
    calls = [
        (c.call_id, c.phase, c.answered_by, c.queue, c.caller_num, c.caller_channel, c.seat_channel)
        for c in tracker.calls()
    ]
    seats = [(s.seat_id, s.activity, s.call_id, s.paused, s.queues) for s in tracker.seats()]
    return calls, seats


def test_resync_snapshot_gives_the_same_state_as_the_live_events() -> None:
    evs = events("resync")
    first, chans, members = snapshot("resync")
    live, _ = run(evs[:first])
    now = live.last_at
    again = live.resync(chans, members, now)
    assert [n for n in again if not isinstance(n, SeatStateChanged)] == []  # nothing duplicated
    assert len(live.calls()) == 1

    fresh = CallTracker(LAB_SEATS)
    rebuilt = fresh.resync(chans, members, now)
    assert comparable(fresh) == comparable(live)
    (call,) = fresh.calls()
    (known,) = live.calls()
    assert call.answered_by == S2 and call.phase == "answered"
    # the answer time comes from the seat leg's Duration (whole seconds, includes the ring)
    assert call.answered_at == pytest.approx(known.answered_at, abs=3.0)
    assert call.started_at == pytest.approx(known.started_at, abs=1.5)
    assert [type(n) for n in rebuilt if not isinstance(n, SeatStateChanged)] == [
        CallStarted,
        CallAnswered,
    ]
    (answer,) = of_type(rebuilt, CallAnswered)
    assert isinstance(answer, CallAnswered)
    # Only the seat leg's age is known: no ring time is invented, and the notice says so.
    assert (answer.ring_s, answer.hold_s, answer.answer_source) == (None, None, "seat_leg_start")
    assert [(a.outcome, a.ring_s) for a in call.ring_attempts] == [("answered", None)]
    assert fresh.seat(S2).status == "on_call"

    rest = evs[first:]
    _, end_live = run(rest, live)
    _, end_fresh = run(rest, fresh)
    for rec in (only_record(end_live), only_record(end_fresh)):
        assert (rec.outcome, rec.answered_by, rec.ended_by) == ("answered", S2, "caller")
    assert live.stats() == {**fresh.stats(), "tombstones": live.stats()["tombstones"]}


def test_resync_mid_call_repairs_missed_ring_and_answer() -> None:
    evs = events("resync")
    first, chans, members = snapshot("resync")
    rang = next(i for i, e in enumerate(evs) if isinstance(e, AgentRang))
    tracker, _before = run(evs[:rang])  # everything from the ring to the snapshot is lost
    (call,) = tracker.calls()
    assert call.phase == "queued"
    repaired = tracker.resync(chans, members, evs[first - 1].at)
    assert of_type(repaired, CallStarted) == []
    answered = of_type(repaired, CallAnswered)
    assert [n.seat for n in answered] == [S2]  # type: ignore[attr-defined]
    (call,) = tracker.calls()
    assert (call.phase, call.answered_by) == ("answered", S2)
    assert tracker.seat(S2).activity == "on_call"
    _, after = run(evs[first:], tracker)
    rec = only_record(after)
    assert (rec.outcome, rec.answered_by) == ("answered", S2)
    assert [(a.seat, a.outcome) for a in rec.ring_attempts] == [(S2, "answered")]


def test_resync_ends_calls_whose_channels_are_gone() -> None:
    queued, _ = run(events("ring_no_answer"))
    notices = queued.resync([], [], queued.last_at + 5)
    rec = only_record(notices)
    assert rec.outcome == "lost_during_resync"
    assert queued.calls() == () and queued.stats()["channels"] == 0

    evs = events("answered")
    hangups = [i for i, e in enumerate(evs) if isinstance(e, ChannelHungUp)]
    talking, _ = run(evs[: hangups[0]])  # the hangups were missed
    rec = only_record(talking.resync([], [], talking.last_at + 60))
    assert (rec.outcome, rec.answered_by) == ("answered", S1)
    assert talking.seat(S1).activity == "idle"


def test_resync_finds_a_ringing_call_and_a_waiting_caller() -> None:
    now = 1000.0
    found = ringing_after_restart()
    caller, leg, entry = found.caller, found.leg, found.entry
    tracker = CallTracker(LAB_SEATS)
    notices = tracker.resync([caller, leg], [], now, entries=[entry])
    ring = of_type(notices, SeatRingStarted)
    assert [(n.seat, n.at) for n in ring] == [(S2, now - 4)]  # type: ignore[attr-defined]
    (call,) = tracker.calls()
    assert (call.phase, call.queue, call.queued_at, call.caller_name) == (
        "ringing",
        "shared",
        now - 12,
        "Li Si",
    )
    assert tracker.seat(S2).activity == "ringing"
    # memberships from a full QueueStatus: a seat in no queue is unavailable
    assert tracker.seat(S1).available is False and tracker.seat(S1).status == "unavailable"


# --------------------------------------------------------------------------- seats


def test_channel_names_map_to_devices_without_prefix_confusion() -> None:
    assert channel_device("PJSIP/seat1-0000002a") == "PJSIP/seat1"
    assert channel_device("PJSIP/seat10-0000002a") == "PJSIP/seat10"
    assert channel_device("Local/seat1@phones-0000000b;1") == "Local/seat1@phones"
    assert channel_device("Local/seat1@phones-0000000b;2") == "Local/seat1@phones"
    assert channel_device("PJSIP/seat1") == "PJSIP/seat1"
    assert channel_device("PJSIP/front-desk-0000000c") == "PJSIP/front-desk"
    assert interface_device("Local/seat1@phones/n") == "Local/seat1@phones"
    assert interface_device("PJSIP/seat1") == "PJSIP/seat1"


def _pjsip_call(uid: str, seat_iface: str, leg: str, t: float) -> list[Event]:
    lid = UniqueId(uid)
    caller = Channel(f"PJSIP/trunk-{int(float(uid) * 10):08x}")
    return [
        ChannelCreated(
            at=t,
            channel=caller,
            uniqueid=lid,
            linkedid=lid,
            state=4,
            caller_num="13800000001",
            caller_name="A",
            context="hotline",
            exten="4000",
        ),
        CallerJoinedQueue(
            at=t + 1,
            channel=caller,
            uniqueid=lid,
            linkedid=lid,
            queue=QueueName("ordinary"),
            position=1,
            count=1,
            caller_num="13800000001",
            caller_name="A",
        ),
        AgentRang(
            at=t + 2,
            channel=caller,
            uniqueid=lid,
            linkedid=lid,
            dest_channel=Channel(leg),
            dest_uniqueid=UniqueId(uid + "1"),
            queue=QueueName("ordinary"),
            interface=seat_iface,
            member_name="x",
        ),
    ]


def test_seat10_rings_and_seat1_stays_idle() -> None:
    seats = (
        SeatRef(S1, "PJSIP/seat1", "ordinary"),
        SeatRef(SeatId("seat10"), "PJSIP/seat10", "ordinary"),
    )
    tracker = CallTracker(seats)
    leg = "PJSIP/seat10-0000000a"
    evs = _pjsip_call("500.1", "PJSIP/seat10", leg, 500.0)
    evs.append(
        ChannelCreated(
            at=502.0,
            channel=Channel(leg),
            uniqueid=UniqueId("500.11"),
            linkedid=UniqueId("500.1"),
            state=5,
            caller_num="",
            caller_name="",
            context="",
            exten="",
        )
    )
    run(evs, tracker)
    assert tracker.seat(SeatId("seat10")).activity == "ringing"
    assert tracker.seat(S1).activity == "idle"
    with pytest.raises(UnknownSeatError):
        tracker.seat(SeatId("seat2"))


def test_a_seat_can_be_paused_and_on_a_call_at_once() -> None:
    evs = events("answered")
    connect = next(i for i, e in enumerate(evs) if isinstance(e, AgentConnected))
    tracker, _ = run(evs[: connect + 1])
    notices = tracker.apply(
        QueueMemberPaused(
            at=tracker.last_at,
            queue=QueueName("ordinary"),
            interface="Local/seat1@phones/n",
            member_name="Seat 1",
            paused=True,
            reason="lunch",
        )
    )
    (change,) = notices
    assert isinstance(change, SeatStateChanged)
    state: SeatState = tracker.seat(S1)
    assert (state.activity, state.paused, state.pause_reason, state.status) == (
        "on_call",
        True,
        "lunch",
        "on_call",
    )
    assert change.old.activity == "on_call" and not change.old.paused


def test_blind_transfer_keeps_the_call_and_names_the_transferring_seat() -> None:
    evs = events("answered")
    connect = next(i for i, e in enumerate(evs) if isinstance(e, AgentConnected))
    tracker, _ = run(evs[: connect + 1])
    conn = evs[connect]
    assert isinstance(conn, AgentConnected)
    (notice,) = tracker.apply(
        Transferred(
            at=conn.at + 3,
            kind="blind",
            result="Success",
            transferer_channel=conn.dest_channel,
            transferer_uniqueid=conn.dest_uniqueid,
            transferer_linkedid=conn.linkedid,
            transferee_channel=conn.channel,
            transferee_uniqueid=conn.uniqueid,
            transferee_linkedid=conn.linkedid,
            target_channel=Channel(""),
            target_uniqueid=UniqueId(""),
            target_linkedid=UniqueId(""),
            context="hotline",
            exten="expert",
        )
    )
    assert isinstance(notice, CallTransferred)
    assert (notice.by_seat, notice.exten, notice.call_id) == (S1, "expert", conn.linkedid)
    _, rest = run(evs[connect + 1 :], tracker)
    rec = only_record(rest)
    assert rec.transferred and rec.outcome == "answered"


def test_a_changed_linkedid_keeps_new_channels_in_the_same_call() -> None:
    tracker = CallTracker(LAB_SEATS)
    evs = _pjsip_call("600.1", "Local/seat1@phones/n", "Local/seat1@phones-00000020;1", 600.0)
    run(evs, tracker)
    relinked = ChannelStateChanged(
        at=604.0,
        channel=Channel("PJSIP/trunk-00001770"),
        uniqueid=UniqueId("600.1"),
        linkedid=UniqueId("777.7"),
        state=6,
    )
    tracker.apply(relinked)
    joined = ChannelCreated(
        at=605.0,
        channel=Channel("PJSIP/other-00000001"),
        uniqueid=UniqueId("777.9"),
        linkedid=UniqueId("777.7"),
        state=4,
        caller_num="",
        caller_name="",
        context="",
        exten="",
    )
    assert of_type(tracker.apply(joined), CallStarted) == []
    (call,) = tracker.calls()
    assert call.call_id == CallId("600.1")
    assert "PJSIP/other-00000001" in call.channels


# --------------------------------------------------------------------------- memory


def _synthetic_call(n: int) -> list[Event]:
    """One complete answered call with unique ids (events built directly: fast)."""
    t = 1000.0 + n * 10
    lid = UniqueId(f"{n}.0")
    leg_uid = UniqueId(f"{n}.1")
    caller = Channel(f"PJSIP/trunk-{n:08x}")
    leg = Channel(f"Local/seat{n % 4 + 1}@phones-{n:08x};1")
    iface = f"Local/seat{n % 4 + 1}@phones/n"
    common = {"channel": caller, "uniqueid": lid, "linkedid": lid}
    agent = {
        **common,
        "dest_channel": leg,
        "dest_uniqueid": leg_uid,
        "queue": QueueName("ordinary"),
        "interface": iface,
        "member_name": "m",
    }
    return [
        ChannelCreated(at=t, state=4, caller_num="1", caller_name="", context="", exten="", **common),
        ChannelVariableSet(at=t + 1, name="CTID_IVR", value="1", caller_num="1", caller_name="", **common),
        CallerJoinedQueue(at=t + 2, queue=QueueName("ordinary"), position=1, count=1, caller_num="1", caller_name="", **common),
        AgentRang(at=t + 3, **agent),
        ChannelCreated(at=t + 3, channel=leg, uniqueid=leg_uid, linkedid=lid, state=5, caller_num="", caller_name="", context="", exten=""),
        ChannelStateChanged(at=t + 5, channel=leg, uniqueid=leg_uid, linkedid=lid, state=6),
        AgentConnected(at=t + 5, hold_time_s=3, ring_time_s=2, **agent),
        BridgeEntered(at=t + 5, channel=leg, uniqueid=leg_uid, linkedid=lid, bridge_id=f"b{n}"),
        AgentCompleted(at=t + 8, hold_time_s=3, talk_time_s=3, reason="agent", **agent),
        ChannelHungUp(at=t + 8, channel=leg, uniqueid=leg_uid, linkedid=lid, cause=16, cause_txt=""),
        ChannelHungUp(at=t + 9, cause=16, cause_txt="", **common),
    ]  # fmt: skip


def test_ended_calls_leave_no_state_behind() -> None:
    tracker = CallTracker(LAB_SEATS, remember=256)

    def play(first: int, count: int) -> int:
        ended = 0
        for n in range(first, first + count):
            for ev in _synthetic_call(n):
                ended += sum(isinstance(x, CallEnded) for x in tracker.apply(ev))
        return ended

    assert play(0, 300) == 300  # fills the bounded tombstones
    tracemalloc.start()
    try:
        assert play(300, 300) == 300  # everything long-lived is now allocated under tracing
        gc.collect()
        base, _ = tracemalloc.get_traced_memory()
        assert play(600, 1500) == 1500
        gc.collect()
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stats = tracker.stats()
    assert stats["channels"] == stats["calls"] == stats["aliases"] == stats["leg_attempts"] == 0
    assert stats["tombstones"] <= 2 * 256
    # steady state: a leak of even 15 bytes per call would show (1,500 calls x 15 B)
    assert grown - base < 20_000
    assert all(s.activity == "idle" for s in tracker.seats())


# --------------------------------------------------------------------------- PJSIP facts

PJSIP_SEATS = tuple(
    SeatRef(SeatId(f"seat{i}"), f"PJSIP/seat{i}", "ordinary" if i < 3 else "expert")
    for i in range(1, 5)
)


def test_transfer_redirect_gives_each_seat_its_own_leg_and_names_the_expert() -> None:
    # Asterisk 22 sends no AgentComplete when seat1's leg hangs up after the Redirect; both
    # come at the caller's hangup, seat1's TalkTime counted to the end of the whole call.
    tracker = CallTracker(PJSIP_SEATS)
    _, notices = run(events("pjsip/pjsip_transfer_redirect"), tracker)
    rec = only_record(notices)
    assert (rec.outcome, rec.answered_by, rec.transferred, rec.transferred_to) == (
        "answered",
        S1,
        True,
        SeatId("seat3"),
    )
    first, expert = rec.ring_attempts
    assert (first.seat, first.outcome, expert.seat, expert.outcome) == (
        S1,
        "answered",
        SeatId("seat3"),
        "answered",
    )
    legs = [n for n in notices if isinstance(n, SeatLegEnded)]
    assert [leg.seat for leg in legs] == [S1, SeatId("seat3")]
    # seat1 talked from its answer until its own leg hung up, not until the caller's hangup
    assert first.talk_end == legs[0].at < rec.ended_at
    assert first.talk_s == pytest.approx(legs[0].at - first.end)  # type: ignore[operator]
    assert first.talk_s == pytest.approx(5.0, abs=0.2)
    assert expert.talk_s == pytest.approx(rec.ended_at - expert.end, abs=0.01)  # type: ignore[operator]
    assert expert.talk_s == pytest.approx(10.8, abs=0.3)
    # seat1 went idle at its own hangup, while the call still went on
    seat1_idle = [
        n.at
        for n in notices
        if isinstance(n, SeatStateChanged) and n.seat == S1 and n.new.activity == "idle"
    ]
    assert seat1_idle == [legs[0].at]
    answers = [n for n in notices if isinstance(n, CallAnswered)]
    assert [(a.seat, a.transfer, a.queue) for a in answers] == [  # type: ignore[attr-defined]
        (S1, False, "ordinary"),
        (SeatId("seat3"), True, "expert"),
    ]


def test_the_ivr_category_is_on_the_answer_and_on_the_record() -> None:
    tracker = CallTracker(PJSIP_SEATS)
    _, notices = run(events("pjsip/pjsip_answered"), tracker)
    rec = only_record(notices)
    assert rec.category == "consultation"
    (answer,) = of_type(notices, CallAnswered)
    assert isinstance(answer, CallAnswered)
    assert (answer.category, answer.answer_source, answer.transfer) == (
        "consultation",
        "live",
        False,
    )
    assert rec.transferred_to is None
