"""AMI frame → typed event: every event type in the recorded transcripts, malformed frames, and
hostile caller ID text."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

import pytest

from ctid.asterisk.frame import Frame, HeaderKeys, parse_lines
from ctid.asterisk.translate import READ_HEADERS, READS, TRANSLATED_EVENTS, translate
from ctid.core.events import (
    CALLER_TEXT_MAX,
    AgentCompleted,
    AgentConnected,
    AgentRang,
    AgentRingUnanswered,
    BridgeEntered,
    BridgeLeft,
    CallerAbandoned,
    CallerJoinedQueue,
    CallerLeftQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelSnapshot,
    ChannelStateChanged,
    ChannelVariableSet,
    DialEnded,
    OriginateResponded,
    QueueMemberAdded,
    QueueMemberPaused,
    QueueMemberRemoved,
    QueueMemberSnapshot,
    QueueMemberStatusChanged,
    QueueParamsSnapshot,
    QueueSummarySnapshot,
    SpyStarted,
    SpyStopped,
    Transferred,
    clean_caller_text,
)
from tests.paths import TRANSCRIPTS


def _split(raw: str) -> Frame:
    pairs: list[tuple[str, str]] = []
    for line in raw.split("\r\n"):
        if line:
            name, _, value = line.partition(":")
            pairs.append((name, value[1:] if value.startswith(" ") else value))
    return Frame(pairs)


def incoming(name: str = "*") -> Iterator[tuple[str, float, Frame]]:
    for path in sorted(TRANSCRIPTS.glob(f"{name}.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for text in fh:
                rec = json.loads(text)
                if rec["dir"] == "in" and rec["raw"].endswith("\r\n\r\n"):
                    yield path.stem, rec["t"], _split(rec["raw"])


def first(event: str, name: str = "*", **match: str) -> Frame:
    for _, _, frame in incoming(name):
        if frame.event == event and all(frame.get(k) == v for k, v in match.items()):
            return frame
    raise AssertionError(f"no {event} {match} in {name}")


EXPECTED = {
    "Newchannel": ChannelCreated,
    "Newstate": ChannelStateChanged,
    "Hangup": ChannelHungUp,
    "DialEnd": DialEnded,
    "BridgeEnter": BridgeEntered,
    "BridgeLeave": BridgeLeft,
    "QueueCallerJoin": CallerJoinedQueue,
    "QueueCallerLeave": CallerLeftQueue,
    "QueueCallerAbandon": CallerAbandoned,
    "AgentCalled": AgentRang,
    "AgentRingNoAnswer": AgentRingUnanswered,
    "AgentConnect": AgentConnected,
    "AgentComplete": AgentCompleted,
    "QueueMemberStatus": QueueMemberStatusChanged,
    "QueueMemberPause": QueueMemberPaused,
    "QueueMemberAdded": QueueMemberAdded,
    "QueueMemberRemoved": QueueMemberRemoved,
    "ChanSpyStart": SpyStarted,
    "ChanSpyStop": SpyStopped,
    "OriginateResponse": OriginateResponded,
    "CoreShowChannel": ChannelSnapshot,
    "QueueMember": QueueMemberSnapshot,
    "QueueParams": QueueParamsSnapshot,
    "QueueSummary": QueueSummarySnapshot,
}
IGNORED = {
    "FullyBooted",
    "Newexten",
    "NewCallerid",
    "NewConnectedLine",
    "LocalBridge",
    "DialBegin",
    "DialState",
    "DeviceStateChange",
    "MusicOnHoldStart",
    "MusicOnHoldStop",
    "SoftHangupRequest",
    "HangupRequest",
    "BridgeCreate",
    "BridgeDestroy",
    "CoreShowChannelsComplete",
    "QueueStatusComplete",
    "QueueSummaryComplete",
}


def test_every_recorded_event_type_translates_to_its_class() -> None:
    seen: Counter[str] = Counter()
    for name, t, frame in incoming():
        event = frame.event
        if event is None:
            assert translate(frame, t) is None  # responses are the connection's business
            continue
        seen[event] += 1
        result = translate(frame, t)
        if event == "DialEnd" and "Uniqueid" not in frame:
            assert result is None  # an Originate's own dial: no calling channel
        elif event in EXPECTED:
            assert isinstance(result, EXPECTED[event]), (name, frame)
        elif event == "VarSet":
            is_ctid = frame["Variable"].startswith("CTID_")
            assert isinstance(result, ChannelVariableSet) == is_ctid
            assert is_ctid or result is None
        else:
            assert event in IGNORED, f"unexpected event {event} in {name}"
            assert result is None
    assert set(EXPECTED) | {"VarSet"} <= set(seen), set(EXPECTED) - set(seen)
    assert set(EXPECTED) <= TRANSLATED_EVENTS


def test_channel_event_fields_and_timestamp() -> None:
    ev = translate(first("Newchannel", "answered"), 0.5)
    assert ev == ChannelCreated(
        at=1795358660.825488,
        channel="Local/4000@hotline-00000000;1",  # type: ignore[arg-type]
        uniqueid="1795358660.0",  # type: ignore[arg-type]
        linkedid="1795358660.0",  # type: ignore[arg-type]
        state=0,
        caller_num="",  # "<unknown>" is no number
        caller_name="",
        context="hotline",
        exten="4000",
    )
    hang = translate(first("Hangup", "enforced_hangup", Cause="19"), 0.0)
    assert isinstance(hang, ChannelHungUp)
    assert (hang.cause, hang.cause_txt) == (19, "User alerting, no answer")


def test_queue_events_carry_seat_and_times() -> None:
    rna = translate(first("AgentRingNoAnswer", "ring_no_answer"), 0.0)
    assert isinstance(rna, AgentRingUnanswered)
    assert rna.ring_time_s == 15.0  # RingTime: 15000 (milliseconds)
    assert (rna.interface, rna.dest_channel) == (
        "Local/seat1@phones/n",
        "Local/seat1@phones-00000003;1",
    )
    cut = translate(first("AgentRingNoAnswer", "enforced_hangup", RingTime="2000"), 0.0)
    assert isinstance(cut, AgentRingUnanswered) and cut.ring_time_s == 2.0
    conn = translate(first("AgentConnect", "answered"), 0.0)
    assert isinstance(conn, AgentConnected)
    assert (conn.hold_time_s, conn.ring_time_s, conn.queue) == (6.0, 6.0, "ordinary")
    join = translate(first("QueueCallerJoin", "answered"), 0.0)
    assert isinstance(join, CallerJoinedQueue)
    assert (join.queue, join.position, join.count, join.caller_num) == (
        "ordinary",
        1,
        1,
        "13800138000",
    )
    ab = translate(first("QueueCallerAbandon", "abandon"), 0.0)
    assert isinstance(ab, CallerAbandoned) and ab.hold_time_s == 8.0


def test_agent_complete_after_the_caller_is_gone_has_only_the_seat_leg() -> None:
    # chanspy.jsonl: the caller hung up first, so AgentComplete has no Channel/Uniqueid headers
    frame = first("AgentComplete", "chanspy")
    assert "Uniqueid" not in frame
    ev = translate(frame, 0.0)
    assert isinstance(ev, AgentCompleted)
    assert (ev.channel, ev.uniqueid) == ("", "")
    assert ev.dest_channel == "Local/seat3@phones-0000000e;1"
    assert ev.linkedid == "1795358785.26"  # from DestLinkedid
    assert (ev.talk_time_s, ev.reason) == (20.0, "agent")


def test_spy_events_name_the_exact_seat_channel() -> None:
    start = translate(first("ChanSpyStart", "chanspy"), 0.0)
    stop = translate(first("ChanSpyStop", "chanspy"), 0.0)
    assert isinstance(start, SpyStarted) and isinstance(stop, SpyStopped)
    assert start.spyee_channel == stop.spyee_channel == "Local/seat3@phones-0000000e;1"
    assert start.spyer_channel == "Local/spy1@supervisor-0000000f;1"


def test_resync_list_items() -> None:
    chan = translate(
        first("CoreShowChannel", "resync", Channel="Local/4000@hotline-00000012;2"), 9.0
    )
    assert isinstance(chan, ChannelSnapshot)
    assert chan.at == 9.0  # list items carry no Timestamp: receive time
    assert (chan.application, chan.application_data) == ("Queue", "ordinary,,,,120")
    assert (chan.duration_s, chan.bridge_id) == (4.0, "806119e1-0768-471a-8a4c-90577e75c4db")
    unbridged = translate(first("CoreShowChannel", "resync", Application="Wait"), 0.0)
    assert isinstance(unbridged, ChannelSnapshot) and unbridged.bridge_id == ""
    member = translate(first("QueueMember", "queue_ops", Name="Seat 1"), 0.0)
    assert isinstance(member, QueueMemberSnapshot)
    assert (member.interface, member.paused, member.paused_reason) == (
        "Local/seat1@phones/n",
        True,
        "lunch",
    )
    busy = translate(first("QueueMember", "resync", Name="Seat 2"), 0.0)
    assert isinstance(busy, QueueMemberSnapshot) and busy.in_call and busy.status == 2
    params = translate(first("QueueParams", "resync", Queue="ordinary"), 0.0)
    assert isinstance(params, QueueParamsSnapshot)
    assert (params.completed, params.abandoned, params.hold_time_s) == (4, 1, 11.0)


def test_queue_entry_and_transfers() -> None:
    entry = translate(
        Frame.of(
            Event="QueueEntry",
            Queue="ordinary",
            Position="2",
            Channel="PJSIP/trunk-00000001",
            Uniqueid="1.5",
            CallerIDNum="13800138000",
            CallerIDName="Zhang San",
            Wait="42",
        ),
        3.0,
    )
    assert entry is not None and entry.wait_s == 42.0  # type: ignore[union-attr]
    blind = translate(
        Frame.of(
            Event="BlindTransfer",
            Result="Success",
            TransfererChannel="PJSIP/seat1-00000002",
            TransfererUniqueid="1.2",
            TransfereeChannel="PJSIP/trunk-00000001",
            TransfereeUniqueid="1.1",
            Context="hotline",
            Extension="expert",
        ),
        0.0,
    )
    assert isinstance(blind, Transferred)
    assert (blind.kind, blind.exten, blind.transferer_channel) == (
        "blind",
        "expert",
        "PJSIP/seat1-00000002",
    )
    attended = translate(
        Frame.of(
            Event="AttendedTransfer",
            Result="Success",
            OrigTransfererChannel="PJSIP/seat1-00000002",
            SecondTransfererChannel="PJSIP/seat1-00000004",
            SecondTransfererUniqueid="2.1",
            TransfereeChannel="PJSIP/trunk-00000001",
        ),
        0.0,
    )
    assert isinstance(attended, Transferred)
    assert (attended.kind, attended.target_channel, attended.target_uniqueid) == (
        "attended",
        "PJSIP/seat1-00000004",
        "2.1",
    )


class _Recording(Frame):
    """A frame that notes, by event, every header read through `get` and the dicts of `headers`
    and `pick` (translate's only accessors)."""

    seen: ClassVar[dict[str, set[str]]] = {}

    def _note(self, name: str) -> None:
        _Recording.seen.setdefault(str(self.event), set()).add(name)

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self._note(name)
        return super().get(name, default)

    def headers(self) -> dict[str, str]:
        return _RecordingDict(self, super().headers())

    def pick(self, keys: HeaderKeys) -> dict[str, str]:
        return _RecordingDict(self, super().pick(keys))


class _RecordingDict(dict[str, str]):
    def __init__(self, frame: _Recording, headers: dict[str, str]) -> None:
        super().__init__(headers)
        self._frame = frame

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self._frame._note(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> str:
        self._frame._note(name)
        return super().__getitem__(name)


def test_reads_lists_every_header_each_handler_reads() -> None:
    # `Frame.pick` finds only the listed headers: a handler reading another would see it missing.
    _Recording.seen = {}
    for _, t, frame in incoming():
        translate(_Recording(frame.pairs), t)
    for extra in (
        Frame.of(Event="QueueEntry", Uniqueid="1"),
        Frame.of(Event="BlindTransfer"),
        Frame.of(Event="AttendedTransfer", TransferTargetChannel="x"),
        Frame.of(Event="AttendedTransfer"),
        Frame.of(Event="AgentDump", Uniqueid="1"),
        Frame.of(Event="QueueMemberPause", Interface="PJSIP/seat1", Reason="old"),
        Frame.of(Event="QueueMemberPaused", Interface="PJSIP/seat1", PausedReason="new"),
        Frame.of(Event="QueueMember", Interface="PJSIP/seat1", MemberName="Seat 1"),
        Frame.of(Event="QueueParams", Queue="support"),
        Frame.of(Event="QueueSummary", Queue="support"),
        Frame.of(Event="QueueCallerAbandon", Uniqueid="1"),
    ):
        translate(_Recording(extra.pairs), 0.0)
    assert set(_Recording.seen) == TRANSLATED_EVENTS  # every handler was run
    for event, names in _Recording.seen.items():
        assert names <= READS[event], (event, names - READS[event])
    seen = set().union(*_Recording.seen.values())
    assert seen <= READ_HEADERS
    assert {"Linkedid", "DestUniqueid", "RingTime", "Location", "Duration"} <= seen


# --------------------------------------------------------------------------- malformed frames


def test_malformed_frames_are_skipped_or_defaulted_never_raise() -> None:
    assert translate(Frame([]), 1.0) is None
    assert translate(Frame.of(Response="Success"), 1.0) is None
    assert translate(Frame.of(Event="Newchannel", Channel="PJSIP/x-00000001"), 1.0) is None
    assert translate(Frame.of(Event="AgentCalled", Uniqueid="1.1"), 1.0) is None
    assert translate(Frame.of(Event="QueueMemberStatus", Queue="q"), 1.0) is None
    odd = translate(
        Frame.of(
            Event="Newstate",
            Timestamp="yesterday",
            Uniqueid="1.1",
            ChannelState="Up",
        ),
        7.5,
    )
    assert isinstance(odd, ChannelStateChanged)
    assert (odd.at, odd.state, odd.linkedid, odd.channel) == (7.5, 0, "1.1", "")
    member = translate(
        Frame.of(
            Event="QueueMember", Location="PJSIP/a", Status="busy", Penalty="-", Paused="maybe"
        ),
        0.0,
    )
    assert isinstance(member, QueueMemberSnapshot)
    assert (member.status, member.penalty, member.paused) == (0, 0, False)
    bad_duration = translate(Frame.of(Event="CoreShowChannel", Uniqueid="1", Duration="1:xx"), 0)
    assert isinstance(bad_duration, ChannelSnapshot) and bad_duration.duration_s == 0.0
    long = translate(Frame.of(Event="CoreShowChannel", Uniqueid="1", Duration="101:02:03"), 0)
    assert isinstance(long, ChannelSnapshot) and long.duration_s == 101 * 3600 + 123


def test_fuzzed_transcript_frames_never_raise() -> None:
    rng = random.Random(1234)
    frames = [f for _, _, f in incoming() if f.event in TRANSLATED_EVENTS]
    junk = ["", "x", "-1", "1e999", "nan", "\x00\x1b[2J", "9" * 40, "::", "<unknown>"]
    translated = 0
    for frame in frames:
        for _ in range(20):
            pairs = [p for p in frame.pairs if p[0] == "Event" or rng.random() > 0.3]
            pairs = [
                (k, rng.choice(junk) if k != "Event" and rng.random() < 0.3 else v)
                for k, v in pairs
            ]
            if translate(Frame(pairs), 0.0) is not None:
                translated += 1
    assert translated > 0


# --------------------------------------------------------------------------- hostile caller text


def _caller_frame(name: str, num: str = "13800138000") -> Frame:
    frame = first("QueueCallerJoin", "answered")
    pairs = [
        (k, name if k == "CallerIDName" else num if k == "CallerIDNum" else v)
        for k, v in frame.pairs
    ]
    return Frame(pairs)


def test_markup_in_a_caller_name_is_kept_as_plain_text() -> None:
    ev = translate(_caller_frame("<img src=x onerror=alert(1)>"), 0.0)
    assert isinstance(ev, CallerJoinedQueue)
    assert ev.caller_name == "<img src=x onerror=alert(1)>"  # stored verbatim, never interpreted


def test_control_and_bidi_characters_are_removed() -> None:
    ev = translate(_caller_frame("Zhang\x00 San\x1b[31m\u202e\r\nX", "138\x07001"), 0.0)
    assert isinstance(ev, CallerJoinedQueue)
    assert ev.caller_name == "Zhang San[31m X"
    assert ev.caller_num == "138001"
    assert all(ch.isprintable() for ch in ev.caller_name)


def test_huge_caller_names_are_truncated() -> None:
    ev = translate(_caller_frame("张" * 10_000), 0.0)
    assert isinstance(ev, CallerJoinedQueue)
    assert ev.caller_name == "张" * CALLER_TEXT_MAX


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Zhang San", "Zhang San"),
        ("<unknown>", ""),
        ("  padded  ", "padded"),
        ("\u202eevil", "evil"),
        ("tab\there", "tab here"),
        ("a" * 500, "a" * CALLER_TEXT_MAX),
        ("王\u3000五", "王 五"),
    ],
)
def test_clean_caller_text(raw: str, clean: str) -> None:
    assert clean_caller_text(raw) == clean


