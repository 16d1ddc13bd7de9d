"""Fault knobs: network blip, half-open links, refused logins, PBX restart."""

from __future__ import annotations

import asyncio

import pytest

from ctid.asterisk.simulator import PbxSimulator, lab_config
from tests.simulator.support import AmiTestClient, IvrServer, get, refused

pytestmark = pytest.mark.looptime


async def test_drop_ami_links_keeps_calls_going() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", answer_after_s=5, talk_s=5)
        call = sim.place_call("13800138000", "Zhang San")
        await ami.wait_event("AgentCalled", 30)
        sim.drop_ami_links()
        await asyncio.wait_for(ami.eof.wait(), 2)
        again = AmiTestClient()
        await again.login(sim.ami_port)
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.outcome == "answered"
        done = await again.wait_event("AgentComplete")
        assert get(done, "Channel") == call.caller_channel
        await ami.close()
        await again.close()


async def test_stalled_link_neither_reads_nor_writes_until_released() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        await ami.wait_event("FullyBooted")
        sim.stall_ami(True)
        ami.send(Action="Ping", ActionID="p1")
        ami.send(Action="QueuePause", ActionID="p2", Interface="Local/seat1@phones/n", Paused="1")
        with pytest.raises(TimeoutError):
            await ami.wait_for(lambda f: get(f, "ActionID") == "p1", within=30)
        assert not ami.eof.is_set()
        sim.engine.members.queue_pause(
            "Local/seat2@phones/n", "", True, "stalled"
        )  # events pile up
        sim.stall_ami(False)
        pong = await ami.wait_for(lambda f: get(f, "ActionID") == "p1", within=5)
        assert get(pong, "Ping") == "Pong"
        paused = await ami.wait_event("QueueMemberPause", 5, PausedReason="stalled")
        assert get(paused, "Interface") == "Local/seat2@phones/n"
        await ami.wait_for(lambda f: get(f, "ActionID") == "p2", within=5)
        await ami.close()


async def test_refused_logins() -> None:
    async with PbxSimulator(lab_config()) as sim:
        sim.refuse_logins(True)
        ami = AmiTestClient()
        resp = await ami.login(sim.ami_port)
        assert get(resp, "Message") == "Authentication failed"
        await asyncio.wait_for(ami.eof.wait(), 5)
        await ami.close()
        sim.refuse_logins(False)
        ok = AmiTestClient()
        assert get(await ok.login(sim.ami_port), "Message") == "Authentication accepted"
        await ok.close()


async def test_restart_drops_everything_and_comes_back() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        port = sim.ami_port
        await ami.action(Action="QueueAdd", Queue="expert", Interface="Local/seat1@phones/n")
        await ami.action(Action="QueuePause", Interface="Local/seat2@phones/n", Paused="1")
        sim.set_phone("seat1", answer_after_s=1, talk_s=60)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.answered.wait(), 30)
        old_uid = call.uniqueid
        restart = asyncio.ensure_future(sim.restart(down_s=5))
        await asyncio.wait_for(ami.eof.wait(), 2)
        assert sim.channels() == []
        assert call.ended.is_set()
        await refused(port, 2)
        await asyncio.wait_for(restart, 10)
        back = AmiTestClient()
        await back.login(port)
        booted = await back.wait_event("FullyBooted")
        assert get(booted, "Uptime") == "0"
        assert [m.interface for m in sim.queue_members("expert")] == [
            "Local/seat3@phones/n",
            "Local/seat4@phones/n",
        ]
        assert not any(m.paused for m in sim.queue_members("ordinary"))
        sim.set_phone("seat1", answer_after_s=1, talk_s=1)
        second = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(second.ended.wait(), 30)
        # a restarted Asterisk counts again: Uniqueids from .0, channel numbers from 00000000
        assert int(old_uid.split(".")[1]) > 0
        assert second.uniqueid.split(".")[1] == "1"  # the caller's ;2 half, after ;1 (.0)
        assert second.caller_channel == "Local/4000@hotline-00000000;2"
        assert sim.queue_log.count("QUEUESTART|") == 0
        assert [line.split("|", 1)[1] for line in sim.queue_log].count(
            "NONE|NONE|NONE|QUEUESTART|"
        ) == 2
        await ami.close()
        await back.close()


async def test_fragmented_output_splits_utf8_characters_across_reads() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: ctid\r\nSecret: ctidlab\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")  # FullyBooted
        sim.fragment_ami(7)
        call = sim.place_call("13800138000", "张三")
        chunks: list[bytes] = []
        while "CallerIDName: 张三".encode() not in b"".join(chunks):
            chunks.append(await asyncio.wait_for(reader.read(65536), 30))
        assert max(len(c) for c in chunks) <= 7
        whole = b"".join(chunks)
        assert "CallerIDName: 张三".encode() in whole
        assert any(_splits_a_character(c) for c in chunks)
        call.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)
        writer.close()


def _splits_a_character(chunk: bytes) -> bool:
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
