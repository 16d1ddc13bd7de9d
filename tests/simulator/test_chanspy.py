"""ChanSpy as Asterisk does it: the first argument is a channel-name prefix."""

from __future__ import annotations

import asyncio

import pytest

from ctid.asterisk.simulator import (
    MemberSpec,
    PbxSimulator,
    QueueSpec,
    SeatSpec,
    SimulatorConfig,
    lab_config,
    pjsip_lab_config,
)
from tests.simulator.support import AmiTestClient, IvrServer, get, until

pytestmark = pytest.mark.looptime


def seat10_config(agi_port: int) -> SimulatorConfig:
    seats = tuple(SeatSpec(f"seat{n}", f"PJSIP/seat{n}", f"Seat {n}") for n in (1, 10))
    return SimulatorConfig(
        queues=(QueueSpec("ordinary", tuple(MemberSpec(s.interface, s.name) for s in seats)),),
        seats=seats,
        agi_url=f"agi://127.0.0.1:{agi_port}/ivr",
    )


async def spy(ami: AmiTestClient, channel: str, data: str) -> list[tuple[str, str]]:
    resp = await ami.action(
        Action="Originate",
        Channel=channel,
        Application="ChanSpy",
        Data=data,
        CallerID="Supervisor <8000>",
        Async="true",
    )
    assert get(resp, "Response") == "Success"
    return await ami.wait_event("OriginateResponse")


async def test_spy_on_exact_seat_channel_until_it_hangs_up() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat3", answer_after_s=2, talk_s=20)
        call = sim.place_call("13800138000", "Zhang San", digits="2")
        await asyncio.wait_for(call.answered.wait(), 30)
        connect = await ami.wait_event("AgentConnect")
        agent_leg = get(connect, "DestChannel") or ""
        orig = await spy(ami, "Local/spy1@supervisor", f"{agent_leg},qE")
        assert get(orig, "Application") == "ChanSpy"
        start = await ami.wait_event("ChanSpyStart")
        assert get(start, "SpyeeChannel") == agent_leg
        assert get(start, "SpyerChannel") == get(orig, "Channel")
        assert get(start, "SpyeeLinkedid") == call.linkedid
        await asyncio.wait_for(call.ended.wait(), 60)
        stop = await ami.wait_event("ChanSpyStop", 5)
        assert get(stop, "SpyeeChannel") == agent_leg
        # option E: ChanSpy returns, the supervisor's channel hangs up
        await ami.wait_event("Hangup", 5, Channel=get(orig, "Channel") or "")
        done = await ami.wait_event("AgentComplete")
        assert get(done, "Reason") == "agent"
        assert get(done, "Channel") is None  # the caller was gone first, as in chanspy.jsonl
        await until(lambda: sim.channels() == [], 5, "no channels left")
        await ami.close()


async def test_chanspy_argument_is_a_prefix_like_asterisk() -> None:
    async with IvrServer() as ivr, PbxSimulator(seat10_config(ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        await ami.action(Action="QueuePause", Interface="PJSIP/seat1", Paused="true")
        sim.set_phone("seat10", answer_after_s=1, talk_s=30)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.answered.wait(), 30)
        assert call.seat == "seat10"
        # "spy on seat 1" by interface name: Asterisk matches the prefix, so seat 10 is heard
        await spy(ami, "PJSIP/sup1", "PJSIP/seat1,qE")
        start = await ami.wait_event("ChanSpyStart")
        assert (get(start, "SpyeeChannel") or "").startswith("PJSIP/seat10-")
        # the exact channel name is the only safe argument
        await spy(ami, "Local/spy1@supervisor", f"{call.agent_channel},qE")
        exact = await ami.wait_for(
            lambda f: (
                get(f, "Event") == "ChanSpyStart"
                and (get(f, "SpyerChannel") or "").startswith("Local/spy1@")
            )
        )
        assert get(exact, "SpyeeChannel") == call.agent_channel
        call.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)
        await ami.close()


async def test_spy_with_s_option_and_no_match_exits() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        orig = await spy(ami, "Local/spy1@supervisor", "PJSIP/nobody,qS")
        await ami.wait_event("Hangup", 5, Channel=get(orig, "Channel") or "")
        assert ami.events("ChanSpyStart") == []
        await until(lambda: sim.channels() == [], 5, "no channels left")
        await ami.close()


