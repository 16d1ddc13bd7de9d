"""The desk's rules on live calls, end to end: ctid's daemon against the PBX simulator over real
AMI and FastAGI sockets, on fake loop time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import running_desk

# Fake loop time. ctid's SQLite work runs in aiosqlite's thread, which the fake clock cannot see:
# many idle cycles before it moves the clock, so a database write rarely looks like seconds.
pytestmark = pytest.mark.looptime(noop_cycles=20_000)


async def test_answered_call_becomes_an_incident_with_its_ring_number(tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        desk.sim.set_phone("seat1", answer_after_s=6, talk_s=20)
        desk.sim.set_phone("seat2", answer_after_s=6, talk_s=20)
        call = desk.sim.place_call("13800138000", "张三丰", digits="1")
        await desk.wait_for(call.ended.is_set)
        assert call.outcome == "answered"
        row = await desk.call_row(call.linkedid)
        assert row["outcome"] == "answered"
        assert row["answered_by_seat"] == call.seat
        assert row["ivr_choice"] == "1"
        assert row["answer_ring"] == 2  # answered after 6 s at a 5 s cadence: the second ring
        assert row["within_rings"] == 1
        attempts = desk.attempts(call.linkedid)
        assert [(a["seat_id"], a["outcome"]) for a in attempts] == [(call.seat, "answered")]
        incidents = desk.incidents()
        assert len(incidents) == 1
        inc = incidents[0]
        assert inc["owner_seat"] == call.seat
        assert inc["channel"] == "phone"
        assert inc["request_type"] == "consultation"
        assert inc["caller_name"] == "张三丰"
        assert inc["number"].startswith("INC-20261123-")


async def test_seat_ringing_past_three_rings_is_cut_and_the_next_seat_rings(tmp_path: Path) -> None:
    # The PBX would ring a seat 30 s; ctid's rule cuts it at 15 s (3 rings x 5 s).
    async with running_desk(tmp_path, ring={"max_rings": 3}) as desk:
        desk.sim.set_phone("seat1", answer_after_s=None)
        desk.sim.set_phone("seat2", answer_after_s=3, talk_s=10)
        desk.sim.set_rr_position("ordinary", 0)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="1")
        await desk.wait_for(call.ended.is_set)
        assert call.rang[:2] == ["seat1", "seat2"]
        await desk.call_row(call.linkedid)
        hangups = desk.actions("Hangup")
        assert len(hangups) == 1
        assert hangups[0]["Channel"].startswith("PJSIP/seat1-")
        attempts = desk.attempts(call.linkedid)
        assert [(a["seat_id"], a["outcome"]) for a in attempts] == [
            ("seat1", "cut"),
            ("seat2", "answered"),
        ]
        assert attempts[0]["ring_s"] == pytest.approx(15.0, abs=0.5)
        assert desk.daemon.calls.ring.misses["seat1"] == 1


async def test_two_misses_in_a_row_pause_the_seat_with_reason_rna(tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        desk.sim.set_phone("seat1", answer_after_s=None)
        desk.sim.set_phone("seat2", answer_after_s=2, talk_s=5)
        for n in range(2):
            desk.sim.set_rr_position("ordinary", 0)
            call = desk.sim.place_call(f"1380013800{n}", "Caller", digits="1")
            await desk.wait_for(call.ended.is_set)
        pauses = desk.actions("QueuePause")
        assert [(p["Interface"], p["Paused"], p.get("Reason")) for p in pauses] == [
            ("PJSIP/seat1", "true", "rna")
        ]
        await desk.wait_for(lambda: desk.daemon.calls.tracker.seat("seat1").paused)
        assert desk.daemon.calls.tracker.seat("seat1").pause_reason == "rna"


async def test_abandoned_call_lands_on_the_callback_list(tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        for seat in ("seat1", "seat2"):
            desk.sim.set_phone(seat, answer_after_s=None)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="1", hangup_after_s=10)
        await desk.wait_for(call.ended.is_set)
        row = await desk.call_row(call.linkedid)
        assert row["outcome"] == "abandoned_in_queue"
        callbacks = await desk.wait_for_callbacks()
        assert [(c["caller_number"], c["reason"], c["status"]) for c in callbacks] == [
            ("+8613800138000", "abandoned", "open")
        ]
