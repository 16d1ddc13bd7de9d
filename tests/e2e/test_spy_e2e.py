"""Supervisor listen / whisper / barge end to end: ctid's daemon and `SpyService` against the PBX
simulator (whose ChanSpy takes its first argument as a prefix, like Asterisk) on fake loop time,
with seats `PJSIP/seat1` and `PJSIP/seat10` both talking. The supervisor's phone Dials
`Local/spy<id>@ctid-spy-run/n`, whose `;2` runs ChanSpy (contrib's [ctid-spy])."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ctid.asterisk.simulator import SimCall
from ctid.calls.spy import SpyService
from ctid.calls.spy_types import (
    END_BOUND_S,
    SpyLegNotEndedError,
    SpyRequestFailedError,
    SpyState,
)
from ctid.core.events import ChannelCreated, ChannelHungUp
from ctid.core.ids import Channel, SeatId
from ctid.screenpop.hub import Subscription
from tests.e2e.harness import Desk, running_desk

# Fake loop time; the SQLite writes run in aiosqlite's thread (see test_calls_e2e.py).
pytestmark = pytest.mark.looptime(noop_cycles=20_000)

SEATS = [
    {"id": "seat1", "name": "Seat 1", "tier": "ordinary", "interface": "PJSIP/seat1"},
    {"id": "seat10", "name": "Seat 10", "tier": "ordinary", "interface": "PJSIP/seat10"},
    {"id": "seat3", "name": "Seat 3", "tier": "expert", "interface": "PJSIP/seat3"},
    {"id": "seat4", "name": "Seat 4", "tier": "expert", "interface": "PJSIP/seat4"},
]
SUPERVISORS = [{"employee_id": "S100", "name": "Wang Wei", "phone": "PJSIP/sup1"}]
LUNCH = {
    "groups": [
        {"name": "A", "seats": ["seat1", "seat3"]},
        {"name": "B", "seats": ["seat10", "seat4"]},
    ]
}


@asynccontextmanager
async def spy_desk(tmp_path: Path) -> AsyncIterator[tuple[Desk, SpyService]]:
    """The desk and the daemon's own `SpyService` (wired by the composition root)."""
    async with running_desk(tmp_path, seats=SEATS, supervisors=SUPERVISORS, lunch=LUNCH) as desk:
        yield desk, desk.daemon.spy


async def two_live_calls(
    desk: Desk, talk_s: float | None = None, *, audio: bool = True
) -> tuple[SimCall, SimCall]:
    """seat10 answers first (its channel is the older one), then seat1; both keep talking.
    `audio=False`: seat1's phone and its caller send no RTP (pjsip_spy_silent)."""
    sim = desk.sim
    sim.set_phone("seat1", answer_after_s=None, sends_audio=audio)
    sim.set_phone("seat10", answer_after_s=1)
    sim.set_rr_position("ordinary", 1)
    ten = sim.place_call("13800000010", "Caller Ten", digits="1")
    await desk.wait_for(ten.answered.is_set)
    assert ten.seat == "seat10"
    sim.set_phone("seat1", answer_after_s=1, sends_audio=audio)
    one = sim.place_call("13800000001", "Caller One", digits="1", talk_s=talk_s, sends_audio=audio)
    await desk.wait_for(one.answered.is_set)
    assert one.seat == "seat1"
    tracker = desk.daemon.calls.tracker
    await desk.wait_for(lambda: tracker.seat(SeatId("seat1")).activity == "on_call")
    return ten, one


def seat_leg(desk: Desk, seat: str) -> Channel:
    tracker = desk.daemon.calls.tracker
    call_id = tracker.seat(SeatId(seat)).call_id
    assert call_id is not None
    call = tracker.call(call_id)
    assert call is not None and call.seat_channel is not None
    return call.seat_channel


async def reach(desk: Desk, spy: SpyService, session_id: int, state: SpyState) -> None:
    await desk.wait_for(lambda: (s := spy.session(session_id)) is not None and s.state == state)


