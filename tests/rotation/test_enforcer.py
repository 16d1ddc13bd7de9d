"""Making the PBX follow the plan: the pure pause/membership decisions, and the `RotaEnforcer`
service against a hand-written recording PBX whose live state the test controls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from structlog.testing import capture_logs

from ctid.config import Config
from ctid.core.clock import FakeClock
from ctid.core.errors import AmiActionError, AmiDisconnectedError
from ctid.core.ids import SeatId
from ctid.rotation.enforcer import (
    AddMember,
    DeferPause,
    LiveSeat,
    RemoveMember,
    RotaEnforcer,
    RotaPause,
    RotaUnpause,
    SeatLive,
    desired_pauses,
    plan_actions,
    plan_memberships,
    state_interface,
)
from ctid.rotation.rota import Rota

from ._desk import SHANGHAI, at

# 2026-11-23 is the Monday of 2026-W48: lunch group B (seat2 ordinary, seat4 expert) on duty,
# so seat1 (ordinary) and seat3 (expert) eat.
MONDAY = "2026-11-23"
S1, S2, S3, S4 = SeatId("seat1"), SeatId("seat2"), SeatId("seat3"), SeatId("seat4")
ORD = {"ordinary": 0, "shared": 0}
EXP = {"expert": 0, "shared": 1}
MEMBERS = {S1: ORD, S2: ORD, S3: EXP, S4: EXP}


def desk_config(**lunch: Any) -> Config:
    seats = [
        {"id": f"seat{n}", "name": f"Seat {n}", "tier": t, "interface": f"PJSIP/seat{n}"}
        for n, t in ((1, "ordinary"), (2, "ordinary"), (3, "expert"), (4, "expert"))
    ]
    groups = lunch.pop(
        "groups",
        [{"name": "A", "seats": ["seat1", "seat3"]}, {"name": "B", "seats": ["seat2", "seat4"]}],
    )
    return Config.model_validate(
        {
            "seats": seats,
            "lunch": {"groups": groups, **lunch},
            "site": {"timezone": "Asia/Shanghai"},
        }
    )


CFG = desk_config()
ROTA = Rota.from_config(CFG)


def live_desk(**changes: dict[str, Any]) -> dict[SeatId, SeatLive]:
    """Every seat idle, unpaused, a member of its tier's queues; `seat1={"paused": True}` etc."""
    out: dict[SeatId, SeatLive] = {}
    for sid, members in MEMBERS.items():
        out[sid] = LiveSeat(memberships=dict(members), **changes.get(sid, {}))
    return out


def pauses(when: str, live: Mapping[SeatId, SeatLive], rota: Rota = ROTA) -> list[object]:
    state = rota.state(at(when))
    return list(plan_actions(desired_pauses(state, rota.duty_seats, live), live))


# --------------------------------------------------------------------------- pure: pauses


def test_start_at_12_40_pauses_the_off_duty_group_at_once() -> None:
    assert pauses(f"{MONDAY} 12:40", live_desk()) == [
        RotaPause(S1, "lunch"),
        RotaPause(S3, "lunch"),
    ]


def test_restart_during_lunch_pauses_nobody_twice() -> None:
    live = live_desk(
        seat1={"paused": True, "pause_reason": "lunch"},
        seat3={"paused": True, "pause_reason": "lunch"},
    )
    assert pauses(f"{MONDAY} 12:40", live) == []


def test_13_30_unpauses_only_lunch_pauses() -> None:
    live = live_desk(
        seat1={"paused": True, "pause_reason": "lunch"},
        seat2={"paused": True, "pause_reason": "rna"},
        seat3={"paused": True, "pause_reason": "lunch"},
        seat4={"paused": True, "pause_reason": ""},  # paused from the phone, no reason
    )
    assert pauses(f"{MONDAY} 13:30", live) == [
        RotaUnpause(S1, "lunch"),
        RotaUnpause(S3, "lunch"),
    ]


@pytest.mark.parametrize("reason", ["rna", "break", "training", ""])
def test_manual_and_rna_pauses_are_never_touched(reason: str) -> None:
    live = live_desk(seat1={"paused": True, "pause_reason": reason})
    for when in ("07:00", "09:00", "12:40", "13:30", "18:00"):
        assert all(a.seat_id != S1 for a in pauses(f"{MONDAY} {when}", live)), when
    desired = desired_pauses(ROTA.state(at(f"{MONDAY} 09:00")), ROTA.duty_seats, live)
    assert desired[S1] == (True, reason)


