"""AmiFrameParser: exact framing, incremental UTF-8, banner, odd lines, memory guard (pure)."""

from __future__ import annotations

import random

import pytest

from ctid.asterisk.ami_protocol import AmiFrameParser, FrameTooLargeError
from ctid.asterisk.frame import Frame
from tests.asterisk.amifake import BANNER, TRANSCRIPTS, transcript

NAME_FRAME = "Event: Newchannel\r\nCallerIDName: 张三丰\r\nUniqueid: 1.1\r\n\r\n".encode()


def feed_all(parser: AmiFrameParser, chunks: list[bytes]) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


def recorded_stream() -> tuple[bytes, list[list[tuple[str, str]]]]:
    """Everything Asterisk sent in every recording, and the frames a reader must see."""
    data = bytearray(BANNER)
    expected: list[list[tuple[str, str]]] = []
    for path in sorted(TRANSCRIPTS.glob("*.jsonl")):
        for rec in transcript(path.name):
            raw = rec["raw"]
            if rec["dir"] != "in" or raw == "<EOF>" or raw.startswith("Asterisk Call Manager/"):
                continue
            data += raw.encode()
            pairs = []
            for line in raw[: -len("\r\n\r\n")].split("\r\n"):
                name, _, value = line.partition(":")
                pairs.append((name, value.removeprefix(" ")))
            expected.append(pairs)
    return bytes(data), expected


def test_banner_without_blank_line_then_frames() -> None:
    parser = AmiFrameParser()
    frames = parser.feed(BANNER + b"Response: Success\r\nActionID: a1\r\n\r\nEvent: X\r\n\r\n")
    assert [f.pairs for f in frames] == [
        [("Response", "Success"), ("ActionID", "a1")],
        [("Event", "X")],
    ]
    assert parser.version == "11.0.0"


def test_banner_one_byte_per_read() -> None:
    parser = AmiFrameParser()
    frames = feed_all(parser, [bytes([b]) for b in BANNER + b"Event: A\r\n\r\n"])
    assert [f.pairs for f in frames] == [[("Event", "A")]]
    assert parser.version == "11.0.0"


def test_stream_without_banner_is_parsed_from_the_first_byte() -> None:
    parser = AmiFrameParser()
    assert [f.pairs for f in parser.feed(b"Event: A\r\n\r\n")] == [[("Event", "A")]]
    assert parser.version is None


def test_partial_frames_and_several_frames_per_read() -> None:
    parser = AmiFrameParser()
    assert parser.feed(b"Event: A\r\nKey: 1\r\n") == []
    assert parser.feed(b"\r") == []
    frames = parser.feed(b"\nEvent: B\r\n\r\nEvent: C\r\n\r\nEvent: D\r\nKe")
    assert [f.event for f in frames] == ["A", "B", "C"]
    assert frames[0]["Key"] == "1"
    frames = parser.feed(b"y: 4\r\n\r\n")
    assert [f.pairs for f in frames] == [[("Event", "D"), ("Key", "4")]]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_terminator_split_across_reads(cut: int) -> None:
    parser = AmiFrameParser()
    data = b"Event: A\r\n\r\nEvent: B\r\n\r\n"
    end_a = data.index(b"\r\n\r\n") + cut
    assert [f.event for f in parser.feed(data[:end_a])] == []
    assert [f.event for f in parser.feed(data[end_a:])] == ["A", "B"]


def test_stray_blank_lines_are_ignored() -> None:
    parser = AmiFrameParser()
    data = b"\r\n\r\nEvent: A\r\n\r\n\r\n\r\n\r\nEvent: B\r\n\r\n\r\n"
    frames = parser.feed(data)
    assert [f.pairs for f in frames] == [[("Event", "A")], [("Event", "B")]]
    assert parser.feed(b"Event: C\r\n\r\n")[0].pairs == [("Event", "C")]


def test_empty_values_with_and_without_space() -> None:
    frame = AmiFrameParser().feed(
        b"Event: CoreShowChannel\r\nAccountCode: \r\nLanguage:\r\nExten:4000\r\n\r\n"
    )[0]
    assert frame.pairs == [
        ("Event", "CoreShowChannel"),
        ("AccountCode", ""),
        ("Language", ""),
        ("Exten", "4000"),
    ]


def test_value_keeps_later_colons() -> None:
    frame = AmiFrameParser().feed(
        b"Response: Error\r\nMessage: Invalid/unknown command: NoSuchAction.\r\n"
        b"Channel: PJSIP/a:b\r\n\r\n"
    )[0]
    assert frame["Message"] == "Invalid/unknown command: NoSuchAction."
    assert frame["Channel"] == "PJSIP/a:b"


