"""The IVR end to end on the PBX simulator over real FastAGI, with the sounds the PBX really has:
none installed (every prompt fails like Asterisk's missing file) and the shipped prompts
installed (each plays its real length)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ctid.prompts import install_prompts
from tests.e2e.harness import SHANGHAI, running_desk

pytestmark = pytest.mark.looptime(noop_cycles=20_000)

EVENING = datetime(2026, 11, 23, 20, 0, tzinfo=SHANGHAI)


async def test_no_prompts_installed_still_routes_by_digit(tmp_path: Path) -> None:
    empty = tmp_path / "sounds"
    empty.mkdir()
    with capture_logs() as logs:
        async with running_desk(tmp_path, sim_overrides={"sounds_dir": empty}) as desk:
            desk.sim.set_phone("seat1", answer_after_s=1, talk_s=2)
            call = desk.sim.place_call("13800138000", "Zhang San", digits="2")
            await desk.wait_for(call.ended.is_set)
            assert call.ivr_vars["CTID_IVR"] == "2"
            assert call.queue == "shared"
            assert call.outcome == "answered"
            row = await desk.call_row(call.linkedid)
            assert row["ivr_choice"] == "2"
    warned = [e for e in logs if e["event"] == "agi_prompt_unplayable"]
    # welcome and menu could not be played: each warned about once, the session went on
    assert sorted(e["prompt"] for e in warned) == ["ctid/menu", "ctid/welcome"]
    done = [e for e in logs if e["event"] == "ivr_done"]
    assert [(e["hung_up"], e["choice"]) for e in done] == [(False, "2")]


async def test_no_prompts_installed_after_hours_still_offers_the_callback(tmp_path: Path) -> None:
    empty = tmp_path / "sounds"
    empty.mkdir()
    async with running_desk(tmp_path, start=EVENING, sim_overrides={"sounds_dir": empty}) as desk:
        call = desk.sim.place_call("13900001111", "李娜", digits="1")
        await desk.wait_for(call.ended.is_set)
        assert call.queue is None  # never queued behind seats paused `closed`
        assert call.ivr_vars["CTID_ROUTE"] == "hangup"
        assert call.ivr_vars["CTID_IVR"] == "callback"
        callbacks = await desk.wait_for_callbacks()
        assert [(c["caller_number"], c["reason"]) for c in callbacks] == [
            ("+8613900001111", "after_hours")
        ]


async def test_after_hours_silent_caller_is_told_and_never_queued(tmp_path: Path) -> None:
    empty = tmp_path / "sounds"
    empty.mkdir()
    async with running_desk(tmp_path, start=EVENING, sim_overrides={"sounds_dir": empty}) as desk:
        call = desk.sim.place_call("13900001111", "李娜", digits=None)
        await desk.wait_for(call.ended.is_set)
        assert call.queue is None
        assert (call.ivr_vars["CTID_ROUTE"], call.ivr_vars["CTID_IVR"]) == ("hangup", "closed")
        assert desk.rows("SELECT * FROM callbacks") == []


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_silent_caller_reaches_a_queue_within_the_bound(
    tmp_path: Path, language: str
) -> None:
    sounds = tmp_path / "sounds"
    async with running_desk(tmp_path, sim_overrides={"sounds_dir": sounds}) as desk:
        install_prompts(desk.cfg, sounds, "zh" if language == "zh" else "en")
        loop = asyncio.get_running_loop()
        start = loop.time()
        call = desk.sim.place_call("13800138000", "Zhang San", digits=None)
        await asyncio.wait_for(call.queued.wait(), 120)
        waited = loop.time() - start  # fake loop time: prompts play their real length
        assert call.queue == "ordinary"
        assert call.ivr_vars["CTID_IVR"] == "default"
        assert waited <= desk.cfg.ivr.no_input_max_s == 20
        # and the prompts did play: the silent path is at least welcome + menu + the wait
        assert waited >= desk.cfg.ivr.digit_timeout_s + 5
        call.hangup()
        await desk.wait_for(call.ended.is_set)
