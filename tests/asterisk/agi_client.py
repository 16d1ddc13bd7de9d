"""A small Asterisk-like FastAGI client for tests: sends an `agi_*` environment over a real socket,
reads the server's commands line by line and answers them, and parses them as res_agi would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
from pathlib import Path

# The environment block of `answered.jsonl` (Asterisk 22.10.1), byte for byte.
RECORDED_ENV = (
    "agi_network: yes\n"
    "agi_network_script: ivr\n"
    "agi_request: agi://127.0.0.1:4573/ivr\n"
    "agi_channel: Local/4000@hotline-00000000;2\n"
    "agi_language: en\n"
    "agi_type: Local\n"
    "agi_uniqueid: 1795358660.1\n"
    "agi_version: 22.10.1\n"
    "agi_callerid: 13800138000\n"
    "agi_calleridname: Zhang San\n"
    "agi_callingpres: 0\n"
    "agi_callingani2: 0\n"
    "agi_callington: 0\n"
    "agi_callingtns: 0\n"
    "agi_dnid: unknown\n"
    "agi_rdnis: unknown\n"
    "agi_context: hotline\n"
    "agi_extension: 4000\n"
    "agi_priority: 4\n"
    "agi_enhanced: 0.0\n"
    "agi_accountcode: \n"
    "agi_threadid: 140689692665536\n"
    "\n"
)


def env_block(request: str = "agi://127.0.0.1:4573/ivr", **headers: str) -> bytes:
    """A recorded-looking environment with `agi_request` and any header replaced or added.

    Keyword names are header names without the `agi_` prefix.
    """
    pairs: list[tuple[str, str]] = []
    for line in RECORDED_ENV.splitlines():
        if line:
            name, _, value = line.partition(": ")
            pairs.append((name, value))
    wanted = {"agi_request": request, **{f"agi_{k}": v for k, v in headers.items()}}
    out = [(n, wanted.pop(n, v)) for n, v in pairs]
    out.extend(wanted.items())
    return raw_env(out)


def raw_env(pairs: Iterable[tuple[str, str]]) -> bytes:
    return "".join(f"{n}: {v}\n" for n, v in pairs).encode() + b"\n"


def load_agi_lines(path: Path) -> list[tuple[str, str]]:
    """The (`agi-in` | `agi-out`, raw) entries of one recording, in order."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry["dir"] in ("agi-in", "agi-out"):
            out.append((entry["dir"], entry["raw"]))
    return out


def parse_args(line: str) -> list[str]:
    """Split a command line into words the way res_agi does: blanks separate words, `"` toggles
    quoting (and starts a word, even an empty one), `\\` makes the next character literal."""
    words: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if cur is None:
                cur = []
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                words.append("".join(cur))
                cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        escaped = False
        if cur is None:
            cur = []
        cur.append(ch)
    if cur is not None:
        words.append("".join(cur))
    return words


class FakeAsterisk:
    """The Asterisk end of one FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.commands: list[str] = []

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1") -> FakeAsterisk:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        """Write bytes; a server that already hung up on us is not an error here."""
        with contextlib.suppress(ConnectionError):
            self.writer.write(data)
            await self.writer.drain()

    async def reply(self, *lines: str) -> None:
        await self.send("".join(f"{line}\n" for line in lines).encode())

    async def read_command(self, wait_s: float = 5.0) -> str:
        """The next command line the server wrote (without newline)."""
        raw = await asyncio.wait_for(self.reader.readline(), wait_s)
        if not raw.endswith(b"\n"):
            raise AssertionError(f"server closed instead of sending a command (got {raw!r})")
        line = raw.decode()[:-1]
        self.commands.append(line)
        return line

    async def expect_closed(self, wait_s: float = 5.0) -> bytes:
        """Wait until the server closes the socket; return whatever it wrote before closing."""
        rest = b""
        # a reset is a close too (the server dropped us with our unread data pending)
        with contextlib.suppress(ConnectionError):
            rest = await asyncio.wait_for(self.reader.read(), wait_s)
        return rest

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def replay(self, exchanges: list[tuple[str, str]]) -> None:
        """Play Asterisk's side of a recording (its first entry is the environment block): for
        each recorded command, expect it byte for byte, then send the recorded lines that followed
        it up to the real reply (`HANGUP` lines are not replies). A command whose reply the
        recording lacks gets `200 result=1`."""
        (first_dir, env), rest = exchanges[0], exchanges[1:]
        assert first_dir == "agi-in" and env.endswith("\n\n")
        outs = [raw.removesuffix("\n") for d, raw in rest if d == "agi-out"]
        ins = [raw.removesuffix("\n") for d, raw in rest if d == "agi-in"]
        await self.send(env.encode())
        for expected in outs:
            got = await self.read_command()
            if got != expected:
                raise AssertionError(f"expected {expected!r}, server sent {got!r}")
            sent_reply = False
            while ins and not sent_reply:
                line = ins.pop(0)
                await self.reply(line)
                sent_reply = line != "HANGUP"
            if not sent_reply:
                await self.reply("200 result=1")