@pytest.mark.parametrize("want", [(False, ""), (True, "lunch"), (True, "closed")])
def test_plan_actions_alone_never_overrides_a_foreign_pause(want: tuple[bool, str]) -> None:
    live: dict[SeatId, SeatLive] = {S1: LiveSeat(paused=True, pause_reason="rna")}
    assert plan_actions({S1: want}, live) == []


def test_live_call_at_12_00_defers_the_pause_until_the_call_ends() -> None:
    live = live_desk(seat1={"on_call": True})
    assert pauses(f"{MONDAY} 12:00", live) == [DeferPause(S1, "lunch"), RotaPause(S3, "lunch")]
    ended = {
        **live,
        S1: replace(live[S1], on_call=False),
        S3: replace(live[S3], paused=True, pause_reason="lunch"),
    }
    assert pauses(f"{MONDAY} 12:07", ended) == [RotaPause(S1, "lunch")]


def test_on_duty_seat_on_a_call_is_left_alone_and_unpausing_never_waits() -> None:
    live = live_desk(
        seat2={"on_call": True},
        seat1={"on_call": True, "paused": True, "pause_reason": "lunch"},
    )
    assert pauses(f"{MONDAY} 13:30", live) == [RotaUnpause(S1, "lunch")]


def test_closing_pauses_everybody_with_reason_closed_and_opening_unpauses() -> None:
    assert pauses(f"{MONDAY} 17:30", live_desk()) == [RotaPause(s, "closed") for s in MEMBERS]
    closed = live_desk(**{s: {"paused": True, "pause_reason": "closed"} for s in MEMBERS})
    assert pauses(f"{MONDAY} 17:31", closed) == []
    assert pauses("2026-11-24 08:00", closed) == [RotaUnpause(s, "closed") for s in MEMBERS]
    # A lunch pause left over from a missed 13:30 only changes its reason at closing.
    stale = live_desk(seat1={"paused": True, "pause_reason": "lunch"})
    assert RotaPause(S1, "closed") in pauses(f"{MONDAY} 18:00", stale)


def test_seats_the_tracker_does_not_know_yet_are_skipped() -> None:
    live = live_desk()
    del live[S1]
    assert pauses(f"{MONDAY} 12:40", live) == [RotaPause(S3, "lunch")]


def test_day_override_changes_who_is_paused() -> None:
    from ctid.rotation.lunch import RotationOverrides

    rota = replace(ROTA, overrides=RotationOverrides(days={at(MONDAY).date(): "A"}))
    assert pauses(f"{MONDAY} 12:40", live_desk(), rota) == [
        RotaPause(S2, "lunch"),
        RotaPause(S4, "lunch"),
    ]


# --------------------------------------------------------------------------- pure: members


def members(
    rota: Rota, live: Mapping[SeatId, SeatLive], when: str = f"{MONDAY} 09:00", **kw: Any
) -> list[object]:
    desired = desired_pauses(rota.state(at(when)), rota.duty_seats, live)
    return list(plan_memberships(rota.seats, CFG.queues, desired, live, **kw))


def with_seat(rota: Rota, seat_id: str, **changes: Any) -> Rota:
    return replace(
        rota, seats=tuple(replace(s, **changes) if s.id == seat_id else s for s in rota.seats)
    )


def test_memberships_matching_config_need_nothing() -> None:
    assert members(ROTA, live_desk()) == []


def test_tier_change_moves_the_seat_between_queues_with_config_penalties() -> None:
    rota = with_seat(ROTA, "seat1", tier="expert")
    assert members(rota, live_desk()) == [
        RemoveMember(S1, "ordinary", "PJSIP/seat1"),
        RemoveMember(S1, "shared", "PJSIP/seat1"),
        AddMember(S1, "expert", "PJSIP/seat1", "Seat 1", 0, state_interface="PJSIP/seat1"),
        AddMember(S1, "shared", "PJSIP/seat1", "Seat 1", 1, state_interface="PJSIP/seat1"),
    ]


