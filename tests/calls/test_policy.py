"""Table tests for the three-ring rule and the talk-time cap (pure policies)."""

from __future__ import annotations

import pytest

from ctid.calls.policy import RingPolicy, TalkCapPolicy, ring_number
from ctid.config import RingConfig, TalkCapConfig
from ctid.core.effects import (
    AlertSupervisors,
    CancelTimer,
    CapDue,
    CapWarningDue,
    CutRingingLeg,
    FlagCall,
    HangupChannel,
    NotifySeat,
    PauseSeat,
    RecordAnswer,
    RecordRingMiss,
    RedirectToQueue,
    RequestCallback,
    RingDeadlineDue,
    StartTimer,
)
from ctid.core.ids import CallId, Channel, SeatId

C1, C2 = CallId("1795358660.0"), CallId("1795358686.4")
S1, S2 = SeatId("seat1"), SeatId("seat2")
L1, L2, L3 = (
    Channel("PJSIP/seat1-00000001"),
    Channel("PJSIP/seat1-00000002"),
    Channel("PJSIP/seat2-00000003"),
)


@pytest.mark.parametrize(
    ("ring_s", "cadence", "expected"),
    [
        (0.0, 5, 1),
        (4.9, 5, 1),
        (5.0, 5, 1),
        (5.01, 5, 2),
        (6.0, 5, 2),
        (10.0, 5, 2),
        (14.99, 5, 3),
        (15.0, 5, 3),
        (15.2, 5, 4),
        (7.0, 6, 2),
        (18.0, 6, 3),
    ],
)
def test_ring_number(ring_s: float, cadence: float, expected: int) -> None:
    assert ring_number(ring_s, cadence) == expected


def test_ring_start_sets_the_deadline_timer() -> None:
    policy = RingPolicy(RingConfig())
    assert policy.ring_started(C1, S1, L1) == [StartTimer(RingDeadlineDue(L1), 15.0)]
    assert policy.ring_started(C1, S1, L2, already_ringing_s=4.0) == [
        StartTimer(RingDeadlineDue(L2), 11.0)
    ]
    assert RingPolicy(RingConfig(max_rings=4, ring_cadence_s=6)).ring_started(C1, S1, L1) == [
        StartTimer(RingDeadlineDue(L1), 24.0)
    ]


def test_answered_at_ring_two_is_within_the_rule_and_resets_misses() -> None:
    policy = RingPolicy(RingConfig())
    policy.misses[S1] = 1
    policy.ring_started(C1, S1, L1)
    assert policy.ring_ended(L1, "answered", 6.0) == [
        CancelTimer(RingDeadlineDue(L1)),
        RecordAnswer(C1, S1, 6.0, 2, True),
    ]
    assert policy.misses[S1] == 0


def test_deadline_cuts_a_still_ringing_leg_and_counts_a_miss() -> None:
    policy = RingPolicy(RingConfig())
    policy.ring_started(C1, S1, L1)
    effects = policy.deadline_reached(L1, still_ringing=True)
    assert effects[0] == CutRingingLeg(C1, S1, L1)
    assert effects[1] == RecordRingMiss(C1, S1, 15.0, 1)
    assert isinstance(effects[2], AlertSupervisors)
    assert effects[2].kind == "ring_miss"
    assert not any(isinstance(e, PauseSeat) for e in effects)
    # the leg's end after the cut is not a second miss
    assert policy.ring_ended(L1, "cut", 15.0) == [CancelTimer(RingDeadlineDue(L1))]
    assert policy.misses[S1] == 1


def test_deadline_on_a_leg_that_already_stopped_does_nothing() -> None:
    policy = RingPolicy(RingConfig())
    policy.ring_started(C1, S1, L1)
    assert policy.deadline_reached(L1, still_ringing=False) == []
    assert policy.deadline_reached(Channel("PJSIP/unknown-1"), still_ringing=True) == []


def test_second_consecutive_miss_pauses_the_seat_once() -> None:
    policy = RingPolicy(RingConfig(rna_pause_after=2))
    policy.ring_started(C1, S1, L1)
    policy.deadline_reached(L1, True)
    policy.ring_started(C2, S1, L2)
    effects = policy.deadline_reached(L2, True)
    assert PauseSeat(S1, "rna") in effects
    assert any(isinstance(e, AlertSupervisors) and e.kind == "auto_pause" for e in effects)
    # a third miss while paused does not pause again
    policy.ring_started(C2, S1, L3)
    assert PauseSeat(S1, "rna") not in policy.deadline_reached(L3, True)
    # unpaused by a supervisor: a clean slate
    policy.seat_unpaused(S1)
    assert policy.misses[S1] == 0
    policy.ring_started(C2, S1, L1)
    assert PauseSeat(S1, "rna") not in policy.deadline_reached(L1, True)


