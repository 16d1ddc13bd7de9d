"""PJSIP-style seats (one channel per leg) and phone behaviours: busy, unavailable."""

from __future__ import annotations

import asyncio

import pytest

from ctid.asterisk.simulator import (
    MemberSpec,
    PbxSimulator,
    QueueSpec,
    SeatSpec,
    SimulatorConfig,
)
from tests.simulator.support import AmiTestClient, IvrServer, get

pytestmark = pytest.mark.looptime


def pjsip_config(agi_port: int) -> SimulatorConfig:
    seats = tuple(SeatSpec(f"seat{n}", f"PJSIP/seat{n}", f"Seat {n}") for n in (1, 2))
    return SimulatorConfig(
        queues=(QueueSpec("ordinary", tuple(MemberSpec(s.interface, s.name) for s in seats)),),
        seats=seats,
        agi_url=f"agi://127.0.0.1:{agi_port}/ivr",
    )


def statuses(ami: AmiTestClient, member: str) -> list[str]:
    return [
        get(e, "Status") or ""
        for e in ami.events("QueueMemberStatus")
        if get(e, "MemberName") == member
    ]


async def test_pjsip_seat_rings_answers_and_hangs_up() -> None:
    async with IvrServer() as ivr, PbxSimulator(pjsip_config(ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", answer_after_s=3, talk_s=4)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.seat == "seat1"
        called = await ami.wait_event("AgentCalled")
        leg = get(called, "DestChannel") or ""
        assert leg.startswith("PJSIP/seat1-") and ";" not in leg
        assert get(called, "Interface") == "PJSIP/seat1"
        await ami.wait_event("AgentComplete")
        # ringing, in use, idle again
        assert statuses(ami, "Seat 1") == ["6", "2", "1"]
        states = [
            get(e, "State")
            for e in ami.events("DeviceStateChange")
            if get(e, "Device") == "PJSIP/seat1"
        ]
        assert states == ["RINGING", "INUSE", "NOT_INUSE"]
        assert not [c for c in call.channels if c.startswith("Local/seat")]
        await ami.close()


async def test_busy_phone_is_skipped_with_ring_no_answer() -> None:
    async with IvrServer() as ivr, PbxSimulator(pjsip_config(ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", busy=True)
        sim.set_phone("seat2", answer_after_s=1, talk_s=1)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.seat == "seat2"
        assert call.rang == ["seat1", "seat2"]
        busy = await ami.wait_event("DialEnd", DialStatus="BUSY")
        assert (get(busy, "DestChannel") or "").startswith("PJSIP/seat1-")
        rna = await ami.wait_event("AgentRingNoAnswer")
        assert get(rna, "MemberName") == "Seat 1"
        await ami.close()


async def test_unavailable_phone_is_not_rung() -> None:
    async with IvrServer() as ivr, PbxSimulator(pjsip_config(ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", unavailable=True)
        status = await ami.wait_event("QueueMemberStatus", MemberName="Seat 1")
        assert get(status, "Status") == "5"
        sim.set_phone("seat2", answer_after_s=1, talk_s=1)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.rang == ["seat2"]
        summary = await ami.action(Action="QueueSummary")
        assert get(summary, "Response") == "Success"
        item = await ami.wait_event("QueueSummary")
        assert (get(item, "LoggedIn"), get(item, "Available")) == ("1", "1")
        await ami.close()


async def test_hangup_action_on_ringing_pjsip_leg() -> None:
    async with IvrServer() as ivr, PbxSimulator(pjsip_config(ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat2", answer_after_s=2, talk_s=1)
        call = sim.place_call("13800138000", "Zhang San")
        called = await ami.wait_event("AgentCalled", 30)
        leg = get(called, "DestChannel") or ""
        await asyncio.sleep(
            3
        )  # the scenario: the seat rings 3 s before the cut (not a wait for state)
        await ami.action(Action="Hangup", Channel=leg, Cause="19")
        rna = await ami.wait_event("AgentRingNoAnswer")
        assert get(rna, "RingTime") in ("3000", "4000")
        hangup = await ami.wait_event("Hangup", Channel=leg)
        assert get(hangup, "Cause") == "19"
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.seat == "seat2"
        await ami.close()
