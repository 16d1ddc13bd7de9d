"""More of the desk's rules end to end: the 10-minute cap, after-hours callbacks, hanging up in the
IVR, a cap timer that survives an AMI reconnect, lunch pauses applied at start, a PBX restart."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.harness import SHANGHAI, running_desk

pytestmark = pytest.mark.looptime(noop_cycles=20_000)


async def test_call_reaching_the_cap_is_ended_flagged_and_called_back(tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        for seat in ("seat1", "seat2"):
            desk.sim.set_phone(seat, answer_after_s=2, talk_s=None)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="1", talk_s=None)
        await desk.wait_for(call.ended.is_set, bound_s=900)
        row = await desk.call_row(call.linkedid)
        assert row["capped"] == 1
        assert row["talk_s"] == pytest.approx(600, abs=2)
        hangups = desk.actions("Hangup")
        assert [h["Channel"] for h in hangups] == [call.caller_channel]
        callbacks = await desk.wait_for_callbacks()
        assert [(c["reason"], c["status"]) for c in callbacks] == [("capped", "open")]
        flags = await desk.wait_for(
            lambda: json.loads(desk.incidents()[0]["flags"]) if desk.incidents() else None
        )
        assert "capped" in flags


async def test_after_hours_caller_leaves_a_callback_request(tmp_path: Path) -> None:
    evening = datetime(2026, 11, 23, 20, 0, tzinfo=SHANGHAI)
    async with running_desk(tmp_path, start=evening) as desk:
        call = desk.sim.place_call("13900001111", "李娜", digits="1")
        await desk.wait_for(call.ended.is_set)
        assert call.ivr_vars.get("CTID_ROUTE") == "hangup"
        callbacks = await desk.wait_for_callbacks()
        assert [(c["caller_number"], c["reason"]) for c in callbacks] == [
            ("+8613900001111", "after_hours")
        ]
        row = await desk.call_row(call.linkedid)
        assert row["outcome"] in ("callback_requested", "closed_hours")
        assert desk.attempts(call.linkedid) == []


async def test_caller_hanging_up_in_the_ivr_is_abandoned_in_ivr(tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        call = desk.sim.place_call(
            "13800138000", "Zhang San", digits=[None], hangup_in_ivr_after_s=1
        )
        await desk.wait_for(call.ended.is_set)
        row = await desk.call_row(call.linkedid)
        assert row["outcome"] == "abandoned_in_ivr"
        assert desk.incidents() == []


async def test_cap_timer_survives_an_ami_reconnect(tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        for seat in ("seat1", "seat2"):
            desk.sim.set_phone(seat, answer_after_s=2, talk_s=None)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="1", talk_s=None)
        await desk.wait_for(call.answered.is_set)
        await desk.wait_for(lambda: desk.daemon.calls.cap._calls)
        reconnects = desk.daemon.ami.health().reconnects
        desk.sim.drop_ami_links()  # the network blips; the call goes on
        await desk.wait_for(lambda: desk.daemon.ami.health().reconnects > reconnects)
        await desk.wait_for(call.ended.is_set, bound_s=900)
        row = await desk.call_row(call.linkedid)
        assert row["talk_s"] == pytest.approx(600, abs=3)  # from the real answer, not the resync
        assert row["capped"] == 1
        assert len(desk.rows("SELECT * FROM calls")) == 1  # no duplicate after the resync


async def test_started_during_lunch_pauses_the_off_duty_group_at_once(tmp_path: Path) -> None:
    lunch = datetime(2026, 11, 23, 12, 40, tzinfo=SHANGHAI)  # ISO week 2026-W48
    async with running_desk(tmp_path, start=lunch) as desk:
        state = desk.daemon.rota.state()
        on_duty = set(state.on_duty)
        off = {s.id for s in desk.cfg.seats} - on_duty
        await desk.wait_for(lambda: len(desk.actions("QueuePause")) >= len(off))
        pauses = {
            (p["Interface"], p["Paused"], p.get("Reason")) for p in desk.actions("QueuePause")
        }
        assert pauses == {(f"PJSIP/{s}", "true", "lunch") for s in off}
        assert state.lunch_group is not None
        # the lunch group on duty still takes calls
        for seat in on_duty:
            desk.sim.set_phone(seat, answer_after_s=2, talk_s=5)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="2")
        await desk.wait_for(call.ended.is_set)
        assert call.seat in on_duty
        # a second apply (as after a reconnect) sends nothing more
        before = len(desk.actions("QueuePause"))
        await desk.daemon.rota.apply_now()
        assert len(desk.actions("QueuePause")) == before


async def test_pbx_restart_mid_call_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        for seat in ("seat1", "seat2"):
            desk.sim.set_phone(seat, answer_after_s=2, talk_s=None)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="1", talk_s=None)
        await desk.wait_for(call.answered.is_set)
        await desk.sim.restart(down_s=3)
        await desk.wait_for(lambda: desk.daemon.ami.health().reconnects >= 1)
        rows = await desk.wait_rows("SELECT * FROM calls WHERE ended_at IS NOT NULL")
        assert len(rows) == 1
        assert rows[0]["answered_by_seat"] in ("seat1", "seat2")
        assert len(desk.incidents()) == 1
        # the desk keeps working after the restart
        desk.sim.set_phone("seat1", answer_after_s=2, talk_s=5)
        desk.sim.set_phone("seat2", answer_after_s=2, talk_s=5)
        again = desk.sim.place_call("13900001111", "李娜", digits="1")
        await desk.wait_for(again.ended.is_set)
        await desk.call_row(again.linkedid)
        assert len(desk.rows("SELECT * FROM calls")) == 2
