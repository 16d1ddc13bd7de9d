"""The queue_log reader: the recorded Asterisk 22 files give the calls their scenarios describe;
hostile bytes cost one line; rotation, truncation and half-written lines are followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctid.tickets.queue_log import (
    CallAssembler,
    LogPosition,
    QueueLogError,
    parse_line,
    read_calls,
)
from tests.paths import TRANSCRIPTS

PJSIP = TRANSCRIPTS / "pjsip"


def calls_of(name: str) -> list[tuple[str, str, list[tuple[str, int | None]]]]:
    result = read_calls(str(PJSIP / f"{name}.queue_log"), None)
    assert result.bad_lines == 0
    return [(c.key, c.outcome, [(leg.agent, leg.talk_s) for leg in c.legs]) for c in result.calls]


def test_connect_and_complete_fields_follow_app_queue() -> None:
    line = parse_line(b"1796492747|1796492741.0|ordinary|Seat 1|CONNECT|4|1796492743.1|4\n")
    assert (line.epoch, line.callid, line.queue, line.agent, line.event) == (
        1796492747,
        "1796492741.0",
        "ordinary",
        "Seat 1",
        "CONNECT",
    )
    assert line.data == ("4", "1796492743.1", "4")
    (call,) = read_calls(str(PJSIP / "pjsip_answered.queue_log"), None).calls
    leg = call.legs[0]
    assert (leg.hold_s, leg.ring_s, leg.talk_s, leg.end_event) == (4, 4, 10, "COMPLETECALLER")
    assert (call.caller_number, call.entered_at, call.ended_at) == (
        "13800138000",
        1796492743,
        1796492757,
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("pjsip_answered", [("1796492741.0@1796492743", "answered", [("Seat 1", 10)])]),
        ("pjsip_agi_down", [("1796492945.0@1796492945", "answered", [("Seat 1", 11)])]),
        ("pjsip_missing_prompt", [("1796492963.0@1796492966", "answered", [("Seat 1", 11)])]),
        ("pjsip_abandon_in_queue", [("1796492934.0@1796492935", "abandoned_in_queue", [])]),
        ("pjsip_ring_cut_client_first", [("1796492762.0@1796492763", "answered", [("Seat 2", 8)])]),
        (
            "pjsip_ring_timeout_queue_first",
            [("1796492794.0@1796492795", "answered", [("Seat 2", 9)])],
        ),
        ("pjsip_spy_silent", [("1796492854.0@1796492856", "answered", [("Seat 1", 18)])]),
        ("pjsip_spy_rtp", [("1796492880.0@1796492882", "answered", [("Seat 1", 18)])]),
        ("pjsip_static_member_ops", [("1796492826.0@1796492828", "answered", [("Seat 1", 20)])]),
        (
            "pjsip_transfer_redirect",
            [("1796492906.0@1796492908", "answered", [("Seat 1", 19), ("Seat 3", 11)])],
        ),
        (
            "pjsip_pbx_restart",
            [
                # Killed mid-call: CONNECT, then QUEUESTART. No talk time is made up.
                ("1796492983.2@1796492985", "lost_by_pbx", [("Seat 2", None)]),
                ("1796492994.0@1796492996", "answered", [("Seat 1", 8)]),
            ],
        ),
        ("pjsip_external_pause", []),
    ],
)
def test_each_recording_gives_its_scenarios_outcome(
    name: str, expected: list[tuple[str, str, list[tuple[str, int | None]]]]
) -> None:
    assert calls_of(name) == expected


def test_abandon_and_ring_details() -> None:
    (call,) = read_calls(str(PJSIP / "pjsip_abandon_in_queue.queue_log"), None).calls
    assert call.wait_s == 5
    assert [(r.agent, r.ring_ms, r.outcome) for r in call.rings] == [
        ("Seat 1", 4862, "caller_left")
    ]
    (cut,) = read_calls(str(PJSIP / "pjsip_ring_cut_client_first.queue_log"), None).calls
    assert [(r.agent, r.ring_ms, r.outcome) for r in cut.rings] == [("Seat 1", 15000, "no_answer")]


def test_a_reused_uniqueid_after_queuestart_is_another_call() -> None:
    asm = CallAssembler()
    lines = [
        "100|1.0|q|NONE|ENTERQUEUE||111|1",
        "102|1.0|q|Seat 1|CONNECT|2|1.1|2",
        "150|NONE|NONE|NONE|QUEUESTART|",
        "160|1.0|q|NONE|ENTERQUEUE||222|1",
        "163|1.0|q|NONE|ABANDON|1|1|3",
    ]
    out = [c for raw in lines for c in asm.feed(parse_line(raw))]
    assert [(c.key, c.caller_number, c.outcome) for c in out] == [
        ("1.0@100", "111", "lost_by_pbx"),
        ("1.0@160", "222", "abandoned_in_queue"),
    ]
    assert out[0].legs[0].talk_s is None


def test_transfer_events_end_the_leg_with_app_queues_fields() -> None:
    asm = CallAssembler()
    lines = [
        "100|7.0|q|NONE|ENTERQUEUE||111|1",
        "103|7.0|q|Seat 1|CONNECT|3|7.1|3",
        "130|7.0|q|Seat 1|BLINDTRANSFER|2001|phones|3|27|1",
        "200|8.0|q|NONE|ENTERQUEUE||222|1",
        "201|8.0|q|Seat 2|CONNECT|1|8.1|1",
        "240|8.0|q|Seat 2|ATTENDEDTRANSFER|LINK|PJSIP/a-1|PJSIP/b-2|1|39|1",
        "300|9.0|q|NONE|ENTERQUEUE||333|1",
        "330|9.0|q|NONE|EXITWITHTIMEOUT|1|1|30",
    ]
    out = [c for raw in lines for c in asm.feed(parse_line(raw))]
    assert [(c.outcome, c.legs[0].talk_s if c.legs else None, c.transfer_target) for c in out] == [
        ("answered", 27, "2001@phones"),
        ("answered", 39, "LINK|PJSIP/a-1|PJSIP/b-2"),
        ("unanswered_timeout", None, None),
    ]
    assert out[2].wait_s == 30


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not a line",
        b"abc|1.0|q|NONE|ENTERQUEUE||1|1",
        b"1|1.0|q|NONE|ENTER\xffQUEUE||1|1",
        b"1|1.0|q|NONE",
        b"9" * 9000,
    ],
)
def test_junk_is_refused_with_a_clear_error(raw: bytes) -> None:
    with pytest.raises(QueueLogError):
        parse_line(raw)


def test_hostile_bytes_cost_one_line_each_and_never_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "queue_log"
    good = (PJSIP / "pjsip_answered.queue_log").read_bytes().splitlines(keepends=True)
    path.write_bytes(
        good[0]
        + b"\x00\x01\xff\xfe garbage \r\n"
        + b"1796492745|"
        + b"x" * 20000
        + b"\n"  # over-long
        + "1796492746|1796492741.0|ordinary|张三|RINGNOANSWER|15000\n".encode()
        + b"\xff\xff|||||\n"
        + good[1]
        + good[2]
    )
    result = read_calls(str(path), None)
    assert result.bad_lines == 3
    (call,) = result.calls
    assert (call.outcome, call.legs[0].talk_s, call.rings[0].agent) == ("answered", 10, "张三")
    assert result.position.offset == path.stat().st_size


def test_a_half_written_line_waits_and_an_open_call_is_re_read(tmp_path: Path) -> None:
    path = tmp_path / "queue_log"
    lines = (PJSIP / "pjsip_answered.queue_log").read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + lines[1] + lines[2][:10])
    first = read_calls(str(path), None)
    # The call is still open: the position stays at its ENTERQUEUE, so a restart re-reads it.
    assert first.calls == [] and first.position.offset == 0
    with path.open("ab") as fh:
        fh.write(lines[2][10:])
    second = read_calls(str(path), first.position)
    assert [c.outcome for c in second.calls] == ["answered"]
    assert second.position == LogPosition(path.stat().st_ino, path.stat().st_size)


def test_truncation_and_rotation_start_again_at_zero(tmp_path: Path) -> None:
    path = tmp_path / "queue_log"
    answered = (PJSIP / "pjsip_answered.queue_log").read_bytes()
    abandon = (PJSIP / "pjsip_abandon_in_queue.queue_log").read_bytes()
    path.write_bytes(answered + answered)
    pos = read_calls(str(path), None).position
    path.write_bytes(abandon)  # truncated in place (copytruncate): same inode, smaller
    truncated = read_calls(str(path), pos)
    assert truncated.restarted == "truncated"
    assert [c.outcome for c in truncated.calls] == ["abandoned_in_queue"]
    # Rotation: the old file is renamed (with a line the reader had not seen yet), a new file
    # starts; the tail of the old one is read first.
    old_pos = truncated.position
    with path.open("ab") as fh:
        fh.write(answered)
    os.rename(path, tmp_path / "queue_log.1")
    path.write_bytes(abandon)
    rotated = read_calls(str(path), old_pos)
    assert rotated.restarted == "rotated"
    assert [c.outcome for c in rotated.calls] == ["answered", "abandoned_in_queue"]
    assert rotated.position.inode == path.stat().st_ino
