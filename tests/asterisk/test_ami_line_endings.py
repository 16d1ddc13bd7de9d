"""AMI frames whose line ends are not CRLF (bare LF, or mixed) never swallow the frame after
them: parsed as their own frame, the next one kept — in the pure parser at every read split, and
over a real socket."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from ctid.asterisk.ami import AmiConnection
from ctid.asterisk.ami_protocol import AmiFrameParser
from ctid.asterisk.frame import Frame
from tests.asterisk.amifake import WAIT, FakeAmi, FakeConn, Recorder, config, connection, running

GOOD = b"Event: Hangup\r\nUniqueid: 1.2\r\nCause: 16\r\n\r\n"
HOSTILE = [
    b"Event: Newchannel\nCallerIDName: Zhang\nUniqueid: 1.1\n\n",  # bare LF
    b"Event: Newchannel\r\nCallerIDName: Zhang\nUniqueid: 1.1\r\n\n",  # mixed
    b"Event: Newchannel\nCallerIDName: Zhang\r\nUniqueid: 1.1\n\r\n",  # mixed the other way
]


def events(frames: list[Frame]) -> list[tuple[str, str]]:
    return [(f["Event"], f["Uniqueid"]) for f in frames]


async def logged_in(fake: FakeAmi, conn: AmiConnection) -> FakeConn:
    server_conn = await fake.next_conn()
    await conn.wait_logged_in(WAIT)
    return server_conn


def parsed_at_every_split(bad: bytes, name: str) -> None:
    """`bad` then a good frame, cut into two reads at every point: two frames each time."""
    wire = b"Asterisk Call Manager/11.0.0\r\n" + bad + GOOD
    for cut in range(1, len(wire)):
        parser = AmiFrameParser()
        frames = parser.feed(wire[:cut]) + parser.feed(wire[cut:])
        assert events(frames) == [("Newchannel", "1.1"), ("Hangup", "1.2")], cut
        assert frames[0]["CallerIDName"] == name


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_frame_with_other_line_ends_is_its_own_frame_at_every_split(bad: bytes) -> None:
    parsed_at_every_split(bad, "Zhang")


def test_a_lone_cr_does_not_hide_a_bare_lf() -> None:
    # As many lone CRs as bare LFs in one read (a caller name with a CR, a frame ended by a bare
    # LF): the bare LF is still found, at every split, and the CR stays in the name.
    bad = b"Event: Newchannel\r\nCallerIDName: Zh\rang\r\nUniqueid: 1.1\n\r\n"
    assert bad.count(b"\r") == bad.count(b"\n")
    parsed_at_every_split(bad, "Zh\rang")


def test_a_split_crlf_is_not_taken_for_a_bare_lf() -> None:
    parser = AmiFrameParser()
    with capture_logs() as logs:
        frames = parser.feed(b"Event: A\r")
        frames += parser.feed(b"\nUniqueid: 9\r\n\r")
        frames += parser.feed(b"\n")
    assert events(frames) == [("A", "9")]
    assert not [e for e in logs if e["event"] == "ami_line_endings_repaired"]


def test_repairs_are_logged() -> None:
    parser = AmiFrameParser()
    with capture_logs() as logs:
        parser.feed(HOSTILE[0] + GOOD)
    assert [e["event"] for e in logs] == ["ami_line_endings_repaired"]


async def test_over_a_socket_the_next_frame_is_kept() -> None:
    rec = Recorder()
    async with FakeAmi() as fake:
        conn = connection(config(fake.port), rec)
        async with running(conn):
            server = await logged_in(fake, conn)
            await rec.next_event("FullyBooted")
            for bad in HOSTILE:
                await server.send(bad + GOOD)
                first = await rec.next_frame()
                second = await rec.next_frame()
                assert (first.event, first["Uniqueid"]) == ("Newchannel", "1.1")
                assert (second.event, second["Uniqueid"]) == ("Hangup", "1.2")
