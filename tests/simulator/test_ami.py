"""The simulator's AMI server: login, permissions, event filtering, errors, robustness."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from ctid.asterisk.simulator import AmiUser, PbxSimulator, lab_config
from ctid.asterisk.simulator.ami_server import parse_classes
from tests.simulator.support import AmiTestClient, get

pytestmark = pytest.mark.looptime


async def test_login_success_and_fully_booted() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        resp = await ami.login(sim.ami_port)
        assert ami.banner == b"Asterisk Call Manager/11.0.0\r\n"
        assert get(resp, "Message") == "Authentication accepted"
        booted = await ami.wait_event("FullyBooted")
        assert get(booted, "Privilege") == "system,all"
        assert get(booted, "Status") == "Fully Booted"
        await ami.close()


async def test_user_without_system_read_never_gets_fully_booted() -> None:
    cfg = replace(
        lab_config(),
        users=(AmiUser("ctid", "ctidlab", parse_classes("call,agent,dialplan")),),
    )
    async with PbxSimulator(cfg) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        pong = await ami.action(Action="Ping")
        assert get(pong, "Ping") == "Pong"
        assert ami.events("FullyBooted") == []
        await ami.close()


async def test_bad_secret_answered_after_a_second_then_disconnected() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.connect(sim.ami_port)
        start = ami.now()
        ami.send(Action="Login", ActionID="lab-1", Username="ctid", Secret="wrong")
        await asyncio.wait_for(ami.eof.wait(), 5)
        assert ami.frames[0][1] == [
            ("Response", "Error"),
            ("ActionID", "lab-1"),
            ("Message", "Authentication failed"),
        ]
        assert ami.frames[0][0] - start == pytest.approx(1.0, abs=0.05)
        await ami.close()


async def test_actions_before_login_are_denied() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.connect(sim.ami_port)
        resp = await ami.action(Action="QueueStatus")
        assert (get(resp, "Response"), get(resp, "Message")) == ("Error", "Permission denied")
        await ami.close()


async def test_unknown_and_missing_action() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        resp = await ami.action(Action="NoSuchAction", ActionID="x-1")
        assert resp == [
            ("Response", "Error"),
            ("ActionID", "x-1"),
            (
                "Message",
                "Invalid/unknown command: NoSuchAction. "
                "Use Action: ListCommands to show available commands.",
            ),
        ]
        ami.send(ActionID="x-2", Foo="bar")
        missing = await ami.wait_for(lambda f: get(f, "ActionID") == "x-2")
        assert get(missing, "Message") == "Missing action in request"
        names = [name for name, _ in sim.actions_received]
        assert names == ["Login", "NoSuchAction", ""]
        assert sim.actions_received[1][1]["ActionID"] == "x-1"
        await ami.close()


async def test_events_are_filtered_by_read_class() -> None:
    cfg = replace(
        lab_config(),
        users=(
            AmiUser("ctid", "ctidlab", parse_classes("system,call,agent,dialplan")),
            AmiUser("agents", "pw", parse_classes("agent")),
        ),
    )
    async with PbxSimulator(cfg) as sim:
        full, agents_only, quiet = AmiTestClient(), AmiTestClient(), AmiTestClient()
        await full.login(sim.ami_port)
        await agents_only.login(sim.ami_port, "agents", "pw")
        await quiet.connect(sim.ami_port)
        await quiet.action(Action="Login", Username="ctid", Secret="ctidlab", Events="off")
        await full.action(Action="QueuePause", Interface="Local/seat1@phones/n", Paused="1")
        await full.wait_event("QueueMemberPause")
        await agents_only.wait_event("QueueMemberPause")
        await full.wait_event("DeviceStateChange")
        await quiet.action(Action="Ping")
        assert agents_only.events("DeviceStateChange") == []
        assert quiet.events() == []
        for client in (full, agents_only, quiet):
            await client.close()


async def test_malformed_input_never_kills_the_session() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        ami.send_raw(b"\xff\xfe garbage without colon\r\n\r\n")
        ami.send_raw(b"X" * 5000 + b"\r\n\r\n")
        ami.send_raw(b"Action: Ping\nActionID: lf-only\n\n")
        ami.send_raw(b"action: ping\r\nactionid: lower\r\n\r\n")
        ami.send_raw(b"Action: Originate\r\nActionID: o1\r\n\r\n")
        ami.send_raw(b"Action: Originate\r\nChannel: Local/4000@hotline\r\nPriority: x\r\n\r\n")
        ami.send_raw(b"Action: Hangup\r\nActionID: h1\r\nChannel: Nope/1\r\n\r\n")
        lf = await ami.wait_for(lambda f: get(f, "ActionID") == "lf-only")
        assert get(lf, "Ping") == "Pong"
        low = await ami.wait_for(lambda f: get(f, "ActionID") == "lower")
        assert get(low, "Response") == "Success"
        o1 = await ami.wait_for(lambda f: get(f, "ActionID") == "o1")
        assert get(o1, "Message") == "Channel not specified"
        h1 = await ami.wait_for(lambda f: get(f, "ActionID") == "h1")
        assert get(h1, "Message") == "No such channel"
        pong = await ami.action(Action="Ping")
        assert get(pong, "Response") == "Success"
        await ami.close()


async def test_logoff_says_goodbye_and_closes() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        resp = await ami.action(Action="Logoff")
        assert (get(resp, "Response"), get(resp, "Message")) == (
            "Goodbye",
            "Thanks for all the fish.",
        )
        await asyncio.wait_for(ami.eof.wait(), 2)
        await ami.close()


async def test_variables_and_astdb() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        assert get(await ami.action(Action="Setvar", Variable="G", Value="1"), "Message") == (
            "Variable Set"
        )
        got = await ami.action(Action="Getvar", Variable="G")
        assert (get(got, "Variable"), get(got, "Value")) == ("G", "1")
        nochan = await ami.action(Action="Getvar", Channel="Local/x-1;1", Variable="A")
        assert get(nochan, "Message") == "No such channel"
        put = await ami.action(Action="DBPut", Family="answer", Key="seat1", Val="6")
        assert get(put, "Message") == "Updated database successfully"
        db = await ami.action(Action="DBGet", Family="answer", Key="seat1")
        assert get(db, "EventList") == "start"
        value = await ami.wait_event("DBGetResponse")
        assert get(value, "Val") == "6"
        assert sim.engine.pbx.phone("seat1").answer_after_s == 6.0
        deleted = await ami.action(Action="DBDel", Family="answer", Key="seat1")
        assert get(deleted, "Message") == "Key deleted successfully"
        again = await ami.action(Action="DBDel", Family="answer", Key="seat1")
        assert get(again, "Message") == "Database entry could not be deleted"
        await ami.close()


async def test_originate_to_unknown_destination_fails_async() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        resp = await ami.action(
            Action="Originate", Channel="SIP/nowhere", Application="Wait", Data="1", Async="yes"
        )
        assert get(resp, "Message") == "Originate successfully queued"
        failed = await ami.wait_event("OriginateResponse")
        assert (get(failed, "Response"), get(failed, "Reason")) == ("Failure", "0")
        sync = await ami.action(Action="Originate", Channel="SIP/nowhere", Exten="1")
        assert (get(sync, "Response"), get(sync, "Message")) == ("Error", "Originate failed")
        await ami.close()


async def test_background_load_rate() -> None:
    async with PbxSimulator(lab_config()) as sim:
        ami = AmiTestClient()
        await ami.login(sim.ami_port)
        before = len(ami.frames)
        sim.start_background_load(5000)
        await asyncio.sleep(1.0)
        sim.stop_background_load()
        pong = await ami.action(Action="Ping")
        assert get(pong, "Ping") == "Pong"
        got = len(ami.frames) - before - 1
        assert 4900 <= got <= 5100
        await ami.close()