def test_new_member_joins_paused_when_the_seat_is_off_duty_now() -> None:
    live = live_desk()
    live[S3] = LiveSeat(memberships={"shared": 1})
    assert members(ROTA, live, f"{MONDAY} 12:40") == [
        AddMember(
            S3,
            "expert",
            "PJSIP/seat3",
            "Seat 3",
            0,
            paused=True,
            reason="lunch",
            state_interface="PJSIP/seat3",
        )
    ]


def test_inactive_seat_leaves_managed_queues_only() -> None:
    rota = with_seat(ROTA, "seat2", active=False)
    live = live_desk()
    live[S2] = LiveSeat(memberships={"ordinary": 0, "shared": 0, "vip": 5})
    assert members(rota, live) == [
        RemoveMember(S2, "ordinary", "PJSIP/seat2"),
        RemoveMember(S2, "shared", "PJSIP/seat2"),
    ]
    # ...and is no longer paused or unpaused by the plan.
    assert S2 not in desired_pauses(rota.state(at(f"{MONDAY} 12:40")), rota.duty_seats, live)


def test_interface_change_removes_the_old_interface() -> None:
    rota = with_seat(ROTA, "seat4", interface="PJSIP/seat4b")
    live = live_desk()
    live[S4] = LiveSeat()  # the tracker knows the new interface: not a member yet
    assert members(rota, live, previous=ROTA.seats) == [
        RemoveMember(S4, "expert", "PJSIP/seat4"),
        RemoveMember(S4, "shared", "PJSIP/seat4"),
        AddMember(S4, "expert", "PJSIP/seat4b", "Seat 4", 0, state_interface="PJSIP/seat4b"),
        AddMember(S4, "shared", "PJSIP/seat4b", "Seat 4", 1, state_interface="PJSIP/seat4b"),
    ]


def test_wrong_penalty_is_fixed_by_re_adding() -> None:
    live = live_desk()
    live[S3] = LiveSeat(memberships={"expert": 0, "shared": 0})
    assert members(ROTA, live) == [
        RemoveMember(S3, "shared", "PJSIP/seat3"),
        AddMember(S3, "shared", "PJSIP/seat3", "Seat 3", 1, state_interface="PJSIP/seat3"),
    ]


# --------------------------------------------------------------------------- the service


@dataclass
class FakeDesk:
    """A recording PBX and the tracker's view of it in one: actions are recorded and, with
    `reflect`, show up in the live state at once (else only when the test calls `deliver`)."""

    rota: Rota
    live_state: dict[SeatId, LiveSeat] = field(default_factory=dict)
    reflect: bool = True
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    pending: list[tuple[SeatId, dict[str, Any]]] = field(default_factory=list)
    fail: int = 0
    revision_no: int = 1
    static: set[str] = field(default_factory=set)
    """Interfaces the PBX holds as static members: QueueRemove is refused."""
    state_interfaces: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.live_state:
            self.live_state = {sid: LiveSeat(memberships=dict(m)) for sid, m in MEMBERS.items()}

    # LiveSeats
    def live(self, seat_id: SeatId) -> SeatLive | None:
        return self.live_state.get(seat_id)

    def _seat(self, interface: str) -> SeatId:
        return next(s.id for s in self.rota.seats if s.interface == interface)

    def _change(self, sid: SeatId, **changes: Any) -> None:
        if self.reflect:
            self.live_state[sid] = replace(self.live_state[sid], **changes)
        else:
            self.pending.append((sid, changes))

    def deliver(self) -> list[SeatId]:
        done = [sid for sid, _ in self.pending]
        for sid, changes in self.pending:
            self.live_state[sid] = replace(self.live_state[sid], **changes)
        self.pending.clear()
        return done

    def _maybe_fail(self) -> None:
        if self.fail:
            self.fail -= 1
            raise AmiDisconnectedError("link down")

    # QueueControl
    async def queue_pause(
        self, interface: str, paused: bool, reason: str = "", queue: str | None = None
    ) -> None:
        self._maybe_fail()
        self.calls.append(("pause", interface, paused, reason, queue))
        self._change(self._seat(interface), paused=paused, pause_reason=reason if paused else "")

    async def queue_add(
        self,
        queue: str,
        interface: str,
        member_name: str,
        penalty: int = 0,
        paused: bool = False,
        state_interface: str = "",
    ) -> None:
        self._maybe_fail()
        self.calls.append(("add", queue, interface, member_name, penalty, paused))
        self.state_interfaces.append(state_interface)
        sid = self._seat(interface)
        now = self.live_state[sid]
        self._change(
            sid, memberships={**now.memberships, queue: penalty}, paused=paused or now.paused
        )

    async def queue_remove(self, queue: str, interface: str) -> None:
        self._maybe_fail()
        self.calls.append(("remove", queue, interface))
        if interface in self.static:
            # what Asterisk answers for a member queues.conf declares (pjsip_static_member_ops)
            raise AmiActionError("QueueRemove", "Member not dynamic")
        sid = next((s.id for s in self.rota.seats if s.interface == interface), None)
        if sid is not None:
            now = self.live_state[sid]
            self._change(sid, memberships={q: p for q, p in now.memberships.items() if q != queue})

    def take(self) -> list[tuple[Any, ...]]:
        out, self.calls = self.calls, []
        return out