def spy_hangups(desk: Desk) -> list[str]:
    """The Hangup actions ctid sent for supervisors' spy channels (not its three-ring cuts)."""
    return [h["Channel"] for h in desk.actions("Hangup") if h["Channel"].startswith("PJSIP/sup1-")]


def originates(desk: Desk) -> list[dict[str, str]]:
    """The Originate actions ctid sent (several Variable headers joined by `,`)."""
    return desk.actions("Originate")


def options(desk: Desk) -> list[str]:
    """The ChanSpy options of each listen-in Originate, in order."""
    return [o["Variable"].split("__CTID_SPY_OPTIONS=", 1)[1] for o in originates(desk)]


def audit(desk: Desk, session_id: int) -> list[str]:
    rows = desk.rows(
        "SELECT action FROM audit_log WHERE action LIKE 'spy_%'"
        " AND json_extract(detail, '$.session') = ? ORDER BY id",
        session_id,
    )
    return [r["action"] for r in rows]


async def test_listening_to_seat1_never_attaches_to_seat10(tmp_path: Path) -> None:
    async with spy_desk(tmp_path) as (desk, spy):
        await two_live_calls(desk)
        seat1, seat10 = seat_leg(desk, "seat1"), seat_leg(desk, "seat10")
        assert seat1.startswith("PJSIP/seat1-") and seat10.startswith("PJSIP/seat10-")

        session = await spy.start("S100", "seat1", "listen")
        [originate] = originates(desk)
        assert originate["Channel"] == "PJSIP/sup1"
        assert (originate["Context"], originate["Exten"]) == (
            "ctid-spy",
            f"spy{session.session_id}",
        )
        assert "Application" not in originate
        assert originate["Variable"] == f"__CTID_SPY_CHANNEL={seat1},__CTID_SPY_OPTIONS=uqE"
        await reach(desk, spy, session.session_id, "active")

        # The PBX's ChanSpy (on the Local ;2 the phone dialled) attached to seat1's leg; seat10's
        # call (whose channel name starts with "PJSIP/seat1" too, and is older) has nobody.
        live = spy.session(session.session_id)
        assert live is not None and live.spy_channel is not None
        assert live.spy_channel.startswith("PJSIP/sup1-")
        assert live.chanspy_channel is not None
        assert live.chanspy_channel.startswith(f"Local/spy{session.session_id}@ctid-spy-run-")
        assert live.chanspy_channel.endswith(";2")
        spied = desk.sim.channel(seat1)
        assert spied is not None
        assert [s.spyer.name for s in spied.spied_by] == [live.chanspy_channel]
        other = desk.sim.channel(seat10)
        assert other is not None and other.spied_by == []
        tracker = desk.daemon.calls.tracker
        call = tracker.call(live.call_id)
        assert call is not None and call.spied_by == (live.chanspy_channel,)

        await spy.stop(session.session_id)
        assert spy_hangups(desk) == [live.spy_channel]
        await reach(desk, spy, session.session_id, "stopped")

        [row] = await desk.wait_rows("SELECT * FROM spy_sessions WHERE stopped_at IS NOT NULL")
        assert (row["supervisor"], row["seat_id"], row["mode"]) == ("S100", "seat1", "listen")
        assert row["call_id"] == live.call_id
        assert row["spy_channel"] == live.spy_channel
        assert row["action_id"] == originate["ActionID"]
        assert row["requested_at"] <= row["started_at"] <= row["stopped_at"]
        await desk.wait_for(lambda: len(audit(desk, session.session_id)) == 4)
        assert audit(desk, session.session_id) == [
            "spy_requested",
            "spy_started",
            "spy_stop_requested",
            "spy_stopped",
        ]
        who = desk.rows("SELECT DISTINCT actor, target FROM audit_log WHERE action LIKE 'spy_%'")
        assert [(r["actor"], r["target"]) for r in who] == [("S100", "seat1")]


