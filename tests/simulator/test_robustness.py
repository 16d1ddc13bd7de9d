"""Whatever ctid does to whichever channel in whichever phase, the simulator keeps a consistent
PBX: no failed task, every channel accounted for, the call ends cleanly. Plus Redirect."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from ctid.asterisk.simulator import PbxSimulator, lab_config
from tests.simulator.support import AgiConn, AmiTestClient, IvrServer, get, lab_ivr

pytestmark = pytest.mark.looptime


async def endless_ivr(conn: AgiConn) -> None:
    await conn.command("WAIT FOR DIGIT -1")


def _targets(call_channels: list[str], phase: str) -> dict[str, str]:
    caller = [c for c in call_channels if c.startswith("Local/4000@hotline")]
    seat = [c for c in call_channels if c.startswith("Local/seat")]
    named = {"caller1": caller[0], "caller2": caller[1]}
    if phase != "ivr":
        named["seat1"] = seat[-2]
        named["seat2"] = seat[-1]
    return named


CASES = [
    (phase, target)
    for phase in ("ivr", "queue", "bridged")
    for target in ("caller1", "caller2", "seat1", "seat2")
    if phase != "ivr" or target.startswith("caller")  # no seat leg exists during the IVR
]


@pytest.mark.parametrize(("phase", "target"), CASES)
@pytest.mark.parametrize("op", ["Hangup", "AbsoluteTimeout", "Redirect"])
async def test_any_operation_in_any_phase(phase: str, target: str, op: str) -> None:
    handler = endless_ivr if phase == "ivr" else lab_ivr
    with capture_logs() as logs:
        async with IvrServer(handler) as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
            ami = AmiTestClient()
            await ami.login(sim.ami_port)
            if phase == "bridged":
                sim.set_phone("seat1", answer_after_s=1, talk_s=None)
            call = sim.place_call("13800138000", "Zhang San")
            if phase == "ivr":
                await asyncio.sleep(3)
            elif phase == "queue":
                await ami.wait_event("AgentCalled", 30)
            else:
                await asyncio.wait_for(call.answered.wait(), 30)
            name = _targets(call.channels, phase)[target]
            if op == "Hangup":
                resp = await ami.action(Action="Hangup", Channel=name, Cause="16")
            elif op == "AbsoluteTimeout":
                resp = await ami.action(Action="AbsoluteTimeout", Channel=name, Timeout="1")
            else:
                resp = await ami.action(
                    Action="Redirect", Channel=name, Context="queues", Exten="expert", Priority="1"
                )
            assert get(resp, "Response") == "Success"
            await asyncio.sleep(5)
            call.hangup()
            await asyncio.wait_for(call.ended.wait(), 30)
            for chan in sim.channels():
                await ami.action(Action="Hangup", Channel=chan)
            await asyncio.sleep(1)
            assert sim.channels() == []
            await ami.close()
    errors = [entry for entry in logs if entry.get("log_level") in ("error", "critical")]
    assert errors == []


async def test_redirect_a_waiting_caller_to_another_queue() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat3", answer_after_s=1, talk_s=2)
        call = sim.place_call("13800138000", "Zhang San")
        await ami.wait_event("AgentCalled", 30)
        resp = await ami.action(
            Action="Redirect",
            Channel=call.caller_channel,
            Context="ctid-transfer",
            Exten="expert",
            Priority="1",
        )
        assert get(resp, "Message") == "Redirect successful"
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.seat == "seat3"
        leave = await ami.wait_event("QueueCallerLeave", Queue="ordinary")
        assert get(leave, "Count") == "0"
        await ami.wait_event("QueueCallerJoin", Queue="expert")
        await ami.close()


async def test_redirect_a_talking_caller_transfers_away_from_the_agent() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", answer_after_s=1, talk_s=None)
        sim.set_phone("seat3", answer_after_s=1, talk_s=2)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.answered.wait(), 30)
        await ami.action(
            Action="Redirect", Channel=call.caller_channel, Context="queues", Exten="expert"
        )
        # the first seat's leg goes at once, but app_queue completes it only when the caller's
        # channel hangs up (pjsip_transfer_redirect)
        gone = await ami.wait_event("Hangup", 10, Channel=call.channels[2])
        assert get(gone, "Cause") == "16"
        await ami.wait_event("QueueCallerJoin", Queue="expert")
        assert ami.events("AgentComplete") == []
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.seat == "seat3"
        final = await ami.wait_event("AgentComplete", MemberName="Seat 3")
        assert get(final, "Reason") == "agent"
        first = await ami.wait_event("AgentComplete", MemberName="Seat 1")
        assert get(first, "Reason") == "caller"
        assert get(first, "DestChannel") is None
        await ami.close()
