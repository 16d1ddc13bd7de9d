"""Events dropped by name before a Frame is built: the set comes from translate's own table, every
handled name still arrives, an ignored one never does, and list actions still get their frames."""

from __future__ import annotations

import asyncio
import random

from ctid.asterisk.ami import AmiConnection
from ctid.asterisk.ami_protocol import AmiFrameParser
from ctid.asterisk.translate import EVENT_FILTER, TRANSLATED_EVENTS, translate
from tests.asterisk.amifake import (
    BANNER,
    TRANSCRIPTS,
    WAIT,
    FakeAmi,
    Recorder,
    config,
    parse_frame,
    reply_block,
    retarget,
    running,
    transcript,
)

IGNORED = ("Newexten", "DeviceStateChange", "RTCPSent", "FullyBooted", "VarSetX", "newchannel")


def stream_of(names: list[str]) -> bytes:
    # Every frame carries a ctid variable, so the VarSet in the list is wanted by content too.
    return b"".join(
        f"Event: {n}\r\nUniqueid: {i}.1\r\nVariable: CTID_ROUTE\r\n\r\n".encode()
        for i, n in enumerate(names)
    )


def mixed_names() -> list[str]:
    """Every handled name, each between ignored ones."""
    names: list[str] = []
    for i, handled in enumerate(sorted(TRANSLATED_EVENTS)):
        names += [IGNORED[i % len(IGNORED)], handled]
    return names


def test_dropping_by_name_loses_no_event_of_the_recordings() -> None:
    # Every recorded frame whose name is outside the set translates to nothing anyway, and every
    # name the set keeps that the recordings hold does become an event somewhere.
    became: set[str] = set()
    for path in sorted(TRANSCRIPTS.glob("**/*.jsonl")):
        for rec in transcript(str(path.relative_to(TRANSCRIPTS))):
            raw = rec["raw"]
            if rec["dir"] != "in" or not raw.startswith("Event: "):
                continue
            frame = parse_frame(raw)
            event = translate(frame, 0.0)
            if frame.event not in TRANSLATED_EVENTS:
                assert event is None, frame.event
            elif event is not None:
                became.add(str(frame.event))
    assert {"Newchannel", "Hangup", "AgentCalled", "AgentConnect", "VarSet"} <= became
    for name in IGNORED:
        assert name not in TRANSLATED_EVENTS


def test_parser_builds_only_wanted_events_and_counts_the_rest() -> None:
    names = mixed_names()
    parser = AmiFrameParser()
    frames = parser.feed(BANNER + stream_of(names), EVENT_FILTER)
    assert [f.event for f in frames] == sorted(TRANSLATED_EVENTS)
    assert parser.ignored == len(names) - len(TRANSLATED_EVENTS)
    # Responses and frames whose first line is not `Event:` are never dropped.
    more = parser.feed(
        b"Response: Success\r\nActionID: 1\r\n\r\nUniqueid: 2\r\nEvent: Newexten\r\n\r\n",
        EVENT_FILTER,
    )
    assert [(f.response, f.get("Uniqueid")) for f in more] == [("Success", None), (None, "2")]
    assert parser.ignored == len(names) - len(TRANSLATED_EVENTS)


def test_without_a_wanted_set_every_event_is_built() -> None:
    names = mixed_names()
    parser = AmiFrameParser()
    assert [f.event for f in parser.feed(BANNER + stream_of(names))] == names
    assert parser.ignored == 0


async def test_connection_delivers_every_handled_name_and_counts_the_ignored() -> None:
    rec = Recorder()
    names = mixed_names()
    async with FakeAmi() as fake:
        conn = AmiConnection(
            config(fake.port),
            rec.on_frame,
            on_login=rec.on_login,
            on_link_change=rec.on_link_change,
            rng=random.Random(7),
            events=EVENT_FILTER,
        )
        async with running(conn):
            server = await fake.next_conn()
            await conn.wait_logged_in(WAIT)
            await server.send(stream_of(names))  # one write, one (or a few) reads
            got = []
            while len(got) < len(TRANSLATED_EVENTS):
                frame = await rec.next_frame()
                if frame.event != "FullyBooted":  # sent while the Login was still in flight
                    got.append(frame)
            assert [f.event for f in got] == sorted(TRANSLATED_EVENTS)
            assert all(f.event in TRANSLATED_EVENTS for f in got)
            # Each handled frame still translates (or is judged) on its own headers.
            for frame in got:
                translate(frame, 0.0)
            # A handled fence after more ignored events: nothing ignored slipped in before it.
            await server.send(stream_of(["Newexten", "DeviceStateChange", "Hangup"]))
            fence = await rec.next_frame()
            assert fence.event == "Hangup"
            assert rec.frames.empty()


