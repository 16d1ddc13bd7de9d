"""app_queue semantics: rrmemory rotation, penalties, ringinuse=no, pause with reason, enforced
hangup of a ringing leg, dynamic members and the list actions."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from ctid.asterisk.simulator import MemberSpec, PbxSimulator, QueueSpec, lab_config
from tests.simulator.support import AgiConn, AmiTestClient, IvrServer, get

pytestmark = pytest.mark.looptime


def _seat(n: int, penalty: int = 0) -> MemberSpec:
    return MemberSpec(interface=f"Local/seat{n}@phones/n", name=f"Seat {n}", penalty=penalty)


def shared_config(port: int) -> object:
    """One queue, seat1 and seat2 at penalty 0, seat3 at penalty 1."""
    return replace(
        lab_config(agi_port=port),
        queues=(QueueSpec("ordinary", (_seat(1), _seat(2), _seat(3, penalty=1))),),
    )


async def rung(ami: AmiTestClient, n: int) -> list[str]:
    """MemberName of the first `n` AgentCalled events."""
    return [get(e, "MemberName") or "" for e in await ami.wait_count("AgentCalled", n, 60)]


async def test_rrmemory_rotates_between_members() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        for seat in ("seat1", "seat2"):
            sim.set_phone(seat, answer_after_s=1, talk_s=1)
        seats = []
        for _ in range(4):
            call = sim.place_call("13800138000", "Zhang San")
            await asyncio.wait_for(call.ended.wait(), 30)
            seats.append(call.seat)
        assert seats == ["seat1", "seat2", "seat1", "seat2"]
        await ami.close()


async def test_unanswered_member_is_rung_again_before_higher_penalty() -> None:
    async with IvrServer() as ivr, PbxSimulator(shared_config(ivr.port)) as sim:  # type: ignore[arg-type]
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        await ami.action(Action="QueuePause", Interface="Local/seat2@phones/n", Paused="true")
        call = sim.place_call("13800138000", "Zhang San")
        # seat1 never answers: after each RNA the queue retries seat1, never seat3 (penalty 1)
        assert await rung(ami, 3) == ["Seat 1", "Seat 1", "Seat 1"]
        call.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)
        await ami.close()


async def test_higher_penalty_rings_when_lower_ones_are_unavailable() -> None:
    async with IvrServer() as ivr, PbxSimulator(shared_config(ivr.port)) as sim:  # type: ignore[arg-type]
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        for iface in ("Local/seat1@phones/n", "Local/seat2@phones/n"):
            await ami.action(Action="QueuePause", Interface=iface, Queue="ordinary", Paused="1")
        sim.set_phone("seat3", answer_after_s=2, talk_s=2)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.seat == "seat3"
        assert await rung(ami, 1) == ["Seat 3"]
        await ami.close()


async def test_ringinuse_no_skips_a_member_on_a_call() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", answer_after_s=1, talk_s=60)
        first = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(first.answered.wait(), 30)
        assert first.seat == "seat1"
        sim.set_rr_position("ordinary", 0)  # rrmemory would prefer seat1 again
        sim.set_phone("seat2", answer_after_s=1, talk_s=1)
        second = sim.place_call("13900139000", "Li Si")
        await asyncio.wait_for(second.ended.wait(), 30)
        assert second.seat == "seat2"
        assert [get(e, "MemberName") for e in ami.events("AgentCalled")] == ["Seat 1", "Seat 2"]
        in_call = [m for m in sim.queue_members("ordinary") if m.in_call]
        assert [m.interface for m in in_call] == ["Local/seat1@phones/n"]
        first.hangup()
        await asyncio.wait_for(first.ended.wait(), 10)
        await ami.close()


async def test_pause_with_reason_and_paused_member_is_skipped() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        resp = await ami.action(
            Action="QueuePause",
            Interface="Local/seat1@phones/n",
            Queue="ordinary",
            Paused="true",
            Reason="lunch",
        )
        assert get(resp, "Message") == "Interface paused successfully"
        pause = await ami.wait_event("QueueMemberPause")
        assert (get(pause, "Paused"), get(pause, "PausedReason")) == ("1", "lunch")
        info = {m.interface: m for m in sim.queue_members("ordinary")}
        assert info["Local/seat1@phones/n"].paused
        assert info["Local/seat1@phones/n"].reason == "lunch"
        sim.set_phone("seat2", answer_after_s=1, talk_s=1)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.seat == "seat2"
        resp = await ami.action(
            Action="QueuePause", Interface="Local/seat1@phones/n", Paused="false"
        )
        assert get(resp, "Message") == "Interface unpaused successfully"
        unpause = ami.events("QueueMemberPause")[-1]
        assert (get(unpause, "Paused"), get(unpause, "PausedReason")) == ("0", "")
        missing = await ami.action(Action="QueuePause", Interface="SIP/nobody", Paused="true")
        assert get(missing, "Message") == "Interface not found"
        await ami.close()


async def test_hangup_of_ringing_leg_records_ring_time_and_moves_on() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat2", answer_after_s=3, talk_s=2)
        call = sim.place_call("13800138000", "Zhang San")
        called = await ami.wait_event("AgentCalled", 30)
        leg = get(called, "DestChannel")
        assert leg is not None and leg.startswith("Local/seat1@phones-") and leg.endswith(";1")
        await asyncio.sleep(4)
        resp = await ami.action(Action="Hangup", Channel=leg, Cause="19")
        assert get(resp, "Message") == "Channel Hungup"
        rna = await ami.wait_event("AgentRingNoAnswer")
        assert get(rna, "RingTime") in ("4000", "5000")
        assert get(rna, "DestChannel") == leg
        hangup = await ami.wait_event("Hangup", Channel=leg)
        assert get(hangup, "Cause-txt") == "User alerting, no answer"
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.seat == "seat2"
        assert call.rang == ["seat1", "seat2"]
        await ami.close()


async def test_two_callers_get_positions_and_counts() -> None:
    async def slow(conn: AgiConn) -> None:
        await conn.command("NOOP")

    async with IvrServer(slow) as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        for iface in ("Local/seat1@phones/n", "Local/seat2@phones/n"):
            await ami.action(Action="QueuePause", Interface=iface, Paused="true")
        a = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(a.queued.wait(), 10)
        b = sim.place_call("13900139000", "Li Si")
        await asyncio.wait_for(b.queued.wait(), 10)
        await ami.wait_event("QueueCallerJoin", Channel=b.caller_channel)
        joins = ami.events("QueueCallerJoin")
        assert [(get(j, "Position"), get(j, "Count")) for j in joins] == [("1", "1"), ("2", "2")]
        status = await ami.action(Action="QueueStatus", Queue="ordinary")
        assert get(status, "EventList") == "start"
        complete = await ami.wait_event("QueueStatusComplete")
        entries = [e for e in ami.events("QueueEntry")]
        assert [get(e, "Channel") for e in entries] == [a.caller_channel, b.caller_channel]
        assert get(complete, "ListItems") == str(1 + 2 + 2)
        a.hangup()
        await asyncio.wait_for(a.ended.wait(), 10)
        abandon = await ami.wait_event("QueueCallerAbandon")
        assert get(abandon, "Position") == "1"
        b.hangup()
        await asyncio.wait_for(b.ended.wait(), 10)
        abandon_b = await ami.wait_event("QueueCallerAbandon", Channel=b.caller_channel)
        assert (get(abandon_b, "Position"), get(abandon_b, "OriginalPosition")) == ("1", "2")
        await ami.close()


async def test_dynamic_members_and_summary() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        resp = await ami.action(
            Action="QueueAdd",
            Queue="expert",
            Interface="Local/seat1@phones/n",
            MemberName="Seat 1",
            Penalty="1",
        )
        assert get(resp, "Message") == "Added interface to queue"
        added = await ami.wait_event("QueueMemberAdded")
        assert (get(added, "Membership"), get(added, "Penalty")) == ("dynamic", "1")
        again = await ami.action(
            Action="QueueAdd", Queue="expert", Interface="Local/seat1@phones/n"
        )
        assert get(again, "Message") == "Unable to add interface: Already there"
        nosuch = await ami.action(Action="QueueAdd", Queue="nosuch", Interface="Local/x@y/n")
        assert get(nosuch, "Message") == "Unable to add interface to queue: No such queue"
        static = await ami.action(
            Action="QueueRemove", Queue="expert", Interface="Local/seat3@phones/n"
        )
        assert get(static, "Message") == "Member not dynamic"
        assert [m.interface for m in sim.queue_members("expert")][-1] == "Local/seat1@phones/n"
        summary = await ami.action(Action="QueueSummary", Queue="expert")
        assert get(summary, "Message") == "Queue summary will follow"
        item = await ami.wait_event("QueueSummary")
        assert (get(item, "LoggedIn"), get(item, "Available")) == ("3", "3")
        done = await ami.wait_event("QueueSummaryComplete")
        assert get(done, "ListItems") == "1"
        removed = await ami.action(
            Action="QueueRemove", Queue="expert", Interface="Local/seat1@phones/n"
        )
        assert get(removed, "Message") == "Removed interface from queue"
        await ami.wait_event("QueueMemberRemoved")
        gone = await ami.action(
            Action="QueueRemove", Queue="expert", Interface="Local/seat1@phones/n"
        )
        assert get(gone, "Message") == "Unable to remove interface: Not there"
        await ami.close()
