"""The simulator's FastAGI *client* side, what Asterisk's `AGI(agi://host:port/script)` does: the
`agi_*` environment, Asterisk 22's reply formats, and after a caller hangup `200 result=-1`, one
unsolicited `HANGUP`, then `511` for commands that need a live channel (as in hangup_in_ivr).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import structlog

from ctid.asterisk.simulator.core import PbxCore
from ctid.asterisk.simulator.ivr import IvrInput
from ctid.asterisk.simulator.model import Chan, HotlineCall
from ctid.asterisk.simulator.sounds import prompt_seconds

log = structlog.get_logger(__name__)

DEAD_REPLY = "511 Command Not Permitted on a dead channel or intercept routine\n"
UNKNOWN_REPLY = "510 Invalid or unknown command\n"
USAGE_REPLY = "520 Invalid command syntax.  Proper usage not available.\n"
MAX_COMMAND_LINE = 8192

# Commands Asterisk allows on a dead channel (res_agi.c `dead` flag of each command).
DEAD_OK = {
    "asyncagi break",
    "database del",
    "database deltree",
    "database get",
    "database put",
    "exec",
    "get full variable",
    "get variable",
    "gosub",
    "noop",
    "set variable",
    "verbose",
}

ONE_WORD = {"answer", "exec", "hangup", "noop", "verbose", "gosub"}
TWO_WORD = {
    "wait for",  # wait for digit
    "get data",
    "get option",
    "get variable",
    "get full",
    "set variable",
    "set context",
    "set extension",
    "set priority",
    "set callerid",
    "set autohangup",
    "set music",
    "stream file",
    "control stream",
    "say digits",
    "say number",
    "say alpha",
    "say phonetic",
    "say date",
    "say time",
    "say datetime",
    "channel status",
    "database get",
    "database put",
    "database del",
    "database deltree",
    "record file",
    "receive char",
    "send text",
}


def parse_args(line: str) -> list[str]:
    """Split a command line like res_agi's parse_args: whitespace, double quotes, backslashes."""
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    escaped = False
    started = False
    for ch in line:
        if escaped:
            cur.append(ch)
            escaped = False
            started = True
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                out.append("".join(cur))
                cur = []
                started = False
        else:
            cur.append(ch)
            started = True
    if started:
        out.append("".join(cur))
    return out


def command_name(args: list[str]) -> tuple[str, list[str]]:
    """(`wait for digit`, rest) — the command words, lower-cased, and its arguments."""
    if not args:
        return "", []
    first = args[0].lower()
    if first in ONE_WORD:
        return first, args[1:]
    if len(args) >= 2:
        two = f"{first} {args[1].lower()}"
        if two == "wait for" and len(args) >= 3 and args[2].lower() == "digit":
            return "wait for digit", args[3:]
        if two == "get full" and len(args) >= 3 and args[2].lower() == "variable":
            return "get full variable", args[3:]
        if two == "control stream" and len(args) >= 3 and args[2].lower() == "file":
            return "control stream file", args[3:]
        if two in TWO_WORD:
            return two, args[2:]
    return first, args[1:]