def test_queue_timeout_at_the_deadline_is_a_miss_but_caller_leaving_is_not() -> None:
    policy = RingPolicy(RingConfig())
    policy.ring_started(C1, S1, L1)
    effects = policy.ring_ended(L1, "no_answer", 15.0)  # AgentRingNoAnswer RingTime=15000
    assert RecordRingMiss(C1, S1, 15.0, 1) in effects
    policy.ring_started(C2, S2, L3)
    assert policy.ring_ended(L3, "caller_left", 9.0) == [CancelTimer(RingDeadlineDue(L3))]
    policy.ring_started(C2, S2, L3)
    assert policy.ring_ended(L3, "other_answered", 3.0) == [CancelTimer(RingDeadlineDue(L3))]
    assert policy.misses.get(S2, 0) == 0


def test_a_miss_sequence_broken_by_an_answer_does_not_pause() -> None:
    policy = RingPolicy(RingConfig(rna_pause_after=2))
    policy.ring_started(C1, S1, L1)
    policy.deadline_reached(L1, True)
    policy.ring_started(C2, S1, L2)
    policy.ring_ended(L2, "answered", 3.0)
    policy.ring_started(C2, S1, L3)
    assert PauseSeat(S1, "rna") not in policy.deadline_reached(L3, True)


CALLER = Channel("PJSIP/trunk-00000001")


def test_cap_timers_from_answer_and_after_a_resync() -> None:
    cap = TalkCapPolicy(TalkCapConfig())
    assert cap.answered(C1, S1, "ordinary", CALLER, "13800138000") == [
        StartTimer(CapWarningDue(C1, 480), 480),
        StartTimer(CapWarningDue(C1, 540), 540),
        StartTimer(CapDue(C1), 600),
    ]
    # ctid restarted 500 s into the call: only what is still ahead, from the real answer time
    assert cap.answered(C1, S1, "ordinary", CALLER, "13800138000", talked_s=500) == [
        StartTimer(CapWarningDue(C1, 540), 40),
        StartTimer(CapDue(C1), 100),
    ]
    assert cap.answered(C2, S1, "ordinary", CALLER, "1", talked_s=700) == [
        StartTimer(CapDue(C2), 0.0)
    ]


def test_cap_warning_goes_to_agent_and_supervisors() -> None:
    cap = TalkCapPolicy(TalkCapConfig())
    cap.answered(C1, S1, "ordinary", CALLER, "13800138000")
    effects = cap.timer(CapWarningDue(C1, 480))
    assert effects[0] == NotifySeat(S1, "cap_warning", C1, remaining_s=120)
    assert isinstance(effects[1], AlertSupervisors)
    assert effects[1].kind == "cap_warning"


def test_cap_hangup_flags_and_requests_a_callback() -> None:
    cap = TalkCapPolicy(TalkCapConfig(action="hangup"))
    cap.answered(C1, S1, "ordinary", CALLER, "13800138000")
    effects = cap.timer(CapDue(C1))
    assert FlagCall(C1, "capped") in effects
    assert HangupChannel(C1, CALLER, "talk cap") in effects
    assert RequestCallback(C1, "13800138000", "capped") in effects
    assert cap.timer(CapDue(C1)) == []  # once


def test_cap_notify_only_flags() -> None:
    cap = TalkCapPolicy(TalkCapConfig(action="notify"))
    cap.answered(C1, S1, "ordinary", CALLER, "1")
    effects = cap.timer(CapDue(C1))
    assert FlagCall(C1, "capped") in effects
    assert not any(isinstance(e, HangupChannel | RedirectToQueue) for e in effects)


def test_cap_transfer_expert_and_fallback_for_experts() -> None:
    cap = TalkCapPolicy(TalkCapConfig(action="transfer_expert", expert_queue="expert"))
    cap.answered(C1, S1, "ordinary", CALLER, "1")
    assert RedirectToQueue(C1, CALLER, "expert", "talk cap") in cap.timer(CapDue(C1))  # type: ignore[arg-type]
    cap.answered(C2, SeatId("seat3"), "expert", CALLER, "1")
    effects = cap.timer(CapDue(C2))
    assert not any(isinstance(e, RedirectToQueue) for e in effects)
    assert FlagCall(C2, "capped") in effects


def test_call_end_cancels_the_cap_timers() -> None:
    cap = TalkCapPolicy(TalkCapConfig())
    cap.answered(C1, S1, "ordinary", CALLER, "1")
    assert cap.ended(C1) == [
        CancelTimer(CapWarningDue(C1, 480)),
        CancelTimer(CapWarningDue(C1, 540)),
        CancelTimer(CapDue(C1)),
    ]
    assert cap.ended(C1) == []
    assert cap.timer(CapDue(C1)) == []
