"""Supervisor spying: exactness of the target (pure), and `SpyService` driven by the recorded
chanspy.jsonl session (the older shape: ChanSpy on the originated channel itself; the Local
`;2` shape of contrib's [ctid-spy] is tested end to end in tests/e2e/test_spy_e2e.py) through the
real tracker, with a recording PBX fake (it plays the recorded
ChanSpyStop/Hangup when asked to end a leg, or nothing, like ChanSpy on a silent PJSIP call) and an
in-memory store. The option letters are tested in tests/asterisk/test_listen_in.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, get_args

import pytest

from ctid.asterisk.actions import chanspy_data
from ctid.calls.service import Resync
from ctid.calls.spy import SpyService
from ctid.calls.spy_targets import TalkingSeats, TargetItems
from ctid.calls.spy_types import (
    BadSpyModeError,
    NotSupervisorError,
    SeatNotOnCallError,
    SpyAudit,
    SpyLegNotEndedError,
    SpyMode,
    SpyRequestFailedError,
    SpyRow,
    SpySessionEndedError,
    UnknownSpySessionError,
    UnsafeSpyTargetError,
    check_exact_target,
    is_exact_channel_name,
    spy_caller_id,
)
from ctid.calls.tracker import CallTracker
from ctid.config import Config, parse_config
from ctid.core.errors import AmiActionError, AmiDisconnectedError, StoreError
from ctid.core.events import (
    ChannelHungUp,
    ChannelSnapshot,
    Event,
    OriginateResponded,
    SpyStarted,
    SpyStopped,
)
from ctid.core.frames import SpyAlertFrame
from ctid.core.ids import Channel, UniqueId
from tests.calls._replay import LAB_SEATS, events

SEAT3_LEG = "Local/seat3@phones-0000000e;1"
SPYER = "Local/spy1@supervisor-0000000f;1"
START_AT = datetime.fromtimestamp(1795358789.473271, UTC)  # ChanSpyStart's Timestamp
STOP_AT = datetime.fromtimestamp(1795358809.873512, UTC)  # ChanSpyStop's Timestamp
NOW = 1795358789.36  # the events' clock when the supervisor clicks (after the answer)


# --------------------------------------------------------------------------- pure


@pytest.mark.parametrize(
    "target",
    [
        "PJSIP/seat1",  # an interface: a prefix of every seat1x channel
        "PJSIP/seat1-",
        "PJSIP/seat1-0000000",  # seven digits: a prefix of sixteen channels
        "PJSIP/seat1-0000000a,uqEB",
        "PJSIP/seat1-0000000a\r\nAction: Hangup",
        "PJSIP/seat(1)-0000000a",
        "Local/seat1@phones-0000000e;3",
        "",
    ],
)
def test_anything_but_a_full_channel_name_is_refused(target: str) -> None:
    assert not is_exact_channel_name(target)
    with pytest.raises(UnsafeSpyTargetError):
        check_exact_target(target)


def test_a_full_channel_name_is_never_a_prefix_of_another_channel() -> None:
    # Why the name alone is already exact (the `u` option aside): the counter is fixed-width hex.
    counters = [0, 1, 9, 10, 15, 16, 255, 256, 0xABCDEF, 0xFFFFFFFF]
    names = [f"PJSIP/{dev}-{n:08x}" for dev in ("seat1", "seat10", "seat100") for n in counters]
    names += [
        f"Local/seat{d}@phones-{n:08x};{h}" for d in (1, 10) for n in counters for h in (1, 2)
    ]
    assert all(is_exact_channel_name(n) for n in names)
    for a in names:
        for b in names:
            if a != b:
                assert not b.startswith(a), (a, b)


def test_caller_id_names_the_mode_and_seat_and_cannot_break_the_header() -> None:
    assert spy_caller_id("whisper", "Seat 3", "seat3") == '"Whisper Seat 3" <seat3>'
    assert spy_caller_id("listen", 'Evil"<x>\r\n', "s") == '"Listen Evilx" <s>'


# --------------------------------------------------------------------------- fakes


class FakePbx:
    """Records what the service asks of the PBX; `fail` makes the next originate raise;
    `on_end` plays the PBX's answer to an end request (None: nothing, a silent ChanSpy)."""

    def __init__(self) -> None:
        self.originates: list[tuple[str, str, str, str]] = []
        self.hangups: list[str] = []
        self.tags: list[str] = []
        self.chanspy_hangups: list[str] = []
        self.fail: Exception | None = None
        self.hangup_fail: Exception | None = None
        self.action_ids = iter(["lab-13", "lab-14", "lab-15", "lab-16"])
        self.during: Callable[[str], Any] | None = None
        self.on_end: Callable[[str], Awaitable[None]] | None = None

    async def start_listen_in(
        self, phone: str, channel: str, mode: SpyMode, caller_id: str, tag: str
    ) -> str:
        self.originates.append((phone, "ChanSpy", chanspy_data(channel, mode), caller_id))
        self.tags.append(tag)
        if self.fail is not None:
            raise self.fail
        action_id = next(self.action_ids)
        if self.during is not None:
            await self.during(action_id)
        return action_id

    async def end_listen_in(self, spy_channel: str) -> None:
        self.hangups.append(spy_channel)
        if self.hangup_fail is not None:
            raise self.hangup_fail
        if self.on_end is not None:
            await self.on_end(spy_channel)

    async def end_chanspy(self, chanspy_channel: str) -> None:
        self.chanspy_hangups.append(chanspy_channel)