def test_picking_headers_from_the_text_agrees_with_splitting_every_line() -> None:
    # The same frames translated twice: read off the wire (`Frame.pick` on the raw text) and built
    # from their pairs (every line split). Plus the forms `pick` must leave to the full split.
    raws = [
        rec["raw"].rstrip("\r\n")
        for path in sorted(TRANSCRIPTS.glob("**/*.jsonl"))
        for rec in map(json.loads, path.read_text(encoding="utf-8").splitlines())
        if rec["dir"] == "in" and rec["raw"].startswith("Event: ")
    ]
    hostile = [
        "Event: Newstate\r\nChannel:PJSIP/seat1-1\r\nUniqueid: 1.1\r\nChannelState: 6",
        "Event: Newstate\r\nUniqueid:1.1\r\nUniqueid: 2.2\r\nChannelState: 6",
        "Event: Newstate\r\nUniqueid: 1.1\r\nUniqueid: 2.2\r\nChannelState:6: x\r\nChannelState: 5",
        "Event: Hangup\r\nUniqueid: 1.1\r\nCause: \r\nCause-txt:",
        "Event: QueueMemberStatus\r\nInterface: PJSIP/seat1\r\nPaused: 1\r\nPausedReason: a: b",
        "Event: AgentCalled\r\nUniqueid: 1.1\r\nDestUniqueid: 1.2\r\nQueue: q\r\nX-Queue: not",
        "Event: Newchannel\r\nUniqueid: 1.1\r\nCallerIDName: a\rb\r\nChannelState: 4\r",
        "Event: Newchannel\r\nUniqueid: 1.1\r\nChannelStateDesc: Ring\r\nChannelState: 4",
        "Event: Newstate\r\nUniqueid: 1.1\r\nChannel: \r\nChannelState: \r\nLinkedid: ",
    ]
    for raw in raws + hostile:
        wire = Frame.from_chunk(raw)
        split = Frame(parse_lines(raw))
        assert translate(wire, 5.0) == translate(split, 5.0), raw