def test_line_without_colon_is_skipped_and_the_frame_kept() -> None:
    frame = AmiFrameParser().feed(
        b"Response: Follows\r\nActionID: 9\r\ngarbage line\r\n--END COMMAND--\r\nTail: x\r\n\r\n"
    )[0]
    assert frame.pairs == [("Response", "Follows"), ("ActionID", "9"), ("Tail", "x")]


def test_frame_of_only_colonless_lines_is_dropped() -> None:
    frames = AmiFrameParser().feed(b"nothing here\r\n\r\nEvent: A\r\n\r\n")
    assert [f.event for f in frames] == ["A"]


def test_repeated_headers_first_wins_all_kept() -> None:
    frame = AmiFrameParser().feed(
        b"Event: VarSet\r\nChanVariable: A=1\r\nChanVariable: B=2\r\n\r\n"
    )[0]
    assert frame["ChanVariable"] == "A=1"
    assert frame.all("ChanVariable") == ["A=1", "B=2"]


@pytest.mark.parametrize("cut", range(1, len(NAME_FRAME)))
def test_chinese_name_survives_a_split_at_every_byte(cut: int) -> None:
    parser = AmiFrameParser()
    frames = parser.feed(NAME_FRAME[:cut]) + parser.feed(NAME_FRAME[cut:])
    assert len(frames) == 1
    assert frames[0]["CallerIDName"] == "张三丰"
    assert frames[0]["Uniqueid"] == "1.1"


def test_chinese_name_one_byte_per_read() -> None:
    frames = feed_all(AmiFrameParser(), [bytes([b]) for b in NAME_FRAME])
    assert [f["CallerIDName"] for f in frames] == ["张三丰"]


def test_invalid_utf8_becomes_replacement_characters() -> None:
    parser = AmiFrameParser()
    frames = parser.feed(b"Event: Newchannel\r\nCallerIDName: \xff\xfeBob\xe5\xbc\r\n\r\n")
    assert frames[0]["CallerIDName"] == "\ufffd\ufffdBob\ufffd"
    # ...and the decoder is not left in a broken state.
    assert parser.feed("Event: A\r\nName: 丰\r\n\r\n".encode())[0]["Name"] == "丰"


def test_unterminated_frame_over_the_limit_raises() -> None:
    parser = AmiFrameParser(max_frame_chars=1000)
    parser.feed(b"Event: Big\r\n")
    line = b"Variable: " + b"x" * 10 + b"\r\n"  # 22 characters
    for _ in range(44):  # 12 + 44 * 22 = 980 characters: still under the limit
        assert parser.feed(line) == []
    with pytest.raises(FrameTooLargeError):
        parser.feed(line)


def test_big_read_with_an_unterminated_tail_over_the_limit_raises() -> None:
    parser = AmiFrameParser(max_frame_chars=1000)
    with pytest.raises(FrameTooLargeError):
        parser.feed(b"Event: A\r\n\r\nEvent: Big\r\nData: " + b"y" * 2000)


def test_endless_banner_like_line_raises() -> None:
    parser = AmiFrameParser(max_frame_chars=100)
    with pytest.raises(FrameTooLargeError):
        parser.feed(b"Asterisk Call Manager/" + b"9" * 200)


def test_frames_at_the_limit_pass() -> None:
    parser = AmiFrameParser(max_frame_chars=1000)
    body = b"Event: Ok\r\nData: " + b"z" * 900 + b"\r\n\r\n"
    for _ in range(5):
        assert [f.event for f in parser.feed(body)] == ["Ok"]


def test_all_recordings_in_one_read_one_byte_reads_and_random_chunks() -> None:
    data, expected = recorded_stream()
    assert len(expected) > 1000
    whole = AmiFrameParser().feed(data)
    assert [f.pairs for f in whole] == expected
    rng = random.Random(2026)
    for _ in range(5):
        chunks, i = [], 0
        while i < len(data):
            n = rng.choice([1, 2, 3, 5, 17, 400, 1500, 9000])
            chunks.append(data[i : i + n])
            i += n
        assert [f.pairs for f in feed_all(AmiFrameParser(), chunks)] == expected
    tail = data[:30000]
    one_by_one = feed_all(AmiFrameParser(), [tail[i : i + 1] for i in range(len(tail))])
    assert [f.pairs for f in one_by_one] == [f.pairs for f in AmiFrameParser().feed(tail)]