class _Source:
    def __init__(self, desk: FakeDesk) -> None:
        self.desk = desk

    async def rota(self) -> Rota:
        return self.desk.rota

    async def revision(self) -> int:
        return self.desk.revision_no


async def enforcer_at(
    when: str, desk: FakeDesk | None = None
) -> tuple[RotaEnforcer, FakeDesk, FakeClock]:
    desk = desk or FakeDesk(ROTA)
    clock = FakeClock(at(when), SHANGHAI)
    enforcer = RotaEnforcer(
        source=_Source(desk), pbx=desk, live=desk, clock=clock, queues=CFG.queues
    )
    await enforcer.load()
    return enforcer, desk, clock


def lunch_pause(n: int) -> tuple[Any, ...]:
    return ("pause", f"PJSIP/seat{n}", True, "lunch", None)


def unpause(n: int) -> tuple[Any, ...]:
    return ("pause", f"PJSIP/seat{n}", False, "", None)


async def test_apply_now_at_12_40_then_again_sends_nothing_the_second_time() -> None:
    enforcer, desk, _ = await enforcer_at(f"{MONDAY} 12:40")
    await enforcer.apply_now()
    assert desk.take() == [lunch_pause(1), lunch_pause(3)]
    assert await enforcer.apply_now() == []
    assert desk.take() == []


async def test_restarted_daemon_during_lunch_pauses_nobody_twice() -> None:
    desk = FakeDesk(ROTA)
    first, _, _ = await enforcer_at(f"{MONDAY} 12:05", desk)
    await first.apply_now()
    assert desk.take() == [lunch_pause(1), lunch_pause(3)]
    second, _, _ = await enforcer_at(f"{MONDAY} 12:50", desk)  # a new process, same PBX
    await second.apply_now()
    assert desk.take() == []


async def test_transition_before_the_tracker_catches_up_is_not_sent_twice() -> None:
    desk = FakeDesk(ROTA, reflect=False)
    enforcer, _, _ = await enforcer_at(f"{MONDAY} 12:00", desk)
    await enforcer.on_transition(at(f"{MONDAY} 12:00"))
    assert desk.take() == [lunch_pause(1), lunch_pause(3)]
    # Another trigger before the PBX's QueueMemberPause events reach the tracker.
    await enforcer.seat_call_ended("seat2")
    assert desk.take() == []
    for sid in desk.deliver():
        await enforcer.seat_pause_changed(sid)
    assert desk.take() == []


async def test_transition_timer_firing_early_still_applies_the_new_mode() -> None:
    enforcer, desk, _ = await enforcer_at(f"{MONDAY} 11:59:59.990")
    await enforcer.on_transition(at(f"{MONDAY} 12:00"))
    assert desk.take() == [lunch_pause(1), lunch_pause(3)]