class AgiClientSession:
    """One FastAGI conversation for one channel."""

    def __init__(
        self,
        pbx: PbxCore,
        ivr: IvrInput,
        hangup_channel: Callable[[Chan, int | None], None],
        call: HotlineCall,
        chan: Chan,
        url: str,
    ) -> None:
        self.pbx = pbx
        self.ivr = ivr
        self.hangup_channel = hangup_channel
        self.call = call
        self.chan = chan
        self.url = url
        self.writer: asyncio.StreamWriter | None = None
        self.in_command = False
        self.hangup_sent = False
        self.failed = False
        """A command returned RESULT_FAILURE (a prompt that does not exist): AGISTATUS=FAILURE."""

    def env(self) -> str:
        parts = urlsplit(self.url)
        script = parts.path.lstrip("/")
        chan = self.chan
        lines = [
            ("agi_network", "yes"),
            ("agi_network_script", script),
            ("agi_request", self.url),
            ("agi_channel", chan.name),
            ("agi_language", chan.language),
            ("agi_type", chan.tech),
            ("agi_uniqueid", chan.uniqueid),
            ("agi_version", "22.10.1"),
            ("agi_callerid", chan.cid_num or "unknown"),
            ("agi_calleridname", chan.cid_name or "unknown"),
            ("agi_callingpres", "0"),
            ("agi_callingani2", "0"),
            ("agi_callington", "0"),
            ("agi_callingtns", "0"),
            ("agi_dnid", chan.dnid or "unknown"),
            ("agi_rdnis", "unknown"),
            ("agi_context", chan.context),
            ("agi_extension", chan.exten),
            ("agi_priority", str(chan.priority)),
            ("agi_enhanced", "0.0"),
            ("agi_accountcode", chan.accountcode),
            ("agi_threadid", str(140689692665536 + self.pbx.next_thread_id())),
        ]
        return "".join(f"{k}: {v}\n" for k, v in lines) + "\n"

    async def run(self) -> str:
        """Talk to the FastAGI server until it closes; returns the AGISTATUS value."""
        parts = urlsplit(self.url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 4573
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.pbx.cfg.agi_connect_timeout_s
            )
        except (OSError, TimeoutError):
            log.debug("agi_sim_connect_failed", url=self.url)
            return "FAILURE"
        self.writer = writer
        try:
            writer.write(self.env().encode())
            if self._dead():
                self._send_hangup()
            while True:
                try:
                    raw = await reader.readline()
                except (OSError, ValueError):
                    break
                if not raw:
                    break
                line = raw.decode("utf-8", errors="replace").strip()
                if not line:
                    continue
                self.in_command = True
                try:
                    reply = await self.execute(line)
                finally:
                    self.in_command = False
                if writer.is_closing():
                    break
                writer.write(reply.encode())
                if self._dead():
                    self._send_hangup()
        except (OSError, ConnectionError):
            pass
        finally:
            self.writer = None
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()
        if self._dead():
            return "HANGUP"
        return "FAILURE" if self.failed else "SUCCESS"

    def _dead(self) -> bool:
        return self.chan.dead or not self.chan.alive

    def channel_died(self) -> None:
        """The channel hung up: tell the server at once if it is not inside a command."""
        if not self.in_command:
            self._send_hangup()

    def _send_hangup(self) -> None:
        if self.hangup_sent or self.writer is None or self.writer.is_closing():
            return
        self.hangup_sent = True
        self.writer.write(b"HANGUP\n")

    async def execute(self, line: str) -> str:
        args = parse_args(line)
        name, rest = command_name(args)
        handler = self._handlers().get(name)
        if handler is None:
            return UNKNOWN_REPLY
        if self._dead() and name not in DEAD_OK:
            return DEAD_REPLY
        try:
            return await handler(rest)
        except (IndexError, ValueError):
            return USAGE_REPLY

    def _handlers(self) -> dict[str, Callable[[list[str]], Awaitable[str]]]:
        return {
            "answer": self._answer,
            "noop": self._ok0,
            "verbose": self._ok1,
            "hangup": self._hangup,
            "set variable": self._set_variable,
            "get variable": self._get_variable,
            "get full variable": self._get_full_variable,
            "wait for digit": self._wait_for_digit,
            "stream file": self._stream_file,
            "control stream file": self._stream_file,
            "say digits": self._say,
            "say number": self._say,
            "say alpha": self._say,
            "say phonetic": self._say,
            "get data": self._get_data,
            "get option": self._get_option,
            "exec": self._exec,
            "channel status": self._channel_status,
            "set context": self._set_context,
            "set extension": self._set_extension,
            "set priority": self._set_priority,
            "set music": self._ok0,
            "set callerid": self._ok1,
            "set autohangup": self._ok0,
            "database get": self._db_get,
            "database put": self._db_put,
            "database del": self._db_del,
            "database deltree": self._db_del,
        }

    async def _ok0(self, args: list[str]) -> str:
        return "200 result=0\n"

    async def _ok1(self, args: list[str]) -> str:
        return "200 result=1\n"

    async def _answer(self, args: list[str]) -> str:
        return "200 result=0\n"

    async def _hangup(self, args: list[str]) -> str:
        if args and args[0] != self.chan.name:
            target = self.pbx.channels.get(args[0])
            if target is None:
                return "200 result=-1\n"
            self.hangup_channel(target, 16)
            return "200 result=1\n"
        self.ivr.agi_hangup(self.call, self.chan)
        return "200 result=1\n"

    async def _set_variable(self, args: list[str]) -> str:
        name, value = args[0], args[1] if len(args) > 1 else ""
        self.pbx.set_var(self.chan, name, value)
        return "200 result=1\n"

    async def _get_variable(self, args: list[str]) -> str:
        value = self.pbx.get_var(self.chan, args[0])
        if value is None:
            return "200 result=0\n"
        return f"200 result=1 ({value})\n"

    async def _get_full_variable(self, args: list[str]) -> str:
        return f"200 result=1 ({self.pbx.substitute(self.chan, args[0])})\n"

    async def _wait_for_digit(self, args: list[str]) -> str:
        timeout_ms = int(args[0]) if args else -1
        digit = await self.ivr.read_digit(self.call, self.chan, "digit", "0123456789*#", timeout_ms)
        if digit is None:
            return "200 result=-1\n"
        return f"200 result={ord(digit) if digit else 0}\n"

    def _prompt_s(self, args: list[str], *, fails: bool = True) -> float | None:
        """How long the named prompt plays; None when the PBX has no such sound file (res_agi
        answers at once and the command fails: AGISTATUS=FAILURE though the channel is up)."""
        cfg = self.pbx.cfg
        name = args[0] if args else ""
        if cfg.prompts is not None and name not in cfg.prompts:
            length = None
        else:
            length = prompt_seconds(cfg.sounds_dir, name, cfg.prompt_s)
        if length is None and fails:
            self.failed = True
        return length

    async def _stream_file(self, args: list[str]) -> str:
        length = self._prompt_s(args)
        if length is None:
            return "200 result=-1 endpos=0\n"
        escape = args[1] if len(args) > 1 else ""
        digit, played = await self.ivr.play_prompt(self.call, self.chan, escape, length_s=length)
        if digit is None:
            return "200 result=-1 endpos=0\n"
        self.pbx.varset(self.chan, "PLAYBACKSTATUS", "FAILED" if digit else "SUCCESS")
        return f"200 result={ord(digit) if digit else 0} endpos={played}\n"

    async def _say(self, args: list[str]) -> str:
        escape = args[1] if len(args) > 1 else ""
        digit, _ = await self.ivr.play_prompt(self.call, self.chan, escape)
        if digit is None:
            return "200 result=-1\n"
        return f"200 result={ord(digit) if digit else 0}\n"

    async def _get_option(self, args: list[str]) -> str:
        length = self._prompt_s(args)
        if length is None:
            return "200 result=-1 endpos=0\n"
        escape = args[1] if len(args) > 1 else ""
        timeout_ms = int(args[2]) if len(args) > 2 else 5000
        digit, played = await self.ivr.play_prompt(self.call, self.chan, escape, length_s=length)
        if digit is None:
            return "200 result=-1 endpos=0\n"
        if not digit:
            got = await self.ivr.read_digit(self.call, self.chan, "digit", escape, timeout_ms)
            if got is None:
                return "200 result=-1 endpos=0\n"
            digit = got
        return f"200 result={ord(digit) if digit else 0} endpos={played}\n"

    async def _get_data(self, args: list[str]) -> str:
        timeout_ms = int(args[1]) if len(args) > 1 and args[1] else 2000
        max_digits = int(args[2]) if len(args) > 2 and args[2] else 1024
        length = self._prompt_s(args, fails=False)
        if length is None:
            return "200 result=-1\n"  # ast_app_getdata_full
        text, timed_out = await self.ivr.read_data(
            self.call, self.chan, timeout_ms, max_digits, prompt_s=length
        )
        if text is None:
            return "200 result=-1\n"
        return f"200 result={text}{' (timeout)' if timed_out else ''}\n"

    async def _exec(self, args: list[str]) -> str:
        app = args[0]
        data = " ".join(args[1:])
        return f"200 result={await self.ivr.agi_exec(self.call, self.chan, app, data)}\n"

    async def _channel_status(self, args: list[str]) -> str:
        return f"200 result={self.chan.state}\n"

    async def _set_context(self, args: list[str]) -> str:
        self.chan.context = args[0]
        return "200 result=0\n"

    async def _set_extension(self, args: list[str]) -> str:
        self.chan.exten = args[0]
        return "200 result=0\n"

    async def _set_priority(self, args: list[str]) -> str:
        self.chan.priority = int(args[0]) if args[0].isdigit() else self.chan.priority
        return "200 result=0\n"

    async def _db_get(self, args: list[str]) -> str:
        value = self.pbx.db.get((args[0], args[1]))
        return "200 result=0\n" if value is None else f"200 result=1 ({value})\n"

    async def _db_put(self, args: list[str]) -> str:
        self.pbx.db[(args[0], args[1])] = args[2] if len(args) > 2 else ""
        return "200 result=1\n"

    async def _db_del(self, args: list[str]) -> str:
        if len(args) > 1:
            return (
                "200 result=1\n"
                if self.pbx.db.pop((args[0], args[1]), None)
                else ("200 result=0\n")
            )
        for key in [k for k in self.pbx.db if k[0] == args[0]]:
            del self.pbx.db[key]
        return "200 result=1\n"