async def test_switching_listen_whisper_barge_and_stopping(tmp_path: Path) -> None:
    async with spy_desk(tmp_path) as (desk, spy):
        await two_live_calls(desk)
        seat1 = seat_leg(desk, "seat1")
        listen = await spy.start("S100", "seat1", "listen")
        await reach(desk, spy, listen.session_id, "active")
        whisper = await spy.switch(listen.session_id, "whisper")
        await reach(desk, spy, whisper.session_id, "active")
        await reach(desk, spy, listen.session_id, "stopped")
        barge = await spy.switch(whisper.session_id, "barge")
        await reach(desk, spy, barge.session_id, "active")
        await spy.stop(barge.session_id)
        await reach(desk, spy, barge.session_id, "stopped")
        await reach(desk, spy, whisper.session_id, "stopped")

        assert options(desk) == ["uqE", "uqEw", "uqEB"]
        assert {o["Variable"].split(",")[0] for o in originates(desk)} == {
            f"__CTID_SPY_CHANNEL={seat1}"
        }
        sessions = [spy.session(s.session_id) for s in (listen, whisper, barge)]
        assert spy_hangups(desk) == [s.spy_channel for s in sessions if s is not None]
        assert [(s.reason if s else None) for s in sessions] == ["switch", "switch", "stop"]
        rows = await desk.wait_for(
            lambda: (
                (r := desk.rows("SELECT * FROM spy_sessions ORDER BY id"))
                and all(x["stopped_at"] for x in r)
                and r
            )
        )
        assert [r["mode"] for r in rows] == ["listen", "whisper", "barge"]
        assert all(r["started_at"] and r["stopped_at"] for r in rows)
        assert rows[0]["stopped_at"] <= rows[1]["started_at"]
        assert len({r["spy_channel"] for r in rows}) == 3
        await desk.wait_for(lambda: len(audit(desk, barge.session_id)) == 4)
        assert audit(desk, whisper.session_id) == [
            "spy_requested",
            "spy_started",
            "spy_stop_requested",
            "spy_stopped",
        ]


async def test_the_session_ends_by_itself_when_the_call_ends(tmp_path: Path) -> None:
    async with spy_desk(tmp_path) as (desk, spy):
        _, one = await two_live_calls(desk, talk_s=6)
        session = await spy.start("S100", "seat1", "whisper")
        await reach(desk, spy, session.session_id, "active")
        await desk.wait_for(one.ended.is_set)
        await reach(desk, spy, session.session_id, "stopped")
        done = spy.session(session.session_id)
        assert done is not None and done.reason == "pbx"
        assert spy_hangups(desk) == []  # option E: ChanSpy left when seat1's leg went
        await desk.wait_for(lambda: len(audit(desk, session.session_id)) == 3)


async def test_a_request_in_flight_when_the_link_drops_is_failed_and_never_replayed(
    tmp_path: Path,
) -> None:
    async with spy_desk(tmp_path) as (desk, spy):
        await two_live_calls(desk)
        ami = desk.daemon.ami
        before = ami.health().reconnects
        desk.sim.stall_ami(True)  # the PBX stops reading: the Originate stays in flight
        task = asyncio.create_task(spy.start("S100", "seat1", "listen"))
        await desk.wait_for(lambda: spy.sessions() or task.done())
        assert not task.done()
        desk.sim.drop_ami_links()
        desk.sim.stall_ami(False)
        with pytest.raises(SpyRequestFailedError) as info:
            await asyncio.wait_for(task, 60)
        failed = info.value.session
        assert failed.state == "failed" and "AmiDisconnectedError" in failed.reason

        await desk.wait_for(lambda: ami.health().reconnects > before and ami.health().logged_in)
        await ami.wait_logged_in(60)
        assert desk.actions("Originate") == []  # the lost one was not sent again on the new link
        [row] = await desk.wait_rows(
            "SELECT * FROM spy_sessions WHERE id = ? AND stopped_at IS NOT NULL", failed.session_id
        )
        assert row["started_at"] is None
        await desk.wait_for(lambda: len(audit(desk, failed.session_id)) == 2)
        assert audit(desk, failed.session_id) == ["spy_requested", "spy_failed"]

        # The supervisor asks again: exactly one Originate reaches the PBX, the new one.
        again = await spy.start("S100", "seat1", "listen")
        await reach(desk, spy, again.session_id, "active")
        [originate] = desk.actions("Originate")
        assert originate["ActionID"] == again.action_id
        assert spy.session(failed.session_id).state == "failed"  # type: ignore[union-attr]


