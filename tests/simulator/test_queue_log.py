"""The simulator's queue_log: the file it appends to matches what it keeps in memory, and the lines
for outcomes the PJSIP recordings do not show follow app_queue's formats."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from ctid.asterisk.simulator import PbxSimulator, pjsip_lab_config
from tests.simulator.support import IvrServer

pytestmark = pytest.mark.looptime


def fields(line: str) -> list[str]:
    """A queue_log line without its epoch: callid|queue|agent|event|data…"""
    return line.split("|")[1:]


async def test_queue_log_file_has_every_line_in_order(tmp_path: Path) -> None:
    path = tmp_path / "queue_log"
    async with IvrServer() as ivr:
        cfg = pjsip_lab_config(agi_port=ivr.port, queue_log_path=path)
        async with PbxSimulator(cfg) as sim:
            sim.set_phone("seat1", answer_after_s=2, talk_s=5)
            call = sim.place_call("13800138000", "Zhang San", None)
            await asyncio.wait_for(call.ended.wait(), 60)
            memory = sim.queue_log
    assert path.read_text().splitlines() == memory
    events = [fields(line)[3] for line in memory]
    assert events == ["QUEUESTART", "ENTERQUEUE", "CONNECT", "COMPLETEAGENT"]
    uid = call.uniqueid
    enter, connect, complete = (fields(line) for line in memory[1:])
    assert enter == [uid, "ordinary", "NONE", "ENTERQUEUE", "", "13800138000", "1"]
    assert connect[:4] == [uid, "ordinary", "Seat 1", "CONNECT"]
    # holdtime | the member leg's Uniqueid | ring time
    assert connect[5].split(".")[0].isdigit() and connect[5] != uid and connect[6] == "2"
    assert complete == [uid, "ordinary", "Seat 1", "COMPLETEAGENT", connect[4], "5", "1"]
    assert all(int(line.split("|")[0]) > 1_700_000_000 for line in memory)


async def test_queue_timeout_writes_exitwithtimeout() -> None:
    async with IvrServer() as ivr:
        cfg = replace(pjsip_lab_config(agi_port=ivr.port), queue_timeout_s=4)
        async with PbxSimulator(cfg) as sim:
            for seat in ("seat1", "seat2"):
                sim.set_phone(seat, answer_after_s=None)
            call = sim.place_call("13800138000", "Zhang San", None)
            await asyncio.wait_for(call.ended.wait(), 60)
            lines = [fields(line) for line in sim.queue_log]
    assert call.outcome == "timeout"
    assert lines[-1][:4] == [call.uniqueid, "ordinary", "NONE", "EXITWITHTIMEOUT"]
    position, original, waited = lines[-1][4:]
    assert (position, original) == ("1", "1") and int(waited) in (3, 4, 5)
    assert any(f[3] == "RINGNOANSWER" and f[2] == "Seat 1" for f in lines)


async def test_leave_when_empty_writes_exitempty() -> None:
    async with IvrServer() as ivr:
        base = pjsip_lab_config(agi_port=ivr.port)
        queues = tuple(replace(q, leavewhenempty=True) for q in base.queues)
        async with PbxSimulator(replace(base, queues=queues)) as sim:
            sim.set_phone("seat1", answer_after_s=None)
            sim.set_phone("seat2", unavailable=True)
            call = sim.place_call("13800138000", "Zhang San", None)
            await asyncio.wait_for(call.queued.wait(), 30)
            assert not call.ended.is_set()  # seat1 can still take it
            sim.set_phone("seat1", unavailable=True)
            await asyncio.wait_for(call.ended.wait(), 60)
            lines = [fields(line) for line in sim.queue_log]
    assert lines[-1][:4] == [call.uniqueid, "ordinary", "NONE", "EXITEMPTY"]
    assert lines[-1][4:6] == ["1", "1"]