class MemoryStore:
    """The `SpyStore` port in memory; `broken` makes every write fail like a database that is down."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        self.audit_log: list[SpyAudit] = []
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise StoreError("database is down")

    async def add(self, row: SpyRow, audit: SpyAudit) -> int:
        self._check()
        sid = len(self.rows) + 1
        self.rows[sid] = {
            **dataclasses.asdict(row),
            "action_id": None,
            "spy_channel": None,
            "started_at": None,
            "stopped_at": None,
        }
        self.audit_log.append(dataclasses.replace(audit, detail={**audit.detail, "session": sid}))
        return sid

    async def set_action(self, session_id: int, action_id: str) -> None:
        self._check()
        self.rows[session_id]["action_id"] = action_id

    async def set_spy_channel(self, session_id: int, spy_channel: str) -> None:
        self._check()
        self.rows[session_id]["spy_channel"] = spy_channel

    async def set_started(
        self, session_id: int, at: datetime, spy_channel: str, audit: SpyAudit
    ) -> None:
        self._check()
        self.rows[session_id].update(started_at=at, stopped_at=None, spy_channel=spy_channel)
        self.audit_log.append(audit)

    async def set_stopped(self, session_id: int, at: datetime, audit: SpyAudit) -> None:
        self._check()
        self.rows[session_id]["stopped_at"] = at
        self.audit_log.append(audit)

    async def audit(self, entry: SpyAudit) -> None:
        self._check()
        self.audit_log.append(entry)

    def actions(self) -> list[str]:
        return [a.action for a in self.audit_log]


def lab_config() -> Config:
    return parse_config(
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
            "supervisors": [
                {"employee_id": "S100", "name": "Wang", "phone": "Local/spy1@supervisor"},
                {"employee_id": "S200", "name": "Li", "phone": "PJSIP/sup2"},
            ],
            "lunch": {"enabled": False},
        }
    )


class Rig:
    """The recorded chanspy.jsonl call answered on seat3, a tracker that has seen it, and the
    service under test; `feed` plays the rest of the recording through tracker and service."""

    def __init__(self) -> None:
        self.events = events("chanspy")
        self.split = next(
            i for i, e in enumerate(self.events) if getattr(e, "channel", "") == SPYER
        )
        self.tracker = CallTracker(LAB_SEATS)
        self.targets = TalkingSeats()
        self.pbx = FakePbx()
        self.store = MemoryStore()
        self.clock = NOW
        self.alerts: list[dict[str, Any]] = []
        self.spy = SpyService(
            lab_config(),
            self.pbx,
            self.targets,
            self.store,
            now=lambda: self.clock,
            alerts=self,
            end_bound_s=0.05,
        )
        self.pbx.on_end = self.pbx_ends_leg

    def publish_supervisor(self, frame: SpyAlertFrame) -> int:
        self.alerts.append(frame.to_wire())
        return 1

    async def pbx_ends_leg(self, channel: str) -> None:
        """The recorded end of the spy leg: its ChanSpyStop and its Hangup."""
        for ev in self.events[self.split :]:
            if isinstance(ev, SpyStopped) or (
                isinstance(ev, ChannelHungUp) and ev.channel == channel
            ):
                await self.apply(ev)

    async def answered(self) -> None:
        for ev in self.events[: self.split]:
            await self.apply(ev)

    async def apply(self, ev: Event | Resync) -> None:
        if not isinstance(ev, Resync):
            for notice in self.tracker.apply(ev):  # the story, as the bus tells it
                if isinstance(notice, get_args(TargetItems)):
                    self.targets.on_item(notice)
        pending = self.spy.on_event(ev)
        if pending is not None:  # None: a hangup no session knows, done with at once
            await pending

    async def feed(self, keep: Callable[[Event], bool] = lambda e: True) -> None:
        for ev in self.events[self.split :]:
            if keep(ev):
                await self.apply(ev)

    def recorded(self, kind: type) -> Any:
        return next(e for e in self.events if isinstance(e, kind))


@pytest.fixture
async def rig() -> Rig:
    r = Rig()
    await r.answered()
    return r


# --------------------------------------------------------------------------- the service


async def test_listen_session_follows_chanspy_start_and_stop_from_the_recording(rig: Rig) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    assert rig.pbx.originates == [
        ("Local/spy1@supervisor", "ChanSpy", f"{SEAT3_LEG},uqE", '"Listen Seat 3" <seat3>')
    ]
    assert session.state == "requested"
    assert session.target_channel == SEAT3_LEG
    assert session.call_id == "1795358785.26"
    row = rig.store.rows[session.session_id]
    assert row["supervisor"] == "S100"
    assert row["seat_id"] == "seat3"
    assert row["call_id"] == "1795358785.26"
    assert row["mode"] == "listen"
    assert row["action_id"] == "lab-13"
    assert row["requested_at"] == datetime.fromtimestamp(NOW, UTC)

    await rig.feed(lambda e: not isinstance(e, SpyStopped) and e.at < STOP_AT.timestamp() - 1)
    live = rig.spy.session(session.session_id)
    assert live is not None
    assert live.state == "active"
    assert live.spy_channel == SPYER
    assert rig.store.rows[session.session_id]["started_at"] == START_AT
    assert rig.spy.sessions() == (live,)

    await rig.feed(lambda e: e.at >= STOP_AT.timestamp() - 1)
    done = rig.spy.session(session.session_id)
    assert done is not None
    assert done.state == "stopped"
    assert done.reason == "pbx"
    assert rig.store.rows[session.session_id]["stopped_at"] == STOP_AT
    assert rig.store.actions() == ["spy_requested", "spy_started", "spy_stopped"]
    started, stopped = rig.store.audit_log[1:]
    assert (started.actor, started.target, started.at) == ("S100", "seat3", START_AT)
    assert started.detail["call_id"] == "1795358785.26"
    assert started.detail["mode"] == "listen"
    assert started.detail["spyee"] == SEAT3_LEG
    assert started.detail["wrong_target"] is False
    assert (stopped.at, stopped.detail["by"]) == (STOP_AT, "pbx")
    assert rig.spy.sessions() == ()
    assert rig.pbx.hangups == []


async def test_agents_and_strangers_are_refused_and_nothing_is_sent_or_stored(rig: Rig) -> None:
    for who in ("E1001", "", "s100"):
        with pytest.raises(NotSupervisorError):
            await rig.spy.start(who, "seat3", "listen")
    assert rig.pbx.originates == []
    assert rig.store.rows == {}


async def test_a_seat_that_is_not_talking_cannot_be_spied_on(rig: Rig) -> None:
    for seat in ("seat1", "seat9"):
        with pytest.raises(SeatNotOnCallError):
            await rig.spy.start("S100", seat, "listen")
    with pytest.raises(BadSpyModeError):
        await rig.spy.start("S100", "seat3", "shout")
    fresh = Rig()  # seat3 before the call
    with pytest.raises(SeatNotOnCallError):
        await fresh.spy.start("S100", "seat3", "listen")
    assert rig.pbx.originates == [] and fresh.pbx.originates == []
    assert rig.store.rows == {} and fresh.store.rows == {}


async def test_no_originate_without_an_audit_row(rig: Rig) -> None:
    rig.store.broken = True
    with pytest.raises(StoreError):
        await rig.spy.start("S100", "seat3", "listen")
    assert rig.pbx.originates == []


async def test_a_request_lost_with_the_link_fails_and_is_never_sent_again(rig: Rig) -> None:
    rig.pbx.fail = AmiDisconnectedError("Originate: AMI link lost")
    with pytest.raises(SpyRequestFailedError) as info:
        await rig.spy.start("S100", "seat3", "listen")
    failed = info.value.session
    assert failed.state == "failed"
    assert "AmiDisconnectedError" in failed.reason
    row = rig.store.rows[failed.session_id]
    assert row["started_at"] is None
    assert row["stopped_at"] == datetime.fromtimestamp(NOW, UTC)
    assert rig.store.actions() == ["spy_requested", "spy_failed"]
    # the link comes back: a resync and more events, and still only the one Originate
    rig.pbx.fail = None
    await rig.apply(Resync((), ()))
    await rig.feed(lambda e: not isinstance(e, SpyStarted | SpyStopped))
    assert len(rig.pbx.originates) == 1
    assert rig.spy.session(failed.session_id).state == "failed"  # type: ignore[union-attr]


async def test_if_the_lost_request_ran_after_all_its_spy_is_hung_up_and_audited(rig: Rig) -> None:
    rig.pbx.fail = AmiDisconnectedError("Originate: AMI link lost")
    with pytest.raises(SpyRequestFailedError):
        await rig.spy.start("S100", "seat3", "listen")
    # The PBX did run it: ChanSpy attaches (its OriginateResponse went down with the link).
    await rig.feed(lambda e: not isinstance(e, OriginateResponded))
    assert rig.pbx.hangups == [SPYER]
    assert rig.store.actions() == ["spy_requested", "spy_failed", "spy_started", "spy_stopped"]
    assert rig.store.audit_log[2].detail["late"] is True
    row = rig.store.rows[1]
    assert (row["started_at"], row["stopped_at"]) == (START_AT, STOP_AT)
    assert len(rig.pbx.originates) == 1


async def test_a_spy_attached_to_any_other_channel_is_hung_up_at_once(rig: Rig) -> None:
    rig.pbx.on_end = None  # the recorded ChanSpyStop is applied below
    session = await rig.spy.start("S100", "seat3", "listen")
    wrong = dataclasses.replace(
        rig.recorded(SpyStarted),
        spyee_channel=Channel("Local/seat30@phones-00000010;1"),
        spyee_uniqueid=UniqueId("1795358787.99"),
    )
    await rig.apply(wrong)
    assert rig.pbx.hangups == [SPYER]
    started = rig.store.audit_log[-1]
    assert started.action == "spy_started"
    assert started.detail["wrong_target"] is True
    assert started.detail["spyee"] == "Local/seat30@phones-00000010;1"
    await rig.feed(lambda e: isinstance(e, SpyStopped))
    assert rig.spy.session(session.session_id).reason == "wrong_target"  # type: ignore[union-attr]


async def test_switching_mode_hangs_up_and_originates_with_the_new_options(rig: Rig) -> None:
    first = await rig.spy.start("S100", "seat3", "listen")
    await rig.feed(lambda e: e.at < STOP_AT.timestamp() - 1)
    second = await rig.spy.switch(first.session_id, "whisper")
    assert rig.pbx.hangups == [SPYER]
    assert [o[2] for o in rig.pbx.originates] == [f"{SEAT3_LEG},uqE", f"{SEAT3_LEG},uqEw"]
    assert rig.pbx.originates[1][3] == '"Whisper Seat 3" <seat3>'
    assert second.session_id != first.session_id
    assert (second.mode, second.state, second.target_channel) == ("whisper", "requested", SEAT3_LEG)
    # the old session ends on its ChanSpyStop, as stopped by the supervisor for a switch
    await rig.apply(rig.recorded(SpyStopped))
    old = rig.spy.session(first.session_id)
    assert old is not None
    assert (old.state, old.reason) == ("stopped", "switch")
    assert rig.store.rows[second.session_id]["mode"] == "whisper"
    requested = [a for a in rig.store.audit_log if a.action == "spy_requested"]
    assert requested[1].detail["switched_from"] == first.session_id
    stopped = next(a for a in rig.store.audit_log if a.action == "spy_stopped")
    assert (stopped.detail["by"], stopped.detail["reason"]) == ("S100", "switch")
    with pytest.raises(SpySessionEndedError):
        await rig.spy.switch(first.session_id, "barge")
    assert await rig.spy.switch(second.session_id, "whisper") == rig.spy.session(second.session_id)


async def test_stop_hangs_up_the_spy_channel_and_is_idempotent(rig: Rig) -> None:
    session = await rig.spy.start("S100", "seat3", "barge")
    assert rig.pbx.originates[0][2] == f"{SEAT3_LEG},uqEB"
    await rig.feed(lambda e: e.at < STOP_AT.timestamp() - 1)
    await rig.spy.stop(session.session_id, actor="S200")
    assert rig.pbx.hangups == [SPYER]
    await rig.apply(rig.recorded(SpyStopped))
    done = await rig.spy.stop(session.session_id)
    assert (done.state, done.reason) == ("stopped", "stop")
    assert rig.pbx.hangups == [SPYER]
    stopped = rig.store.audit_log[-1]
    assert (stopped.action, stopped.actor, stopped.detail["by"]) == ("spy_stopped", "S100", "S200")
    with pytest.raises(NotSupervisorError):
        await rig.spy.stop(session.session_id, actor="E1001")


async def test_a_failed_hangup_leaves_the_session_stoppable(rig: Rig) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    await rig.feed(lambda e: e.at < STOP_AT.timestamp() - 1)
    rig.pbx.hangup_fail = AmiDisconnectedError("Hangup: AMI is not connected")
    with pytest.raises(SpyRequestFailedError):
        await rig.spy.stop(session.session_id)
    rig.pbx.hangup_fail = None
    done = await rig.spy.stop(session.session_id)
    assert rig.pbx.hangups == [SPYER, SPYER]
    assert done.state == "stopped"


async def test_a_hangup_for_a_channel_already_gone_waits_for_its_hangup_event(rig: Rig) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    await rig.feed(lambda e: e.at < STOP_AT.timestamp() - 1)
    rig.pbx.hangup_fail = AmiActionError("Hangup", "No such channel")
    with pytest.raises(SpyLegNotEndedError):
        await rig.spy.stop(session.session_id)
    await rig.pbx_ends_leg(SPYER)
    assert rig.spy.session(session.session_id).state == "stopped"  # type: ignore[union-attr]


async def test_a_leg_the_pbx_does_not_end_is_reported_and_a_switch_starts_nothing(
    rig: Rig,
) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    await rig.feed(lambda e: e.at < STOP_AT.timestamp() - 1)
    rig.pbx.on_end = None  # ChanSpy on a silent PJSIP call: `Success`, then nothing
    with pytest.raises(SpyLegNotEndedError) as stuck:
        await rig.spy.stop(session.session_id)
    assert stuck.value.session.state == "active"
    assert rig.alerts == [
        {
            "type": "spy_alert",
            "session": session.session_id,
            "supervisor": "S100",
            "seat": "seat3",
            "mode": "listen",
            "message": str(stuck.value),
        }
    ]
    assert rig.store.actions()[-2:] == ["spy_stop_requested", "spy_end_unconfirmed"]
    with pytest.raises(SpyLegNotEndedError):
        await rig.spy.switch(session.session_id, "barge")
    with pytest.raises(SpyLegNotEndedError):
        await rig.spy.start("S100", "seat3", "whisper")
    assert len(rig.pbx.originates) == 1  # the phone never got a second leg
    assert rig.pbx.hangups == [SPYER, SPYER, SPYER]  # each request asked the PBX again
    await rig.pbx_ends_leg(SPYER)  # the spied call ends: so does ChanSpy
    done = rig.spy.session(session.session_id)
    assert done is not None and (done.state, done.reason) == ("stopped", "stop")


async def test_stop_while_the_phone_still_rings_hangs_up_once_the_channel_is_known(
    rig: Rig,
) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    await rig.spy.stop(session.session_id)
    assert rig.pbx.hangups == []
    await rig.feed(lambda e: isinstance(e, OriginateResponded))
    assert rig.pbx.hangups == [SPYER]
    hangup = next(e for e in rig.events if getattr(e, "channel", "") == SPYER and e.at > NOW + 1)
    await rig.apply(hangup)
    done = rig.spy.session(session.session_id)
    assert done is not None
    assert (done.state, done.reason, done.started_at) == ("stopped", "stop", None)


async def test_no_second_leg_while_the_phone_still_rings_for_the_first(rig: Rig) -> None:
    first = await rig.spy.start("S100", "seat3", "listen")
    with pytest.raises(SpyLegNotEndedError, match="still ringing"):
        await rig.spy.start("S100", "seat3", "barge")
    with pytest.raises(SpyLegNotEndedError, match="still ringing"):
        await rig.spy.switch(first.session_id, "whisper")
    assert len(rig.pbx.originates) == 1
    await rig.feed(lambda e: isinstance(e, OriginateResponded))  # the phone answers
    assert rig.pbx.hangups == [SPYER]  # and is hung up at once (superseded)
    await rig.pbx_ends_leg(SPYER)
    second = await rig.spy.start("S100", "seat3", "barge")
    assert len(rig.pbx.originates) == 2 and second.mode == "barge"


async def test_an_unanswered_or_refused_originate_fails_the_session(rig: Rig) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    await rig.apply(
        OriginateResponded(
            at=NOW + 30,
            action_id="lab-13",
            response="Failure",
            channel=Channel("Local/spy1@supervisor"),
            uniqueid=UniqueId("<null>"),
            reason=3,
        )
    )
    failed = rig.spy.session(session.session_id)
    assert failed is not None
    assert (failed.state, failed.reason) == ("failed", "originate failed (reason 3)")
    assert rig.store.actions() == ["spy_requested", "spy_failed"]


async def test_an_originate_response_that_overtakes_the_action_reply_is_not_lost(
    rig: Rig,
) -> None:
    ours = next(e for e in rig.events if isinstance(e, OriginateResponded) and e.channel == SPYER)
    assert ours.action_id == "lab-13"

    async def early(action_id: str) -> None:
        pending = rig.spy.on_event(ours)  # the bus runs it before `originate_application` returns
        assert pending is not None
        await pending

    rig.pbx.during = early
    session = await rig.spy.start("S100", "seat3", "listen")
    assert session.spy_channel == SPYER
    assert rig.store.rows[session.session_id]["spy_channel"] == SPYER


async def test_a_new_request_supersedes_the_supervisors_running_session(rig: Rig) -> None:
    first = await rig.spy.start("S100", "seat3", "listen")
    await rig.feed(lambda e: e.at < STOP_AT.timestamp() - 1)
    second = await rig.spy.start("S100", "seat3", "barge")
    assert rig.pbx.hangups == [SPYER]
    old = rig.spy.session(first.session_id)
    assert old is not None and (old.state, old.reason) == ("stopped", "superseded")
    assert [s.session_id for s in rig.spy.sessions()] == [second.session_id]


async def test_a_spy_channel_gone_during_an_outage_ends_its_session_at_resync(rig: Rig) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    await rig.feed(lambda e: e.at < STOP_AT.timestamp() - 1)
    rig.clock = NOW + 60
    await rig.apply(Resync((), ()))
    done = rig.spy.session(session.session_id)
    assert done is not None
    assert done.state == "stopped"
    assert done.stopped_at == datetime.fromtimestamp(NOW + 60, UTC)
    assert rig.store.audit_log[-1].detail["how"] == "spy channel gone during an AMI outage"


async def test_a_spy_channel_that_hangs_up_before_attaching_fails_the_session(rig: Rig) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    await rig.feed(lambda e: isinstance(e, OriginateResponded))
    hangup = next(e for e in rig.events if getattr(e, "channel", "") == SPYER and e.at > NOW + 1)
    await rig.apply(hangup)
    failed = rig.spy.session(session.session_id)
    assert failed is not None
    assert failed.state == "failed"
    assert failed.reason.startswith("spy channel hung up before ChanSpyStart")


async def test_a_store_outage_after_sending_never_undoes_or_repeats_the_request(rig: Rig) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    rig.store.broken = True
    await rig.feed()
    done = rig.spy.session(session.session_id)
    assert done is not None and done.state == "stopped"
    assert len(rig.pbx.originates) == 1 and rig.pbx.hangups == []


async def test_a_chanspy_start_missed_during_an_outage_is_recorded_at_resync(rig: Rig) -> None:
    session = await rig.spy.start("S100", "seat3", "listen")
    rig.clock = NOW + 5
    spying = ChannelSnapshot(
        at=NOW + 5,
        channel=Channel(SPYER),
        uniqueid=UniqueId("1795358789.30"),
        linkedid=UniqueId("1795358789.30"),
        state=6,
        application="ChanSpy",
        application_data=f"{SEAT3_LEG},uqE",
        duration_s=4.0,
        bridge_id="",
        caller_num="seat3",
        caller_name="Listen Seat 3",
        context="supervisor",
        exten="spy1",
    )
    await rig.apply(Resync((spying,), ()))
    live = rig.spy.session(session.session_id)
    assert live is not None
    assert (live.state, live.spy_channel) == ("active", SPYER)
    assert live.started_at == datetime.fromtimestamp(NOW + 5, UTC)
    started = rig.store.audit_log[-1]
    assert started.action == "spy_started"
    assert started.detail["seen_at_resync"] is True
    assert started.detail["wrong_target"] is False
    # and its ChanSpyStop, after the link is back, ends it as usual
    await rig.apply(rig.recorded(SpyStopped))
    assert rig.spy.session(session.session_id).state == "stopped"  # type: ignore[union-attr]


async def test_unknown_sessions_are_reported(rig: Rig) -> None:
    with pytest.raises(UnknownSpySessionError):
        await rig.spy.stop(42)
    with pytest.raises(UnknownSpySessionError):
        await rig.spy.switch(42, "barge")
    assert rig.spy.session(42) is None


def snapshot(channel: str, application: str, data: str, at: float) -> ChannelSnapshot:
    return ChannelSnapshot(
        at=at,
        channel=Channel(channel),
        uniqueid=UniqueId(f"{at:.2f}"),
        linkedid=UniqueId(f"{at:.2f}"),
        state=6,
        application=application,
        application_data=data,
        duration_s=4.0,
        bridge_id="",
        caller_num="seat3",
        caller_name="Listen Seat 3",
        context="ctid-spy",
        exten="spy1",
    )


async def test_at_resync_the_local_chanspy_half_is_found_and_a_lingering_one_followed(
    rig: Rig,
) -> None:
    """contrib's [ctid-spy] shape: the phone (PJSIP/sup2) Dials `Local/spy<id>@ctid-spy-run/n`
    and ChanSpy runs on its `;2`; both ChanSpyStart and the phone's Hangup fell in outages."""
    session = await rig.spy.start("S200", "seat3", "listen")
    assert rig.pbx.tags == [f"spy{session.session_id}"]
    phone = "PJSIP/sup2-00000020"
    half = f"Local/spy{session.session_id}@ctid-spy-run-00000021;2"
    await rig.apply(
        OriginateResponded(
            at=NOW + 1,
            action_id="lab-13",
            response="Success",
            channel=Channel(phone),
            uniqueid=UniqueId("1795358790.40"),
            reason=4,
        )
    )
    rig.clock = NOW + 5
    dialling = snapshot(phone, "Dial", f"Local/spy{session.session_id}@ctid-spy-run/n", NOW + 5)
    spying = snapshot(half, "ChanSpy", f"{SEAT3_LEG},uqE", NOW + 5)
    await rig.apply(Resync((dialling, spying), ()))
    live = rig.spy.session(session.session_id)
    assert live is not None
    assert (live.state, live.spy_channel, live.chanspy_channel) == ("active", phone, half)
    assert rig.store.audit_log[-1].detail["seen_at_resync"] is True

    # The phone hung up while the link was down; the silent call keeps ChanSpy's half alive.
    await rig.apply(Resync((spying,), ()))
    done = rig.spy.session(session.session_id)
    assert done is not None and done.state == "stopped"
    assert rig.spy.lingering() == (half,)
    assert rig.pbx.chanspy_hangups == [half]  # best effort
    await rig.apply(Resync((), ()))
    assert rig.spy.lingering() == ()
