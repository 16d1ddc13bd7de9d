"""The simulator's sounds knob (`SimulatorConfig.sounds_dir`): a prompt with no file fails the way
pjsip_missing_prompt shows (`200 result=-1 endpos=0` at once, the channel stays up, the AGI ends
with AGISTATUS=FAILURE), and an installed WAV plays for its real length."""

from __future__ import annotations

import asyncio
import wave
from dataclasses import replace
from pathlib import Path

import pytest

from ctid.asterisk.simulator import PbxSimulator, lab_config
from ctid.config import load_config
from ctid.prompts import install_prompts
from tests.simulator.support import AgiConn, AmiTestClient, IvrServer, get

pytestmark = pytest.mark.looptime

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


async def test_missing_prompt_fails_at_once_and_the_session_goes_on(tmp_path: Path) -> None:
    replies: list[str] = []

    async def ivr(conn: AgiConn) -> None:
        replies.append(await conn.command('STREAM FILE ctid/no-such-prompt "0123456789*#"'))
        replies.append(await conn.command("CHANNEL STATUS"))
        replies.append(await conn.command("GET DATA ctid/menu 5000 1"))
        replies.append(await conn.command("WAIT FOR DIGIT 6000"))
        replies.append(await conn.command('SET VARIABLE CTID_QUEUE "ordinary"'))

    async with IvrServer(ivr) as server:
        cfg = replace(lab_config(agi_port=server.port), sounds_dir=tmp_path)
        async with PbxSimulator(cfg) as sim:
            ami = AmiTestClient()
            await ami.login(sim.ami_port)
            sim.set_phone("seat1", answer_after_s=1, talk_s=1)
            call = sim.place_call("13800138000", "Zhang San", digits="1")
            status = await ami.wait_event("VarSet", 30, Variable="AGISTATUS")
            assert get(status, "Value") == "FAILURE"
            await asyncio.wait_for(call.ended.wait(), 60)
            assert (call.queue, call.outcome) == ("ordinary", "answered")
            await ami.close()
    assert replies == [
        "200 result=-1 endpos=0",
        "200 result=6",
        "200 result=-1",
        "200 result=49",  # the key the caller pressed, though no prompt played
        "200 result=1",
    ]


async def test_installed_prompt_plays_its_real_length(tmp_path: Path) -> None:
    install_prompts(load_config(EXAMPLE, env={}), tmp_path, "en")
    replies: list[str] = []

    async def ivr(conn: AgiConn) -> None:
        replies.append(await conn.command('STREAM FILE ctid/menu ""'))

    async with IvrServer(ivr) as server:
        cfg = replace(lab_config(agi_port=server.port), sounds_dir=tmp_path)
        async with PbxSimulator(cfg) as sim:
            call = sim.place_call("13800138000", "Zhang San", digits=None, hangup_after_s=20)
            await asyncio.wait_for(call.ended.wait(), 60)
    with wave.open(str(tmp_path / "ctid" / "menu.wav"), "rb") as w:
        frames = w.getnframes()
    assert replies == [f"200 result=0 endpos={frames}"]  # played to the file's last sample