class PhoneLegs:
    """Follows the supervisor phone's channels from the PBX's own events, in bus order, and keeps
    the most it ever had at once."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.most = 0

    def on_item(self, item: object) -> None:
        if isinstance(item, ChannelCreated) and item.channel.startswith("PJSIP/sup1-"):
            self.live.add(item.channel)
            self.most = max(self.most, len(self.live))
        elif isinstance(item, ChannelHungUp):
            self.live.discard(item.channel)


def watch_phone(desk: Desk) -> PhoneLegs:
    legs = PhoneLegs()
    desk.daemon.bus.subscribe(legs.on_item)
    return legs


async def alert(desk: Desk, sub: Subscription) -> dict[str, object]:
    """The next `spy_alert` frame on the supervisors' push channel."""
    async with asyncio.timeout(60):
        while True:
            data = await sub.get()
            assert data is not None
            frame = json.loads(data)
            if frame.get("type") == "spy_alert":
                return dict(frame)


async def test_with_audio_stop_and_switch_end_the_old_leg_before_answering(
    tmp_path: Path,
) -> None:
    async with spy_desk(tmp_path) as (desk, spy):
        legs = watch_phone(desk)
        await two_live_calls(desk, audio=True)
        listen = await spy.start("S100", "seat1", "listen")
        await reach(desk, spy, listen.session_id, "active")
        whisper = await spy.switch(listen.session_id, "whisper")
        old = spy.session(listen.session_id)
        assert old is not None and old.state == "stopped"  # proved before the switch returned
        assert old.stopped_at is not None and old.stopped_at <= whisper.requested_at
        await reach(desk, spy, whisper.session_id, "active")
        done = await spy.stop(whisper.session_id)
        assert done.state == "stopped"  # the phone's Hangup was seen, not just `Success`
        await desk.wait_for(lambda: not legs.live)
        assert legs.most == 1
        assert desk.sim.channel(seat_leg(desk, "seat1")) is not None  # the call goes on
        assert options(desk) == ["uqE", "uqEw"]