async def test_seat_on_a_call_at_12_00_is_paused_when_the_call_ends() -> None:
    desk = FakeDesk(ROTA)
    desk.live_state[S1] = replace(desk.live_state[S1], on_call=True)
    enforcer, _, clock = await enforcer_at(f"{MONDAY} 12:00", desk)
    with capture_logs() as logs:
        await enforcer.on_transition(at(f"{MONDAY} 12:00"))
    assert desk.take() == [lunch_pause(3)]
    assert enforcer.deferred == {S1: "lunch"}
    assert [e["seat"] for e in logs if e["event"] == "rota_pause_deferred"] == [S1]
    clock.set(at(f"{MONDAY} 12:14"))
    await enforcer.seat_call_ended("seat3")  # someone else's call: still deferred
    assert desk.take() == []
    desk.live_state[S1] = replace(desk.live_state[S1], on_call=False)
    await enforcer.seat_call_ended("seat1")
    assert desk.take() == [lunch_pause(1)]
    assert enforcer.deferred == {}


async def test_call_lasting_past_lunch_is_never_paused() -> None:
    desk = FakeDesk(ROTA)
    desk.live_state[S1] = replace(desk.live_state[S1], on_call=True)
    enforcer, _, clock = await enforcer_at(f"{MONDAY} 12:00", desk)
    await enforcer.on_transition()
    desk.take()
    clock.set(at(f"{MONDAY} 13:30"))
    await enforcer.on_transition()
    assert desk.take() == [unpause(3)]
    desk.live_state[S1] = replace(desk.live_state[S1], on_call=False)
    await enforcer.seat_call_ended("seat1")
    assert desk.take() == []


async def test_13_30_unpauses_only_seats_ctid_paused_for_lunch() -> None:
    desk = FakeDesk(ROTA)
    enforcer, _, clock = await enforcer_at(f"{MONDAY} 12:00", desk)
    await enforcer.on_transition()
    desk.take()
    desk.live_state[S2] = replace(desk.live_state[S2], paused=True, pause_reason="rna")
    await enforcer.seat_pause_changed("seat2")
    desk.live_state[S4] = replace(desk.live_state[S4], paused=True, pause_reason="toilet")
    await enforcer.seat_pause_changed("seat4")
    assert desk.take() == []
    clock.set(at(f"{MONDAY} 13:30"))
    await enforcer.on_transition()
    assert desk.take() == [unpause(1), unpause(3)]
    assert desk.live_state[S2].pause_reason == "rna"
    assert desk.live_state[S4].pause_reason == "toilet"


async def test_agent_unpausing_during_their_lunch_is_paused_again() -> None:
    enforcer, desk, _ = await enforcer_at(f"{MONDAY} 12:10")
    await enforcer.apply_now()
    desk.take()
    desk.live_state[S3] = replace(desk.live_state[S3], paused=False, pause_reason="")
    await enforcer.seat_pause_changed("seat3")
    assert desk.take() == [lunch_pause(3)]


async def test_failed_action_is_logged_and_retried_by_the_next_apply() -> None:
    desk = FakeDesk(ROTA, fail=1)
    enforcer, _, _ = await enforcer_at(f"{MONDAY} 12:40", desk)
    with capture_logs() as logs:
        sent = await enforcer.apply_now()
    assert sent == [RotaPause(S3, "lunch")]
    failed = [e for e in logs if e["event"] == "rota_failed_seat_paused"]
    assert [(e["seat"], e["log_level"]) for e in failed] == [(S1, "warning")]
    await enforcer.apply_now()  # after AMI re-login
    assert desk.take() == [lunch_pause(3), lunch_pause(1)]


async def test_roster_change_moves_queue_members_and_notifies_listeners() -> None:
    desk = FakeDesk(ROTA)
    enforcer, _, _ = await enforcer_at(f"{MONDAY} 12:40", desk)
    await enforcer.apply_now()
    desk.take()
    reloads: list[Rota] = []
    enforcer.add_reload_listener(lambda: reloads.append(enforcer.current.rota))
    desk.rota = with_seat(ROTA, "seat4", tier="ordinary")
    desk.revision_no += 1
    await enforcer.poll_roster()
    # seat4 (on lunch duty) leaves expert/shared@1 and joins ordinary/shared@0, unpaused.
    assert desk.take() == [
        ("remove", "expert", "PJSIP/seat4"),
        ("remove", "shared", "PJSIP/seat4"),
        ("add", "ordinary", "PJSIP/seat4", "Seat 4", 0, False),
        ("add", "shared", "PJSIP/seat4", "Seat 4", 0, False),
    ]
    assert reloads == [desk.rota]
    assert await enforcer.poll_roster() == []  # same revision: nothing
    assert desk.take() == []