async def test_list_action_gets_its_unhandled_end_event_while_filtering() -> None:
    # CoreShowChannelsComplete is no translated event, yet it must end the action's list.
    recorded_id, block = reply_block("resync.jsonl", "CoreShowChannels", 0)
    assert "CoreShowChannelsComplete" not in TRANSLATED_EVENTS
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = AmiConnection(
            config(fake.port),
            rec.on_frame,
            on_login=rec.on_login,
            on_link_change=rec.on_link_change,
            rng=random.Random(7),
            events=EVENT_FILTER,
        )
        async with running(conn):
            server = await fake.next_conn()
            await conn.wait_logged_in(WAIT)
            task = asyncio.create_task(conn.list_action("CoreShowChannels"))
            sent = await server.next_action()
            for raw in block:
                await server.send(retarget(raw, recorded_id, sent.action_id))
            items = await asyncio.wait_for(task, WAIT)
            assert items and all(f.event == "CoreShowChannel" for f in items)


def test_content_filter_keeps_every_frame_translate_keeps() -> None:
    # Every recorded event frame, fed alone to a filtering parser: whatever translate makes an
    # event of (read unfiltered) is built, and the VarSets it drops mostly are not.
    dropped_varsets = 0
    for path in sorted(TRANSCRIPTS.glob("**/*.jsonl")):
        for rec in transcript(str(path.relative_to(TRANSCRIPTS))):
            raw = rec["raw"]
            if rec["dir"] != "in" or not raw.startswith("Event: "):
                continue
            parser = AmiFrameParser()
            built = parser.feed(BANNER + raw.encode("utf-8"), EVENT_FILTER)
            if translate(parse_frame(raw), 0.0) is not None:
                assert len(built) == 1, raw
            elif not built and raw.startswith("Event: VarSet\r\n"):
                dropped_varsets += 1
    assert dropped_varsets > 500


def test_varset_is_built_only_when_it_can_carry_a_ctid_variable() -> None:
    def varset(variable_line: str, value: str = "x") -> bytes:
        return f"Event: VarSet\r\nChannel: PJSIP/seat1-0001\r\n{variable_line}\r\nValue: {value}\r\nUniqueid: 1.1\r\n\r\n".encode()

    parser = AmiFrameParser()
    frames = parser.feed(
        BANNER
        + varset("Variable: BRIDGEPEER")
        + varset("Variable: CTID_ROUTE")
        + varset("Variable:CTID_ROUTE")
        + varset("Variable:  CTID_ROUTE")  # value " CTID_ROUTE": not a ctid variable
        + varset("Variable: ctid_route")
        + varset("Variable: DIALSTATUS", value="CTID_X"),  # the prefix mentioned, not a name
        EVENT_FILTER,
    )
    # Built: every frame that mentions the prefix (one cheap look per VarSet on the wire);
    # translate judges them, and only the two ctid variables become events.
    assert [f.get("Variable") for f in frames] == [
        "CTID_ROUTE",
        "CTID_ROUTE",
        " CTID_ROUTE",
        "DIALSTATUS",
    ]
    assert parser.ignored == 2
    assert [translate(f, 0.0) is not None for f in frames] == [True, True, False, False]
    # A caller's text cannot smuggle a ctid variable past the filter's judgement either:
    # a kept frame is still judged by translate on its first Variable header.
    odd = parser.feed(varset("Variable: BRIDGEPEER\r\nCallerIDName: x\r\nVariable: CTID_X"))
    assert [translate(f, 0.0) for f in odd] == [None]