async def test_hanging_up_the_spy_stops_it() -> None:
    async with IvrServer() as ivr, PbxSimulator(lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        sim.set_phone("seat1", answer_after_s=1, talk_s=30)
        call = sim.place_call("13800138000", "Zhang San")
        await asyncio.wait_for(call.answered.wait(), 30)
        orig = await spy(ami, "Local/spy1@supervisor", f"{call.agent_channel},q")
        await ami.wait_event("ChanSpyStart")
        spyer = get(orig, "Channel") or ""
        await ami.action(Action="Hangup", Channel=spyer)
        stop = await ami.wait_event("ChanSpyStop")
        assert get(stop, "SpyerChannel") == spyer
        await ami.wait_event("Hangup", Channel=spyer)
        assert not call.ended.is_set()
        assert call.caller_channel in sim.channels()
        call.hangup()
        await asyncio.wait_for(call.ended.wait(), 10)
        await ami.close()


@pytest.mark.parametrize("ends_by", ["agent", "caller"])
async def test_a_seat_keeps_ringing_after_any_number_of_listen_ins(ends_by: str) -> None:
    """`ctid demo`: one Listen left seat 1 "in use" for good. Every kind of listen-in end must
    leave the seat's device idle so the queue rings it again."""
    async with IvrServer() as ivr, PbxSimulator(pjsip_lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        await ami.action(Action="QueuePause", Interface="PJSIP/seat2", Paused="true")
        modes = ["uqE", "uqEw", "uqEB", "uqE"]
        for n, options in enumerate(modes):
            agent_talk = 6.0 if ends_by == "agent" else None
            sim.set_phone("seat1", answer_after_s=1, talk_s=agent_talk, sends_audio=n % 2 == 0)
            call = sim.place_call(
                "13800138000",
                "Zhang San",
                hangup_after_s=None if ends_by == "agent" else 9.0,
                sends_audio=False,
            )
            await asyncio.wait_for(call.answered.wait(), 30)
            assert call.rang == ["seat1"] and call.seat == "seat1"
            orig = await spy(ami, "PJSIP/sup1", f"{call.agent_channel},{options}")
            spyer = get(orig, "Channel") or ""
            await ami.wait_for(
                lambda f, spyer=spyer: (
                    get(f, "Event") == "ChanSpyStart" and get(f, "SpyerChannel") == spyer
                )
            )
            if n % 2 == 0:  # stop it (ignored until the call ends when the call is silent)
                await ami.action(Action="Hangup", Channel=spyer)
            await asyncio.wait_for(call.ended.wait(), 30)
            await ami.wait_event("Hangup", 10, Channel=spyer)
            await until(lambda: sim.channels() == [], 5, "every channel gone")
            await until(
                lambda: next(m.status for m in sim.queue_members("ordinary")) == 1,
                5,
                "seat1 NOT_INUSE again",
            )
        await ami.close()


def names(frames: list[list[tuple[str, str]]], *events: str) -> list[tuple[str, str]]:
    """(event, channel) of the given events, in order."""
    return [
        (get(f, "Event") or "", get(f, "Channel") or get(f, "LocalTwoChannel") or "")
        for f in frames
        if get(f, "Event") in events
    ]


@pytest.mark.parametrize("audio", [False, True])
async def test_the_phone_dials_a_local_whose_second_half_spies_and_is_freed_at_once(
    audio: bool,
) -> None:
    """contrib's [ctid-spy]: `spy<id>@ctid-spy` Dials `Local/spy<id>@ctid-spy-run/n`; ChanSpy runs
    on `;2`. A Hangup of the phone frees it at once; on a silent call `;2` lingers until the
    call ends (app_chanspy waits in ast_audiohook_detach), with audio it ends right away."""
    async with IvrServer() as ivr, PbxSimulator(pjsip_lab_config(agi_port=ivr.port)) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        await ami.action(Action="QueuePause", Interface="PJSIP/seat2", Paused="true")
        sim.set_phone("seat1", answer_after_s=1, sends_audio=audio)
        call = sim.place_call("13800138000", "Zhang San", sends_audio=audio)
        await asyncio.wait_for(call.answered.wait(), 30)
        resp = await ami.action(
            Action="Originate",
            Channel="PJSIP/sup1",
            Context="ctid-spy",
            Exten="spy7",
            Priority="1",
            Variable=f"__CTID_SPY_CHANNEL={call.agent_channel},__CTID_SPY_OPTIONS=uqE",
            Async="true",
        )
        assert get(resp, "Response") == "Success"
        orig = await ami.wait_event("OriginateResponse")
        phone = get(orig, "Channel") or ""
        assert phone.startswith("PJSIP/sup1-") and get(orig, "Response") == "Success"
        start = await ami.wait_event("ChanSpyStart")
        two = get(start, "SpyerChannel") or ""
        one = two[:-1] + "1"
        assert two.startswith("Local/spy7@ctid-spy-run-") and two.endswith(";2")
        assert get(start, "SpyeeChannel") == call.agent_channel
        frames = ami.events()
        assert names(frames, "Newchannel", "LocalBridge", "DialBegin", "DialEnd")[-5:] == [
            ("Newchannel", one),
            ("Newchannel", two),
            ("LocalBridge", two),
            ("DialBegin", phone),
            ("DialEnd", phone),
        ]
        [local] = ami.events("LocalBridge")
        assert (get(local, "LocalOneChannel"), get(local, "LocalOptimization")) == (one, "No")
        [begin] = [f for f in ami.events("DialBegin") if get(f, "Channel") == phone]
        assert (get(begin, "DestChannel"), get(begin, "DialString")) == (
            one,
            "spy7@ctid-spy-run/n",
        )
        entered = [f for f in ami.events("BridgeEnter") if get(f, "Channel") in (phone, one)]
        assert len(entered) == 2 and len({get(f, "BridgeUniqueid") for f in entered}) == 1

        await ami.action(Action="Hangup", Channel=phone)
        await ami.wait_event("Hangup", 1, Channel=phone)
        assert (
            ami.events("HangupRequest") and get(ami.events("HangupRequest")[-1], "Channel") == two
        )
        assert phone not in sim.channels() and one not in sim.channels()
        if audio:
            await ami.wait_event("Hangup", 1, Channel=two)
            assert get(ami.events("ChanSpyStop")[-1], "SpyerChannel") == two
        else:
            assert two in sim.channels() and ami.events("ChanSpyStop") == []
        assert not call.ended.is_set() and call.agent_channel in sim.channels()
        call.hangup()
        await asyncio.wait_for(call.ended.wait(), 30)
        await ami.wait_event("Hangup", 10, Channel=two)
        await until(lambda: sim.channels() == [], 5, "every channel gone")
        await until(
            lambda: next(m.status for m in sim.queue_members("ordinary")) == 1,
            5,
            "seat1 NOT_INUSE again",
        )
        await ami.close()