async def test_on_a_silent_call_stop_and_switch_free_the_phone_while_chanspy_lingers(
    tmp_path: Path,
) -> None:
    async with spy_desk(tmp_path) as (desk, spy):
        legs = watch_phone(desk)
        _, one = await two_live_calls(desk, talk_s=30, audio=False)
        seat1 = seat_leg(desk, "seat1")
        listen = await spy.start("S100", "seat1", "listen")
        await reach(desk, spy, listen.session_id, "active")

        # ChanSpy on a silent call ignores hangups (pjsip_spy_silent), but the phone is not the
        # channel running it: its Hangup ends the Dial at once, the switch goes on.
        whisper = await spy.switch(listen.session_id, "whisper")
        old = spy.session(listen.session_id)
        assert old is not None and old.state == "stopped" and old.reason == "switch"
        assert old.stopped_at is not None and old.stopped_at <= whisper.requested_at
        assert old.chanspy_channel is not None
        assert desk.sim.channel(old.chanspy_channel) is not None  # lingers, holding no phone
        assert old.chanspy_channel in spy.lingering()
        await reach(desk, spy, whisper.session_id, "active")
        done = await spy.stop(whisper.session_id)
        assert done.state == "stopped"
        await desk.wait_for(lambda: not legs.live)
        assert legs.most == 1  # the supervisor's phone never had two listen-in legs
        assert spy_hangups(desk) == [old.spy_channel, done.spy_channel]
        assert options(desk) == ["uqE", "uqEw"]
        # ctid hangs up the lingering halves too, best effort (ChanSpy still waits for audio).
        assert done.chanspy_channel is not None
        await desk.wait_for(
            lambda: (
                [h["Channel"] for h in desk.actions("Hangup") if "@ctid-spy-run-" in h["Channel"]]
                == [old.chanspy_channel, done.chanspy_channel]
            )
        )
        assert set(spy.lingering()) == {old.chanspy_channel, done.chanspy_channel}

        # The spied call goes on untouched.
        assert not one.ended.is_set()
        assert desk.sim.channel(seat1) is not None
        tracker = desk.daemon.calls.tracker
        assert tracker.seat(SeatId("seat1")).activity == "on_call"

        # When it ends, so do the lingering ChanSpy halves.
        await desk.wait_for(one.ended.is_set)
        await desk.wait_for(lambda: not spy.lingering())
        assert desk.sim.channel(old.chanspy_channel) is None
        assert desk.sim.channel(done.chanspy_channel) is None
        assert not [c for c in desk.sim.channels() if "@ctid-spy-run-" in c]
        assert audit(desk, listen.session_id) == [
            "spy_requested",
            "spy_started",
            "spy_stop_requested",
            "spy_stopped",
        ]
        # Each end was proved by the phone channel's Hangup event.
        hows = desk.rows(
            "SELECT json_extract(detail, '$.how') AS how, json_extract(detail, '$.spy_channel')"
            " AS phone FROM audit_log WHERE action = 'spy_stopped' ORDER BY id"
        )
        assert [(r["how"], r["phone"]) for r in hows] == [
            ("phone channel hung up", old.spy_channel),
            ("phone channel hung up", done.spy_channel),
        ]


async def test_a_phone_leg_that_cannot_be_ended_is_reported_and_never_doubled(
    tmp_path: Path,
) -> None:
    async with spy_desk(tmp_path) as (desk, spy):
        legs = watch_phone(desk)
        _, one = await two_live_calls(desk, talk_s=30, audio=False)
        sub = desk.daemon.hub.subscribe_supervisor()
        listen = await spy.start("S100", "seat1", "listen")
        await reach(desk, spy, listen.session_id, "active")

        # The phone's channel takes the Hangup (`Success`) but never ends: no proof within
        # END_BOUND_S, so the supervisor and the log are told.
        desk.sim.wedge_hangups("PJSIP/sup1-")
        with pytest.raises(SpyLegNotEndedError) as stuck:
            await spy.stop(listen.session_id)
        assert stuck.value.session.state == "active"
        frame = await alert(desk, sub)
        assert (frame["session"], frame["seat"]) == (listen.session_id, "seat1")
        assert f"{END_BOUND_S:g} s" in str(frame["message"])

        # A switch does not ring the phone a second time while the old leg runs.
        with pytest.raises(SpyLegNotEndedError):
            await spy.switch(listen.session_id, "barge")
        assert len(desk.actions("Originate")) == 1
        assert legs.most == 1

        # Once the phone takes hangups again, a stop ends it as usual.
        desk.sim.wedge_hangups("PJSIP/sup1-", False)
        done = await spy.stop(listen.session_id)
        assert done.state == "stopped"
        await desk.wait_for(lambda: not legs.live)
        assert legs.most == 1
        assert not one.ended.is_set()
        await desk.wait_for(
            lambda: (
                "spy_end_unconfirmed" in audit(desk, listen.session_id)
                and audit(desk, listen.session_id)[-1] == "spy_stopped"
            )
        )
        sub.close()
