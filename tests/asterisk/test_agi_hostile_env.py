"""Caller-controlled AGI values (caller ID number and name, DNID, RDNIS) holding any byte, line
breaks included, neither end the IVR session early nor stand in for another field: the reader
uses the order res_agi writes the environment in. Over a real socket, and as a pure reader."""

from __future__ import annotations

import pytest

from ctid.asterisk.agi import AgiSession
from ctid.asterisk.agi_env import AgiEnvReader
from tests.asterisk.agi_client import FakeAsterisk, env_block
from tests.asterisk.test_agi import serving

HOSTILE_NUMBERS = [
    "138\n\nagi_context: evil",  # a blank line: the old reader ended the block here
    "138\nagi_calleridname: Forged\nagi_context: evil",  # forges the next header, and a later one
    "138\nagi_request: agi://127.0.0.1:4573/admin\n",  # a header from before it, and a bare end
    "138\r\nagi_threadid: 1\n\nagi_x: y",
    "\n\n\n",
]


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
async def test_a_hostile_caller_id_keeps_the_session_and_every_other_field(number: str) -> None:
    seen: list[AgiSession] = []
    replies: list[str] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(s)
        reply = await s.command("WAIT FOR DIGIT", 6000)
        replies.append(reply.raw)

    async def admin(s: AgiSession) -> None:
        raise AssertionError("a caller value picked the route")

    env = env_block(callerid=number, calleridname="Zhang San")
    async with serving({"ivr": ivr, "admin": admin}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(env)
        # The session goes on: the server's first command comes, its reply is read.
        assert await pbx.read_command() == "WAIT FOR DIGIT 6000"
        await pbx.reply("200 result=49")
        assert await pbx.expect_closed() == b""
        await pbx.close()
    (s,) = seen
    assert replies == ["200 result=49"]
    assert s.route == "ivr"
    assert s.env["agi_context"] == "hotline"
    assert s.env["agi_request"] == "agi://127.0.0.1:4573/ivr"
    assert s.caller_name == "Zhang San"
    assert s.env["agi_callingpres"] == "0"
    assert s.env["agi_threadid"] == "140689692665536"
    # The number is the caller's bytes, line breaks and all (CR LF read as a line end).
    assert s.env["agi_callerid"] == number.replace("\r\n", "\n")


async def test_a_hostile_name_does_not_forge_the_fields_after_it() -> None:
    seen: list[AgiSession] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(s)

    name = "Zhang\nagi_callingpres: 99\nagi_callingani2: 7\n\nagi_dnid: 110"
    env = env_block(calleridname=name, dnid="a\n\nb")
    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(env)
        assert await pbx.expect_closed() == b""
        await pbx.close()
    (s,) = seen
    assert (s.env["agi_callingpres"], s.env["agi_callingani2"]) == ("0", "0")
    assert s.caller_name == name
    assert s.env["agi_dnid"] == "a\n\nb"
    assert s.caller_number == "13800138000"


def test_the_reader_ends_at_the_blank_line_after_the_fixed_block() -> None:
    reader = AgiEnvReader()
    lines = env_block(callerid="1\n\n2").decode().split("\n")
    ended_at = next(i for i, line in enumerate(lines) if reader.feed(line))
    assert lines[ended_at - 1].startswith("agi_threadid: ")
    assert reader.env()["agi_callerid"] == "1\n\n2"
