"""ctid's FastAGI server on asyncio streams: bounded header intake, routing by request path, the
in-step command/reply exchange (`HANGUP`, `511`, `520`), safe quoting, and a per-request deadline
that falls back to the fail-open handler (the `agi_*` block itself is read in `agi_env`)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Self
from urllib.parse import urlsplit

import structlog

from ctid.asterisk.agi_env import AgiEnvReader, RequestDropped
from ctid.config import AgiConfig
from ctid.core.errors import CtidError, UnsafeValueError

log = structlog.get_logger(__name__)

# Longest reply line we accept from Asterisk. GET VARIABLE values are the long ones; Asterisk's own
# buffers for them are ~1 KiB, so 8 KiB leaves room while bounding what a hostile peer can make
# us hold.
MAX_REPLY_LINE_BYTES = 8192
# res_agi reads each command with fgets() into a 2048-byte buffer (AGI_BUF_LEN). A longer line is
# cut there and the rest is parsed as the *next command*, so a long caller-controlled value could
# smuggle in a command. Refuse anything that would not fit, newline included.
MAX_COMMAND_BYTES = 2047
# Unsolicited lines (`HANGUP`) tolerated while waiting for one reply. Asterisk sends at most one.
_MAX_UNSOLICITED_LINES = 8
# A `520-` usage block is a few lines of help text; bound it anyway.
_MAX_USAGE_LINES = 64

_VERB = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_REPLY = re.compile(r"(?P<code>[1-9][0-9]{2})(?: (?P<rest>.*))?")
_RESULT = re.compile(r"result=(?P<result>\S*)(?: (?P<tail>.*))?")
# `(data)` may itself contain parentheses (GET VARIABLE of any text), so take the greedy match up
# to the last `)` that ends the line or precedes RECORD FILE's ` endpos=N`.
_PARENS = re.compile(r"\((?P<data>.*)\)(?: endpos=-?[0-9]+)?")
_ENDPOS = re.compile(r"endpos=-?[0-9]+")
_INT = re.compile(r"-?[0-9]+")
# Asterisk's argument parser splits on space and tab and treats `"` and `\` specially.
_NEEDS_QUOTES = re.compile(r'[\s"\\]')
_FORBIDDEN = ("\r", "\n", "\0")


class AgiError(CtidError):
    """Base of FastAGI errors."""


class AgiHangup(AgiError):
    """The channel is dead (`511`) or Asterisk closed the FastAGI socket."""


class AgiCommandError(AgiError):
    """Asterisk refused a command (`510` unknown command, `520` usage, any other non-200 code)."""

    def __init__(self, command: str, reply: AgiReply) -> None:
        super().__init__(f"{command}: {reply.raw}")
        self.command = command
        self.reply = reply


class AgiProtocolError(AgiError):
    """The peer broke the FastAGI protocol (garbage, over-long line, flood); the session is over."""


@dataclass(frozen=True)
class AgiReply:
    """One reply: `200 result=49`, `200 result=1 (value)`, `511 Command Not Permitted ...`.

    `result` is the integer result (-1 for non-200 codes, 0 when the text is not an integer);
    `result_text` keeps it verbatim (GET DATA returns a digit string, possibly empty);
    `data` is the text in parentheses, or the message of an error reply.
    """

    code: int
    result: int
    data: str
    raw: str
    result_text: str = ""


AgiHandler = Callable[["AgiSession"], Awaitable[None]]


def parse_reply(line: str) -> AgiReply:
    """Parse one single-line reply (without its newline). Raises `AgiProtocolError` on garbage."""
    m = _REPLY.fullmatch(line)
    if m is None:
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code = int(m["code"])
    rest = m["rest"] or ""
    r = _RESULT.fullmatch(rest)
    if r is None:
        return AgiReply(code=code, result=-1, data=rest, raw=line)
    text = r["result"]
    tail = r["tail"] or ""
    p = _PARENS.fullmatch(tail)
    if p is not None:
        data = p["data"]
    elif _ENDPOS.fullmatch(tail):
        data = ""
    else:
        data = tail
    result = int(text) if _INT.fullmatch(text) else (0 if code == 200 else -1)
    return AgiReply(code=code, result=result, data=data, raw=line, result_text=text)


def quote_arg(value: str | int, *, force: bool = False) -> str:
    """One command argument as Asterisk's AGI parser reads it back.

    Integers go bare. Text is wrapped in double quotes with `\\` and `"` backslash-escaped when it
    is empty or holds whitespace, quotes or backslashes (always with `force`). CR, LF and NUL can
    never be made safe on a line protocol and raise `UnsafeValueError`.
    """
    if isinstance(value, int):
        return str(int(value))
    if any(c in value for c in _FORBIDDEN):
        raise UnsafeValueError("AGI argument contains CR, LF or NUL")
    if not force and value and not _NEEDS_QUOTES.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _command_bytes(verb: str, args: tuple[str, ...]) -> bytes:
    if not _VERB.fullmatch(verb):
        raise UnsafeValueError(f"AGI verb must be words of letters, got {verb[:40]!r}")
    line = " ".join((verb.upper(), *args))
    try:
        data = line.encode("utf-8") + b"\n"
    except UnicodeEncodeError as exc:  # lone surrogates cannot go on the wire
        raise UnsafeValueError("AGI argument is not encodable as UTF-8") from exc
    if len(data) > MAX_COMMAND_BYTES:
        raise UnsafeValueError(
            f"AGI command is {len(data)} bytes; Asterisk reads at most {MAX_COMMAND_BYTES}"
        )
    return data


def _digit(result: int) -> str:
    """The DTMF digit of a `result=<ascii code>` reply, "" for 0 (no digit)."""
    return chr(result) if 32 < result < 127 else ""


def route_of(request: str) -> str:
    """The route name of an `agi_request` URL: the path without its leading slash.

    `agi://127.0.0.1:4573/ivr` → `ivr`. The query string is not part of the route.
    """
    try:
        path = urlsplit(request).path
    except ValueError:  # e.g. a broken IPv6 literal
        return ""
    return path[1:] if path.startswith("/") else path


class AgiSession:
    """One FastAGI request: the `agi_*` environment and the command/reply exchange.

    Commands are strictly one at a time and always read their own reply: unsolicited `HANGUP`
    lines are noted (`hung_up`) and skipped, and a reply left unread by a cancelled command is
    read and discarded before the next command is sent.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.env: Mapping[str, str] = MappingProxyType(dict(env))
        self.route = route_of(self.env.get("agi_request", ""))
        self.channel = self.env.get("agi_channel", "")
        self.uniqueid = self.env.get("agi_uniqueid", "")
        # Asterisk writes the literal word "unknown" when caller ID is absent.
        self.caller_number = _known(self.env.get("agi_callerid", ""))
        self.caller_name = _known(self.env.get("agi_calleridname", ""))
        self.hung_up = False
        self.unplayable: list[str] = []
        """Prompts Asterisk could not play in this session (each warned about once)."""
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self._pending = 0  # commands written whose reply has not been read yet
        self._usage: list[str] | None = None  # a `520-` block being read
        self._closed = False  # socket closed (by Asterisk or by us)
        self._broken: str | None = None  # protocol broken: reason

    @property
    def alive(self) -> bool:
        """The socket is usable and Asterisk has not told us the caller hung up."""
        return not (self.hung_up or self._closed or self._broken)

    # ------------------------------------------------------------------ raw exchange

    async def command(self, verb: str, *args: str | int) -> AgiReply:
        """Send one command and return its reply (code 200, possibly `result=-1`).

        Raises `AgiHangup` on `511` or a closed socket, `AgiCommandError` on other non-200 codes,
        `UnsafeValueError` (before anything is sent) for an argument that cannot be sent safely.
        """
        return await self._send(verb, *(quote_arg(a) for a in args))

    async def _send(self, verb: str, *parts: str) -> AgiReply:
        """`command` with arguments already quoted."""
        data = _command_bytes(verb, parts)  # refuse before touching the socket
        async with self._lock:
            self._check_usable()
            while self._pending:
                await self._read_reply()  # the late reply of a cancelled command
                self._pending -= 1
            try:
                self._writer.write(data)
                # Counted as soon as it is buffered: a cancel during `drain` still leaves a reply
                # on its way.
                self._pending += 1
                await self._writer.drain()
            except OSError as exc:
                self._mark_closed()
                raise AgiHangup("FastAGI socket closed by Asterisk") from exc
            reply = await self._read_reply()
            self._pending -= 1
        if reply.code == 511:
            raise AgiHangup(reply.raw)
        if reply.code != 200:
            raise AgiCommandError(verb.upper(), reply)
        return reply

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise AgiProtocolError(f"FastAGI session unusable: {self._broken}")
        if self._closed:
            raise AgiHangup("FastAGI socket is closed")

    def _mark_closed(self) -> None:
        self._closed = True
        self.hung_up = True

    def _break(self, reason: str) -> AgiProtocolError:
        self._broken = reason
        return AgiProtocolError(reason)

    async def _read_line(self) -> str:
        try:
            raw = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            self._mark_closed()
            raise AgiHangup("FastAGI socket closed by Asterisk") from exc
        except asyncio.LimitOverrunError as exc:
            raise self._break("reply_line_too_long") from exc
        except OSError as exc:
            self._mark_closed()
            raise AgiHangup("FastAGI socket failed") from exc
        if len(raw) > MAX_REPLY_LINE_BYTES:
            raise self._break("reply_line_too_long")
        return raw.decode("utf-8", "replace").removesuffix("\n").removesuffix("\r")

    async def _read_reply(self) -> AgiReply:
        # Each `_read_line` consumes a whole line or nothing (StreamReader is cancel-safe), and the
        # `520-` state lives on the session, so a cancelled read resumes in step.
        unsolicited = 0
        while True:
            line = await self._read_line()
            if self._usage is not None:
                self._usage.append(line)
                if line.startswith("520 "):
                    lines, self._usage = self._usage, None
                    text = "\n".join([lines[0][4:], *lines[1:-1], lines[-1][4:]])
                    return AgiReply(code=520, result=-1, data=text, raw="\n".join(lines))
                if len(self._usage) > _MAX_USAGE_LINES:
                    raise self._break("usage_reply_too_long")
                continue
            if line == "HANGUP":
                # Asterisk announces the hangup on its own, before or after the reply to the
                # pending command; the reply to that command is still to come.
                self.hung_up = True
                unsolicited += 1
                if unsolicited > _MAX_UNSOLICITED_LINES:
                    raise self._break("too_many_unsolicited_lines")
                continue
            if line.startswith("520-"):
                self._usage = [line]
                continue
            try:
                reply = parse_reply(line)
            except AgiProtocolError as exc:
                raise self._break("bad_reply") from exc
            if reply.code == 511:
                self.hung_up = True
            return reply

    # ------------------------------------------------------------------ commands

    async def answer(self) -> None:
        """Answer the channel; `AgiHangup` if the caller is gone."""
        reply = await self.command("ANSWER")
        if reply.result == -1:
            self.hung_up = True
            raise AgiHangup("ANSWER failed: the channel is gone")

    async def hangup(self) -> None:
        """Hang the channel up; quiet if it is already gone."""
        with contextlib.suppress(AgiHangup):
            await self.command("HANGUP")
        self.hung_up = True

    async def stream_file(self, name: str, escape_digits: str = "") -> str | None:
        """Play a prompt. The digit that interrupted it, "" if none, None if the caller hung up.

        A prompt that cannot be played (no such file) is "" too, after one warning: see
        `_caller_still_there` for how that is told from a hangup.
        """
        try:
            reply = await self._send(
                "STREAM FILE", quote_arg(name), quote_arg(escape_digits, force=True)
            )
        except AgiHangup:
            return None
        if reply.result >= 0:
            return _digit(reply.result)
        if await self._caller_still_there():
            self._unplayable(name)
            return ""
        return self._gone()

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play a prompt and collect digits: the digits ("" on timeout), None if hung up.

        When the prompt cannot be played the digits are still collected, silently, with
        `WAIT FOR DIGIT` (the same timeout for the first and each next key, `#` ends).
        """
        try:
            reply = await self.command("GET DATA", prompt, timeout_ms, max_digits)
        except AgiHangup:
            return None
        if reply.result_text == "-1":
            if not await self._caller_still_there():
                return self._gone()
            self._unplayable(prompt)
            return await self._collect_digits(timeout_ms, max_digits)
        # `200 result=12 (timeout)` keeps the digits typed before the timeout.
        return reply.result_text

    async def _collect_digits(self, timeout_ms: int, max_digits: int) -> str | None:
        digits = ""
        while len(digits) < max_digits:
            got = await self.wait_for_digit(timeout_ms)
            if got is None:
                return None
            if got in ("", "#"):
                break
            digits += got
        return digits

    async def _caller_still_there(self) -> bool:
        """After a media command answered `200 result=-1`: is the channel still up?

        Asterisk gives the same `result=-1` for a prompt file it cannot open (res_agi's
        handle_streamfile / ast_app_getdata_full: `200 result=-1 endpos=0` at once, channel up)
        and for a caller who hung up while it played. After a hangup res_agi turns the session
        "dead" before it reads our next command, so `CHANNEL STATUS` (not allowed on a dead
        channel) answers `511`; on a live channel it answers `200 result=<state>`. That holds
        whether or not the unsolicited `HANGUP` line is sent (AGISIGHUP=no suppresses it).
        """
        if self.hung_up:
            return False
        try:
            reply = await self.command("CHANNEL STATUS")
        except AgiHangup:
            return False
        except AgiCommandError:
            # Not an answer about the channel: assume it is up; if it is not, the next command
            # gets 511 and the session ends there.
            return not self.hung_up
        return reply.result >= 0 and not self.hung_up

    def _unplayable(self, prompt: str) -> None:
        if prompt in self.unplayable:
            return
        self.unplayable.append(prompt)
        log.warning(
            "agi_prompt_unplayable",
            prompt=prompt,
            channel=self.channel,
            hint="the sound file is missing on the PBX: ctid prompts install --dest DIR",
        )

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        """Wait for one DTMF digit: the digit, "" on timeout, None if hung up/failed."""
        try:
            reply = await self.command("WAIT FOR DIGIT", timeout_ms)
        except AgiHangup:
            return None
        return self._gone() if reply.result < 0 else _digit(reply.result)

    async def set_variable(self, name: str, value: str) -> None:
        """Set a channel variable. Quiet on a dead channel, so a handler can always finish."""
        parts = (quote_arg(name), quote_arg(value, force=True))  # the value always quoted
        try:
            await self._send("SET VARIABLE", *parts)
        except AgiHangup:
            log.debug("agi_set_variable_on_dead_channel", variable=name)

    async def get_variable(self, name: str) -> str | None:
        """A channel variable's value, None if unset or the channel is dead."""
        try:
            reply = await self.command("GET VARIABLE", name)
        except AgiHangup:
            return None
        return reply.data if reply.result == 1 else None

    async def verbose(self, text: str, level: int = 1) -> None:
        """Write to the Asterisk console/log. Quiet on a dead channel."""
        parts = (quote_arg(text, force=True), quote_arg(level))
        with contextlib.suppress(AgiHangup):
            await self._send("VERBOSE", *parts)

    def _gone(self) -> str | None:
        # `result=-1` from a media command is how Asterisk reports the hangup; its `HANGUP` line
        # may only follow later, so note it now (the fallback must not run for a dead caller).
        self.hung_up = True
        return None

    # ------------------------------------------------------------------ end

    def _close(self) -> None:
        self._closed = True
        transport = self._writer.transport
        self._writer.close()
        # A peer that stopped reading would keep the socket (and the channel) open until our
        # write buffer drains; drop it instead.
        if transport.get_write_buffer_size():
            transport.abort()


