"""Calls placed with `place_call`: IVR over real FastAGI, fail-open, hangups in each phase."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from ctid.asterisk.simulator import PbxSimulator, lab_config
from tests.simulator.support import AgiConn, AmiTestClient, IvrServer, get

pytestmark = pytest.mark.looptime


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_answered_call_rings_seat_and_completes() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        assert get(await ami.login(sim.ami_port), "Response") == "Success"
        sim.set_phone("seat1", answer_after_s=4, talk_s=5)
        call = sim.place_call("13800138000", "Zhang San", digits="1")
        await asyncio.wait_for(call.answered.wait(), 30)
        assert call.seat == "seat1"
        assert call.queue == "ordinary"
        assert call.ivr_vars == {"CTID_QUEUE": "ordinary", "CTID_IVR": "1"}
        connect = await ami.wait_event("AgentConnect")
        assert get(connect, "Channel") == call.caller_channel
        assert get(connect, "MemberName") == "Seat 1"
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.outcome == "answered"
        done = await ami.wait_event("AgentComplete")
        assert get(done, "Reason") == "agent"
        # the phone's Answer() waits 0.5 s for media before Wait(5); time(NULL) granularity
        assert get(done, "TalkTime") in ("5", "6")
        assert sim.channels() == []
        assert ivr.conns[0].env["agi_channel"] == call.caller_channel
        await ami.close()


async def test_digit_two_routes_to_expert_queue() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        sim.set_phone("seat3", answer_after_s=1, talk_s=1)
        call = sim.place_call("13800138000", "Zhang San", digits="2")
        await asyncio.wait_for(call.ended.wait(), 30)
        assert (call.queue, call.seat, call.outcome) == ("expert", "seat3", "answered")


async def test_fail_open_when_no_fastagi_server_listens() -> None:
    cfg = lab_config(agi_port=_free_port())
    async with PbxSimulator(cfg) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", answer_after_s=1, talk_s=1)
        call = sim.place_call("13800138000", "Zhang San", digits="2")
        status = await ami.wait_event("VarSet", 10, Variable="AGISTATUS")
        assert get(status, "Value") == "FAILURE"
        await asyncio.wait_for(call.ended.wait(), 30)
        assert (call.queue, call.outcome) == ("ordinary", "answered")
        await ami.close()


async def test_fail_open_when_server_closes_without_a_word() -> None:
    async def silent(conn: AgiConn) -> None:
        return None

    async with IvrServer(silent) as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat2", answer_after_s=1, talk_s=1)
        sim.set_rr_position("ordinary", 1)
        call = sim.place_call("13800138000", "Zhang San", digits="2")
        status = await ami.wait_event("VarSet", 10, Variable="AGISTATUS")
        assert get(status, "Value") == "SUCCESS"
        await asyncio.wait_for(call.ended.wait(), 30)
        assert (call.queue, call.seat) == ("ordinary", "seat2")
        await ami.close()


async def test_caller_hangs_up_in_ivr_like_asterisk_22() -> None:
    replies: list[str] = []

    async def patient(conn: AgiConn) -> None:
        replies.append(await conn.command("WAIT FOR DIGIT -1"))
        replies.append(await conn.read_line())  # the unsolicited HANGUP
        replies.append(await conn.command('STREAM FILE ctid/welcome ""'))
        replies.append(await conn.command('SET VARIABLE CTID_QUEUE "expert"'))
        replies.append(await conn.command("GET VARIABLE CTID_QUEUE"))

    async with IvrServer(patient) as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        call = sim.place_call("13700001111", "Wang Wu", digits=None, hangup_in_ivr_after_s=3)
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.outcome == "ivr_hangup"
        assert replies == [
            "200 result=-1",
            "HANGUP",
            "511 Command Not Permitted on a dead channel or intercept routine",
            "200 result=1",
            "200 result=1 (expert)",
        ]
        status = await ami.wait_event("VarSet", 5, Variable="AGISTATUS")
        assert get(status, "Value") == "HANGUP"
        assert not ami.events("QueueCallerJoin")
        assert sim.channels() == []
        await ami.close()


async def test_ctid_route_hangup_ends_the_call_without_queue() -> None:
    async def closed(conn: AgiConn) -> None:
        await conn.command('STREAM FILE ctid/closed ""')
        await conn.command('SET VARIABLE CTID_ROUTE "hangup"')

    async with IvrServer(closed) as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.outcome == "routed_hangup"
        assert not ami.events("QueueCallerJoin")
        await ami.wait_event("Hangup", 5, Channel=call.caller_channel)
        await ami.close()


async def test_ivr_input_commands_follow_the_digit_script() -> None:
    replies: list[str] = []

    async def menu(conn: AgiConn) -> None:
        replies.append(await conn.command("STREAM FILE ctid/menu 0123456789"))
        replies.append(await conn.command("GET DATA ctid/enter-incident 3000 8"))
        replies.append(await conn.command("WAIT FOR DIGIT 2000"))
        replies.append(await conn.command("GET DATA ctid/enter-incident 3000 4"))
        replies.append(await conn.command("WAIT FOR DIGIT 2000"))
        replies.append(await conn.command("GET DATA ctid/x 2000 1"))
        replies.append(await conn.command("GET OPTION ctid/y 9 2000"))
        replies.append(await conn.command("WAIT FOR DIGIT 2000"))
        replies.append(await conn.command("NOOP"))
        replies.append(await conn.command("FOO BAR"))

    async with IvrServer(menu) as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        call = sim.place_call(
            "13800138000", "Zhang San", digits=["3", "1234#", None, "12", "7", "5", "9"]
        )
        await asyncio.wait_for(ivr.one_finished.wait(), 60)
        assert replies[0].startswith("200 result=51 endpos=")
        assert replies[1] == "200 result=1234"
        assert replies[2] == "200 result=0"
        assert replies[3] == "200 result=12 (timeout)"
        assert replies[4] == "200 result=55"
        assert replies[5] == "200 result=5"
        assert replies[6].startswith("200 result=57 endpos=")
        assert replies[7] == "200 result=0"  # script exhausted: silence
        assert replies[8] == "200 result=0"
        assert replies[9] == "510 Invalid or unknown command"
        call.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)


async def test_abandon_while_ringing() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        call = sim.place_call("13800138000", "Zhang San", hangup_after_s=12)
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.outcome == "abandoned"
        abandon = await ami.wait_event("QueueCallerAbandon")
        assert get(abandon, "Position") == "1"
        assert get(abandon, "OriginalPosition") == "1"
        assert not ami.events("AgentRingNoAnswer")
        assert sim.channels() == []
        await ami.close()


async def test_queue_timeout_ends_call() -> None:
    async with (
        IvrServer() as ivr,
        PbxSimulator(replace(lab_config(agi_port=ivr.port), queue_timeout_s=20)) as sim,
    ):
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.ended.wait(), 60)
        assert call.outcome == "timeout"
        rna = ami.events("AgentRingNoAnswer")
        # round 1 rings the full member timeout; round 2 (after retry) only what is left of the
        # 20 s (app_queue clips the ring to the queue's expiry, in whole seconds)
        ring_times = [get(e, "RingTime") for e in rna]
        assert ring_times[0] == "15000"
        assert ring_times[1] in ("3000", "4000")
        status = await ami.wait_event("VarSet", 5, Variable="QUEUESTATUS")
        assert get(status, "Value") == "TIMEOUT"
        await ami.close()


async def test_caller_hangs_up_after_talking() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", answer_after_s=2, talk_s=None)
        call = sim.place_call("13800138000", "Zhang San", talk_s=7)
        await asyncio.wait_for(call.ended.wait(), 30)
        done = await ami.wait_event("AgentComplete")
        assert get(done, "Reason") == "caller"
        assert get(done, "TalkTime") == "7"
        assert sim.channels() == []
        await ami.close()


async def test_trunk_call_uses_one_pjsip_channel() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", answer_after_s=1, talk_s=2)
        call = sim.place_call("13800138000", "Zhang San", trunk=True)
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.caller_channel.startswith("PJSIP/trunk-")
        assert call.originator_channel == ""
        join = await ami.wait_event("QueueCallerJoin")
        assert get(join, "Channel") == call.caller_channel
        hangups = [get(e, "Channel") for e in ami.events("Hangup")]
        assert call.caller_channel in hangups
        assert not [h for h in hangups if h and h.startswith("Local/4000@hotline")]
        await ami.close()


async def test_lab_originate_with_application_wait_hangs_up_in_ivr() -> None:
    async def waits(conn: AgiConn) -> None:
        await conn.command("WAIT FOR DIGIT 6000")

    async with IvrServer(waits) as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        resp = await ami.action(
            Action="Originate",
            Channel="Local/4000@hotline",
            Application="Wait",
            Data="1",
            CallerID="Wang Wu <13700001111>",
            Async="true",
        )
        assert get(resp, "Message") == "Originate successfully queued"
        orig = await ami.wait_event("OriginateResponse")
        assert get(orig, "Response") == "Success"
        assert get(orig, "Application") == "Wait"
        req = await ami.wait_event("HangupRequest", 5)
        assert get(req, "Cause") == "0"
        await ami.close()


async def test_agi_hangup_command_ends_the_call_once() -> None:
    async def bye(conn: AgiConn) -> None:
        assert await conn.command("HANGUP") == "200 result=1"
        assert await conn.read_line() == "HANGUP"
        assert await conn.command("WAIT FOR DIGIT 100") == (
            "511 Command Not Permitted on a dead channel or intercept routine"
        )

    async with IvrServer(bye) as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.ended.wait(), 30)
        assert call.outcome == "routed_hangup"
        await ami.wait_event("Hangup", Channel=call.caller_channel)
        soft = [
            e for e in ami.events("SoftHangupRequest") if get(e, "Channel") == call.caller_channel
        ]
        assert len(soft) == 1
        assert sim.channels() == []
        await ami.close()