async def test_seat_joining_at_lunch_is_added_paused_with_the_reason() -> None:
    rota = with_seat(ROTA, "seat3", active=False)
    desk = FakeDesk(rota)
    desk.live_state[S3] = LiveSeat()
    enforcer, _, _ = await enforcer_at(f"{MONDAY} 12:40", desk)
    await enforcer.apply_now()
    assert desk.take() == [lunch_pause(1)]
    desk.rota = ROTA
    await enforcer.roster_changed()
    assert desk.take() == [
        ("add", "expert", "PJSIP/seat3", "Seat 3", 0, True),
        ("pause", "PJSIP/seat3", True, "lunch", "expert"),
        ("add", "shared", "PJSIP/seat3", "Seat 3", 1, True),
        ("pause", "PJSIP/seat3", True, "lunch", "shared"),
    ]
    assert await enforcer.apply_now() == []


async def test_poll_catches_up_a_missed_transition() -> None:
    enforcer, desk, clock = await enforcer_at(f"{MONDAY} 11:00")
    await enforcer.apply_now()
    assert desk.take() == []
    clock.set(at(f"{MONDAY} 12:03"))  # the 12:00 job never ran
    with capture_logs() as logs:
        await enforcer.poll_roster()
    assert desk.take() == [lunch_pause(1), lunch_pause(3)]
    assert "rota_transition_caught_up" in [e["event"] for e in logs]
    await enforcer.poll_roster()
    assert desk.take() == []


def test_live_seat_default_memberships_are_not_shared() -> None:
    a, b = LiveSeat(), LiveSeat()
    assert a.memberships == {} and a.memberships is not b.memberships


async def test_members_are_added_with_their_state_interface() -> None:
    rota = with_seat(ROTA, "seat3", active=False)
    desk = FakeDesk(rota)
    desk.live_state[S3] = LiveSeat()
    enforcer, _, _ = await enforcer_at(f"{MONDAY} 10:00", desk)
    await enforcer.apply_now()
    desk.take()
    desk.rota = ROTA
    desk.revision_no += 1
    await enforcer.poll_roster()
    assert [c[:3] for c in desk.take()] == [
        ("add", "expert", "PJSIP/seat3"),
        ("add", "shared", "PJSIP/seat3"),
    ]
    assert desk.state_interfaces[-2:] == ["PJSIP/seat3", "PJSIP/seat3"]
    assert state_interface("Local/seat1@phones/n") == "Local/seat1@phones"


async def test_a_refused_deactivation_is_an_error_and_kept_for_ops_until_resolved() -> None:
    desk = FakeDesk(ROTA, static={"PJSIP/seat2"})
    enforcer, _, clock = await enforcer_at(f"{MONDAY} 10:00", desk)
    await enforcer.apply_now()
    desk.take()
    assert enforcer.refused() == ()
    desk.rota = with_seat(ROTA, "seat2", active=False)
    desk.revision_no += 1
    with capture_logs() as logs:
        await enforcer.poll_roster()
    assert desk.take() == [
        ("remove", "ordinary", "PJSIP/seat2"),
        ("remove", "shared", "PJSIP/seat2"),
    ]
    refused = [e for e in logs if e["event"] == "rota_change_refused"]
    assert [(e["log_level"], e["queue"], e["ami_action"], e["message"]) for e in refused] == [
        ("error", "ordinary", "QueueRemove", "Member not dynamic"),
        ("error", "shared", "QueueRemove", "Member not dynamic"),
    ]
    first = enforcer.refused()
    assert [(r.seat_id, r.kind, r.queue, r.message, r.attempts) for r in first] == [
        (S2, "remove", "ordinary", "Member not dynamic", 1),
        (S2, "remove", "shared", "Member not dynamic", 1),
    ]
    assert first[0].interface == "PJSIP/seat2"
    # the next login retries and counts; the first refusal time stays
    clock.advance(60)
    await enforcer.apply_now()
    again = enforcer.refused()
    assert [r.attempts for r in again] == [2, 2]
    assert again[0].first_at == first[0].first_at < again[0].last_at
    # ops delete the static members and reload the queues: nothing left to refuse
    desk.live_state[S2] = LiveSeat()
    await enforcer.apply_now()
    assert enforcer.refused() == ()