def _known(value: str) -> str:
    return "" if value == "unknown" else value


class FastAgiServer:
    """Accepts FastAGI connections and runs the handler of each request's route.

    Unknown routes, handlers that fail, and handlers that overrun `request_deadline_s` end in the
    fallback handler on the same session (while the channel is alive). The socket is always closed
    at the end, which lets Asterisk continue the dialplan.
    """

    def __init__(
        self, cfg: AgiConfig, routes: Mapping[str, AgiHandler], fallback: AgiHandler
    ) -> None:
        self._cfg = cfg
        self._routes = dict(routes)
        self._fallback = fallback
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stats = {
            "served": 0,
            "dropped": 0,
            "fallbacks": 0,
            "deadline_exceeded": 0,
            "handler_failures": 0,
        }

    async def __aenter__(self) -> Self:
        # Bind and listen now: "address in use" fails at startup, and a call arriving before
        # `run` is scheduled is served rather than refused (the sessions are ours either way).
        self._server = await asyncio.start_server(
            self._on_connect,
            self._cfg.listen_host,
            self._cfg.listen_port,
            limit=max(self._cfg.max_header_bytes, MAX_REPLY_LINE_BYTES),
        )
        log.info("agi_listening", host=self._cfg.listen_host, port=self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        log.info("agi_stopped", **self.stats())

    async def run(self) -> None:
        """Serve until cancelled; cancelling stops listening (`__aexit__` ends the sessions)."""
        if self._server is None:
            raise AgiError("FastAgiServer.run() outside `async with`")
        await self._server.serve_forever()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise AgiError("FastAgiServer is not bound")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def stats(self) -> dict[str, int]:
        """Requests served, connections dropped, sessions in flight, fallback runs and why."""
        return {**self._stats, "in_flight": len(self._tasks)}

    # ------------------------------------------------------------------ per connection

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task (not the one asyncio would make from a coroutine callback) so the server
        # owns it and can cancel and await it on shutdown.
        task = asyncio.get_running_loop().create_task(self._connection(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        session: AgiSession | None = None
        try:
            try:
                env = await self._read_env(reader)
            except RequestDropped as drop:
                self._stats["dropped"] += 1
                log.warning("agi_session_dropped", reason=drop.reason, peer=peer)
                return
            session = AgiSession(env, reader, writer)
            with structlog.contextvars.bound_contextvars(
                agi_channel=session.channel, agi_uniqueid=session.uniqueid
            ):
                await self._serve(session, peer)
        except Exception:  # the unit of work (one connection) ends here, whatever happened
            log.exception("agi_connection_failed", peer=peer)
        finally:
            if session is not None:
                session._close()
            else:
                writer.close()
                if writer.transport.get_write_buffer_size():
                    writer.transport.abort()

    async def _read_env(self, reader: asyncio.StreamReader) -> dict[str, str]:
        env_reader = AgiEnvReader()
        total = 0
        try:
            async with asyncio.timeout(self._cfg.header_timeout_s):
                while True:
                    try:
                        raw = await reader.readuntil(b"\n")
                    except asyncio.IncompleteReadError as exc:
                        raise RequestDropped(
                            "closed_in_header" if total or exc.partial else "closed_before_header"
                        ) from None
                    except asyncio.LimitOverrunError:
                        raise RequestDropped("header_too_large") from None
                    except OSError:
                        raise RequestDropped("connection_error") from None
                    total += len(raw)
                    if total > self._cfg.max_header_bytes:
                        raise RequestDropped("header_too_large")
                    line = raw.decode("utf-8", "replace").removesuffix("\n").removesuffix("\r")
                    if env_reader.feed(line):
                        break
        except TimeoutError:
            raise RequestDropped("header_timeout") from None
        env = env_reader.env()
        if "agi_request" not in env:
            raise RequestDropped("no_agi_request")
        return env

    async def _serve(self, session: AgiSession, peer: str) -> None:
        handler = self._routes.get(session.route)
        self._stats["served"] += 1
        log.info(
            "agi_request",
            route=session.route,
            known_route=handler is not None,
            channel=session.channel,
            uniqueid=session.uniqueid,
            peer=peer,
        )
        if handler is not None:
            outcome = await self._run_stage(handler, session, "route")
            if outcome != "failed" or not session.alive:
                return
        self._stats["fallbacks"] += 1
        await self._run_stage(self._fallback, session, "fallback")

    async def _run_stage(self, handler: AgiHandler, session: AgiSession, stage: str) -> str:
        """Run one handler under the deadline: "done", "failed" (fallback-worthy) or "ended"."""
        deadline = self._cfg.request_deadline_s
        timeout = asyncio.timeout(deadline)
        try:
            async with timeout:
                await handler(session)
        except TimeoutError:
            if not timeout.expired():
                return self._failed(session, stage)
            self._stats["deadline_exceeded"] += 1
            log.warning(
                "agi_deadline_exceeded", stage=stage, route=session.route, deadline_s=deadline
            )
            return "failed"
        except AgiHangup:
            log.info("agi_caller_hung_up", stage=stage, route=session.route)
            return "ended"
        except AgiProtocolError as exc:
            self._stats["dropped"] += 1
            log.warning("agi_session_dropped", reason=session._broken or str(exc), stage=stage)
            return "ended"
        except Exception:  # one AGI request is one unit of work
            return self._failed(session, stage)
        return "done"

    def _failed(self, session: AgiSession, stage: str) -> str:
        self._stats["handler_failures"] += 1
        log.exception("agi_handler_failed", stage=stage, route=session.route)
        return "failed"


def _peer(writer: asyncio.StreamWriter) -> str:
    name = writer.get_extra_info("peername")
    if isinstance(name, tuple) and len(name) >= 2:
        return f"{name[0]}:{name[1]}"
    return str(name)
