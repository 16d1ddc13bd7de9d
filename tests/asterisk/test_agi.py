"""ctid's FastAGI server over real loopback sockets: hostile clients, routing, the recorded
exchanges, HANGUP/511/520 handling, quoting, deadlines and fallbacks, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from ctid.asterisk.agi import (
    MAX_COMMAND_BYTES,
    AgiCommandError,
    AgiHandler,
    AgiHangup,
    AgiReply,
    AgiSession,
    FastAgiServer,
    parse_reply,
    quote_arg,
    route_of,
)
from ctid.config import AgiConfig
from ctid.core.errors import UnsafeValueError
from tests.asterisk.agi_client import (
    RECORDED_ENV,
    FakeAsterisk,
    env_block,
    load_agi_lines,
    parse_args,
    raw_env,
)
from tests.paths import TRANSCRIPTS as TRANSCRIPT_DIR

DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


# --------------------------------------------------------------------------- helpers


class Calls:
    """What the handlers saw, and an event per handler name."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, AgiSession]] = []
        self.notes: list[Any] = []
        self.events: dict[str, asyncio.Event] = {}

    def event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    def names(self) -> list[str]:
        return [n for n, _ in self.seen]


def fallback_setting_default(calls: Calls) -> AgiHandler:
    """What app.py's fallback does: the fail-open default queue."""

    async def fallback(s: AgiSession) -> None:
        calls.seen.append(("fallback", s))
        calls.event("fallback").set()
        await s.set_variable("CTID_QUEUE", "ordinary")

    return fallback


async def lab_ivr(s: AgiSession) -> None:
    """The FastAGI script the recordings were made with."""
    digit = await s.wait_for_digit(6000)
    await s.set_variable("CTID_QUEUE", "expert" if digit == "2" else "ordinary")
    await s.set_variable("CTID_IVR", digit or "")


@contextlib.asynccontextmanager
async def serving(
    routes: dict[str, AgiHandler],
    fallback: AgiHandler | None = None,
    **cfg: Any,
) -> AsyncIterator[FastAgiServer]:
    calls = Calls()
    server = FastAgiServer(
        AgiConfig(listen_port=0, **cfg), routes, fallback or fallback_setting_default(calls)
    )
    async with server:
        task = asyncio.create_task(server.run())
        try:
            yield server
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_lab_call(port: int, digit_reply: str = "200 result=49") -> list[str]:
    """One caller through the lab IVR; returns the commands the server sent."""
    pbx = await FakeAsterisk.connect(port)
    await pbx.send(RECORDED_ENV.encode())
    assert await pbx.read_command() == "WAIT FOR DIGIT 6000"
    await pbx.reply(digit_reply)
    await pbx.read_command()
    await pbx.reply("200 result=1")
    await pbx.read_command()
    await pbx.reply("200 result=1")
    assert await pbx.expect_closed() == b""
    await pbx.close()
    return pbx.commands


def events(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=49", AgiReply(200, 49, "", "200 result=49", "49")),
        ("200 result=-1", AgiReply(200, -1, "", "200 result=-1", "-1")),
        ("200 result=1 (ordinary)", AgiReply(200, 1, "ordinary", "200 result=1 (ordinary)", "1")),
        ("200 result=1 (a (b) c))", AgiReply(200, 1, "a (b) c)", "200 result=1 (a (b) c))", "1")),
        ("200 result= (timeout)", AgiReply(200, 0, "timeout", "200 result= (timeout)", "")),
        ("200 result=12 (timeout)", AgiReply(200, 12, "timeout", "200 result=12 (timeout)", "12")),
        ("200 result=0 endpos=8000", AgiReply(200, 0, "", "200 result=0 endpos=8000", "0")),
        (
            "200 result=0 (timeout) endpos=16000",
            AgiReply(200, 0, "timeout", "200 result=0 (timeout) endpos=16000", "0"),
        ),
        (
            "510 Invalid or unknown command",
            AgiReply(510, -1, "Invalid or unknown command", "510 Invalid or unknown command"),
        ),
        (DEAD, AgiReply(511, -1, DEAD[4:], DEAD)),
    ],
)
def test_parse_reply(line: str, expected: AgiReply) -> None:
    assert parse_reply(line) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "plain",
        "a b",
        '"',
        "\\",
        '\\"',
        "x\\",
        '""',
        "\t",
        "tab\there",
        "张三 先生",
        'Zhang "San" \\ 1',
        '" EXEC System "rm -rf /',
        "a  b",
        "\\\\\\",
        "'single'",
    ],
)
def test_quoted_text_reads_back_as_one_argument(value: str) -> None:
    line = f"SET VARIABLE X {quote_arg(value, force=True)}"
    assert parse_args(line) == ["SET", "VARIABLE", "X", value]
    assert parse_args(f"VERBOSE {quote_arg(value)} 1") == ["VERBOSE", value, "1"]


def test_quote_arg_leaves_safe_words_bare() -> None:
    assert quote_arg("ordinary") == "ordinary"
    assert quote_arg(6000) == "6000"
    assert quote_arg("ordinary", force=True) == '"ordinary"'
    assert quote_arg("a b") == '"a b"'
    assert quote_arg('say "hi"\\') == '"say \\"hi\\"\\\\"'


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b", "\n", "x\r\nEXEC System reboot"])
def test_quote_arg_refuses_line_breaks_and_nul(bad: str) -> None:
    with pytest.raises(UnsafeValueError):
        quote_arg(bad)
    with pytest.raises(UnsafeValueError):
        quote_arg(bad, force=True)


@pytest.mark.parametrize(
    ("request_url", "route"),
    [
        ("agi://127.0.0.1:4573/ivr", "ivr"),
        ("agi://127.0.0.1/ivr", "ivr"),
        ("agi://pbx.example.com:4573/ivr?lang=zh", "ivr"),
        ("agi://127.0.0.1:4573/ivr/", "ivr/"),
        ("agi://127.0.0.1:4573/", ""),
        ("agi://127.0.0.1:4573", ""),
        ("agi://[::1:4573/ivr", ""),
    ],
)
def test_route_of(request_url: str, route: str) -> None:
    assert route_of(request_url) == route


# --------------------------------------------------------------------------- recorded exchanges

ANSWERED = [
    ("agi-in", RECORDED_ENV),
    ("agi-out", "WAIT FOR DIGIT 6000\n"),
    ("agi-in", "200 result=49\n"),
    ("agi-out", 'SET VARIABLE CTID_QUEUE "ordinary"\n'),
    ("agi-in", "200 result=1\n"),
    ("agi-out", 'SET VARIABLE CTID_IVR "1"\n'),
    ("agi-in", "200 result=1\n"),
]
# As recorded. The lab script sent CTID_IVR right after `HANGUP`, i.e. it took `HANGUP` as the
# reply to CTID_QUEUE (out of step); ctid waits for `200 result=1` first.
HANGUP_IN_IVR = [
    ("agi-in", RECORDED_ENV.replace("13800138000", "13700001111").replace("Zhang San", "Wang Wu")),
    ("agi-out", "WAIT FOR DIGIT 6000\n"),
    ("agi-in", "200 result=-1\n"),
    ("agi-out", 'SET VARIABLE CTID_QUEUE "ordinary"\n'),
    ("agi-in", "HANGUP\n"),
    ("agi-out", 'SET VARIABLE CTID_IVR ""\n'),
    ("agi-in", "200 result=1\n"),
]


def _recordings() -> list[Any]:
    found = sorted(TRANSCRIPT_DIR.glob("*.jsonl")) if TRANSCRIPT_DIR.is_dir() else []
    with_agi = [p for p in found if any(d == "agi-out" for d, _ in load_agi_lines(p))]
    return [pytest.param(p, id=p.stem) for p in with_agi] or [
        pytest.param(None, marks=pytest.mark.skip(reason=f"no recordings in {TRANSCRIPT_DIR}"))
    ]


@pytest.mark.parametrize("exchanges", [ANSWERED, HANGUP_IN_IVR], ids=["answered", "hangup"])
async def test_recorded_exchange_byte_for_byte(exchanges: list[tuple[str, str]]) -> None:
    calls = Calls()
    async with serving({"ivr": lab_ivr}, fallback_setting_default(calls)) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.replay(exchanges)
        assert await pbx.expect_closed() == b""
        await pbx.close()
        assert calls.seen == []


@pytest.mark.parametrize("path", _recordings())
async def test_every_recording_replays(path: Any) -> None:
    async with serving({"ivr": lab_ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.replay(load_agi_lines(path))
        assert await pbx.expect_closed() == b""
        await pbx.close()


def _per_call_ids_blanked(env: str) -> str:
    return re.sub(r"(agi_channel|agi_uniqueid|agi_threadid): .*", r"\1: *", env)


def test_inline_copies_match_the_recordings() -> None:
    answered = TRANSCRIPT_DIR / "answered.jsonl"
    hangup = TRANSCRIPT_DIR / "hangup_in_ivr.jsonl"
    if not (answered.exists() and hangup.exists()):
        pytest.skip(f"no recordings in {TRANSCRIPT_DIR}")
    assert load_agi_lines(answered) == ANSWERED
    rec = load_agi_lines(hangup)
    assert rec[1:] == HANGUP_IN_IVR[1:]
    assert _per_call_ids_blanked(rec[0][1]) == _per_call_ids_blanked(HANGUP_IN_IVR[0][1])


async def test_hangup_line_keeps_replies_in_step() -> None:
    seen: list[Any] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(await s.wait_for_digit(6000))
        seen.append(s.hung_up)
        await s.set_variable("CTID_QUEUE", "ordinary")
        await s.set_variable("CTID_IVR", "")
        seen.append(await s.get_variable("CTID_QUEUE"))
        seen.append(s.hung_up)

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        assert await pbx.read_command() == "WAIT FOR DIGIT 6000"
        await pbx.reply("200 result=49")
        assert await pbx.read_command() == 'SET VARIABLE CTID_QUEUE "ordinary"'
        await pbx.reply("HANGUP", "200 result=1")
        assert await pbx.read_command() == 'SET VARIABLE CTID_IVR ""'
        await pbx.reply("200 result=1")
        assert await pbx.read_command() == "GET VARIABLE CTID_QUEUE"
        await pbx.reply("200 result=1 (ordinary)")
        assert await pbx.expect_closed() == b""
    # Out of step, GET VARIABLE would have read CTID_IVR's `200 result=1` and returned "".
    assert seen == ["1", False, "ordinary", True]


async def test_hangup_before_the_result_line() -> None:
    seen: list[Any] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(await s.wait_for_digit(6000))
        seen.append(s.hung_up)
        seen.append(await s.get_variable("CTID_QUEUE"))

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        await pbx.read_command()
        await pbx.reply("HANGUP", "200 result=-1")
        assert await pbx.read_command() == "GET VARIABLE CTID_QUEUE"
        await pbx.reply("200 result=1 (expert)")
        assert await pbx.expect_closed() == b""
    assert seen == [None, True, "expert"]


async def test_dead_channel_511() -> None:
    seen: list[Any] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(await s.wait_for_digit(5000))
        await s.set_variable("CTID_QUEUE", "ordinary")  # quiet on 511
        seen.append(await s.stream_file("ctid/menu", "123"))
        seen.append(await s.get_data("ctid/enter-incident", 5000, 8))
        seen.append(s.hung_up)
        try:
            await s.command("ANSWER")
        except AgiHangup as exc:
            seen.append(("hangup", str(exc)))

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        assert await pbx.read_command() == "WAIT FOR DIGIT 5000"
        await pbx.reply(DEAD)
        assert await pbx.read_command() == 'SET VARIABLE CTID_QUEUE "ordinary"'
        await pbx.reply(DEAD)
        assert await pbx.read_command() == 'STREAM FILE ctid/menu "123"'
        await pbx.reply(DEAD)
        assert await pbx.read_command() == "GET DATA ctid/enter-incident 5000 8"
        await pbx.reply(DEAD)
        assert await pbx.read_command() == "ANSWER"
        await pbx.reply(DEAD)
        assert await pbx.expect_closed() == b""
    assert seen == [None, None, None, True, ("hangup", DEAD)]


async def test_route_handler_ending_in_agi_hangup_gets_no_fallback() -> None:
    calls = Calls()

    async def ivr(s: AgiSession) -> None:
        await s.answer()

    with capture_logs() as logs:
        async with serving({"ivr": ivr}, fallback_setting_default(calls)) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(RECORDED_ENV.encode())
            assert await pbx.read_command() == "ANSWER"
            await pbx.reply("200 result=-1")
            assert await pbx.expect_closed() == b""
    assert calls.seen == []
    assert events(logs, "agi_caller_hung_up")
    assert not events(logs, "agi_handler_failed")


async def test_error_replies_510_and_multiline_520_stay_in_step() -> None:
    seen: list[Any] = []

    async def ivr(s: AgiSession) -> None:
        for verb, args in (("FROB", ()), ("WAIT FOR DIGIT", ("soon",)), ("SAY NUMBER", ("x",))):
            try:
                await s.command(verb, *args)
            except AgiCommandError as exc:
                seen.append((exc.reply.code, exc.reply.data))
        seen.append(await s.get_data("ctid/menu", 3000, 4))
        seen.append(await s.get_data("ctid/menu", 3000, 4))

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        assert await pbx.read_command() == "FROB"
        await pbx.reply("510 Invalid or unknown command")
        assert await pbx.read_command() == "WAIT FOR DIGIT soon"
        await pbx.reply(
            "520-Invalid command syntax.  Proper usage follows:",
            " Usage: WAIT FOR DIGIT <timeout>",
            "        Waits up to <timeout> milliseconds for channel to receive a DTMF digit.",
            "200 result=0 is not a reply inside a usage block",
            "520 End of proper usage.",
        )
        assert await pbx.read_command() == "SAY NUMBER x"
        await pbx.reply("520 Invalid command syntax.  Proper usage not available.")
        assert await pbx.read_command() == "GET DATA ctid/menu 3000 4"
        await pbx.reply("200 result= (timeout)")
        assert await pbx.read_command() == "GET DATA ctid/menu 3000 4"
        await pbx.reply("200 result=0042")
        assert await pbx.expect_closed() == b""
    assert seen[0] == (510, "Invalid or unknown command")
    assert seen[1][0] == 520 and "WAIT FOR DIGIT <timeout>" in seen[1][1]
    assert seen[2] == (520, "Invalid command syntax.  Proper usage not available.")
    assert seen[3:] == ["", "0042"]


async def test_stream_file_and_wait_for_digit_results() -> None:
    seen: list[Any] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(await s.stream_file("ctid/welcome"))
        seen.append(await s.stream_file("ctid/menu", "0123#"))
        seen.append(await s.wait_for_digit(6000))
        seen.append(await s.wait_for_digit(6000))
        seen.append(await s.get_variable("UNSET"))
        await s.verbose("IVR 完成", 3)
        await s.hangup()
        seen.append(s.hung_up)

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        assert await pbx.read_command() == 'STREAM FILE ctid/welcome ""'
        await pbx.reply("200 result=0 endpos=8000")
        assert await pbx.read_command() == 'STREAM FILE ctid/menu "0123#"'
        await pbx.reply("200 result=35 endpos=1200")
        await pbx.read_command()
        await pbx.reply("200 result=0")
        await pbx.read_command()
        await pbx.reply("200 result=42")
        assert await pbx.read_command() == "GET VARIABLE UNSET"
        await pbx.reply("200 result=0")
        assert await pbx.read_command() == 'VERBOSE "IVR 完成" 3'
        await pbx.reply("200 result=1")
        assert await pbx.read_command() == "HANGUP"
        await pbx.reply("200 result=1", "HANGUP")
        assert await pbx.expect_closed() == b""
    assert seen == ["", "#", "", "*", None, True]


# --------------------------------------------------------------------------- headers & routing


async def test_duplicate_headers_first_wins_and_values_are_untrusted_text() -> None:
    seen: list[AgiSession] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(s)

    async def admin(s: AgiSession) -> None:
        raise AssertionError("a repeated agi_request must not pick the route")

    # A repeat of a header Asterisk already sent, outside any caller value: the first wins.
    # An unknown header after the fixed block is kept.
    env = env_block(calleridname="NAME").replace(b"NAME", b"\xe5\xbc\xa0\xff\xfe")
    env = env.removesuffix(b"\n") + (
        b"agi_request: agi://127.0.0.1:4573/admin\nagi_extra:no space: colon\r\n\n"
    )
    async with serving({"ivr": ivr, "admin": admin}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(env)
        assert await pbx.expect_closed() == b""
    (s,) = seen
    assert s.route == "ivr"
    assert s.env["agi_request"] == "agi://127.0.0.1:4573/ivr"
    assert s.caller_number == "13800138000"
    assert s.caller_name == "张\ufffd\ufffd"
    assert s.env["agi_extra"] == "no space: colon"


async def test_unknown_caller_id_is_empty() -> None:
    seen: list[AgiSession] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(s)

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(env_block(callerid="unknown", calleridname="unknown"))
        await pbx.expect_closed()
    assert (seen[0].caller_number, seen[0].caller_name) == ("", "")
    assert seen[0].env["agi_callerid"] == "unknown"


async def test_unknown_route_goes_to_fallback() -> None:
    calls = Calls()

    async def ivr(s: AgiSession) -> None:
        calls.seen.append(("ivr", s))

    with capture_logs() as logs:
        async with serving({"ivr": ivr}, fallback_setting_default(calls)) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(env_block("agi://127.0.0.1:4573/ivr2"))
            assert await pbx.read_command() == 'SET VARIABLE CTID_QUEUE "ordinary"'
            await pbx.reply("200 result=1")
            assert await pbx.expect_closed() == b""
            assert server.stats()["fallbacks"] == 1
    assert calls.names() == ["fallback"]
    (req,) = events(logs, "agi_request")
    assert req["route"] == "ivr2" and req["known_route"] is False
    assert req["uniqueid"] == "1795358660.1"


async def test_route_comes_from_the_request_path_never_from_caller_values() -> None:
    calls = Calls()

    async def admin(s: AgiSession) -> None:
        calls.seen.append(("admin", s))

    async with serving({"admin": admin}, fallback_setting_default(calls)) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(
            env_block(
                "agi://127.0.0.1:4573/ivr",
                callerid="admin",
                calleridname="agi://127.0.0.1:4573/admin",
                dnid="admin",
                extension="admin",
                network_script="admin",
                arg_1="admin",
            )
        )
        assert await pbx.read_command() == 'SET VARIABLE CTID_QUEUE "ordinary"'
        await pbx.reply("200 result=1")
        await pbx.expect_closed()
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(env_block("agi://127.0.0.1:4573/admin", callerid="ivr"))
        await pbx.expect_closed()
    assert calls.names() == ["fallback", "admin"]


# --------------------------------------------------------------------------- hostile clients


class _Stalled(BaseException):
    """Raised by SIGALRM inside whatever froze the loop (not an Exception: handlers can't eat it)."""


@pytest.fixture
def stall_guard() -> Iterator[None]:
    """Fail, instead of hanging forever, if the event loop stops turning: a frozen loop never
    fires asyncio timeouts, but a real-time signal still interrupts it."""
    fired: list[bool] = []

    def on_alarm(signum: int, frame: Any) -> None:
        fired.append(True)
        raise _Stalled("the event loop stalled")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 20.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not fired, "a hostile client froze the event loop"


async def _connect_and_close(port: int) -> None:
    pbx = await FakeAsterisk.connect(port)
    await pbx.close()


async def _send_then_wait_close(port: int, data: bytes) -> bytes:
    pbx = await FakeAsterisk.connect(port)
    await pbx.send(data)
    rest = await pbx.expect_closed()
    await pbx.close()
    return rest


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "closed_before_header"),
        (b"agi_network: yes\nagi_request: agi://127.0.0.1/ivr\n", "closed_in_header"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_header"),
        (b"\x00\xff\xfe\x16\x03\x01\x02\x00\x01\x00\x01\xfc\n", "bad_header"),
        (b"agi_network: yes\n\n", "no_agi_request"),
        (b"agi_x: " + b"y" * 20000 + b"\n\n", "header_too_large"),
        (b"agi_x: y\n" * 3000 + b"\n", "header_too_large"),
        (b"z" * 100_000, "header_too_large"),
    ],
    ids=[
        "close",
        "half-header",
        "http",
        "binary",
        "no-request",
        "long-line",
        "many-lines",
        "no-newline",
    ],
)
@pytest.mark.usefixtures("stall_guard")
async def test_hostile_client_is_dropped_alone(data: bytes, reason: str) -> None:
    calls = Calls()
    with capture_logs() as logs:
        async with serving({"ivr": lab_ivr}, fallback_setting_default(calls)) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(data)
            if reason in ("closed_before_header", "closed_in_header"):
                await pbx.close()
            else:
                assert await pbx.expect_closed() == b""
                await pbx.close()
            # the next caller is served normally
            assert await run_lab_call(server.port) == [
                "WAIT FOR DIGIT 6000",
                'SET VARIABLE CTID_QUEUE "ordinary"',
                'SET VARIABLE CTID_IVR "1"',
            ]
            stats = server.stats()
    assert calls.seen == []
    assert [e["reason"] for e in events(logs, "agi_session_dropped")] == [reason]
    assert stats["dropped"] == 1 and stats["served"] == 1


@pytest.mark.usefixtures("stall_guard")
async def test_hostile_connections_do_not_stall_other_sessions() -> None:
    """Several hostile peers stay connected (half a header, a slow drip, a client that closed
    mid-header) while a real call goes through; then they are dropped."""
    with capture_logs() as logs:
        async with serving({"ivr": lab_ivr}) as server:
            half = await FakeAsterisk.connect(server.port)
            await half.send(b"agi_network: yes\nagi_request: agi://127.0")
            drip = await FakeAsterisk.connect(server.port)
            await drip.send(b"agi_network: yes\n")
            gone = await FakeAsterisk.connect(server.port)
            await gone.send(b"agi_network: yes\n")
            await gone.close()
            assert (await run_lab_call(server.port))[0] == "WAIT FOR DIGIT 6000"
            await drip.send(b"agi_type: Local\n")
            assert (await run_lab_call(server.port))[0] == "WAIT FOR DIGIT 6000"
            assert server.stats()["in_flight"] >= 2  # half and drip are still connected
        # shutting down closes them
        assert await half.expect_closed() == b""
        assert await drip.expect_closed() == b""
    assert [e["reason"] for e in events(logs, "agi_session_dropped")] == ["closed_in_header"]


@pytest.mark.looptime
async def test_slow_header_is_dropped_at_the_header_timeout() -> None:
    with capture_logs() as logs:
        async with serving({"ivr": lab_ivr}, header_timeout_s=5.0) as server:
            pbx = await FakeAsterisk.connect(server.port)
            closed = asyncio.create_task(pbx.expect_closed(wait_s=120))
            # a slow drip, one header line a second: each line is on time, the header is not
            for line in RECORDED_ENV.splitlines(keepends=True)[:-1]:
                if closed.done():
                    break
                await pbx.send(line.encode())
                await asyncio.sleep(1)
            assert await closed == b""
            await pbx.close()
    assert [e["reason"] for e in events(logs, "agi_session_dropped")] == ["header_timeout"]


@pytest.mark.parametrize(
    ("flood", "reason"),
    [
        ("HANGUP\n" * 100, "too_many_unsolicited_lines"),
        ("hello there\n", "bad_reply"),
        ("200 result=1 (" + "x" * 9000 + ")\n", "reply_line_too_long"),
        ("2" * 100_000, "reply_line_too_long"),
    ],
    ids=["hangup-flood", "garbage", "long-line", "no-newline"],
)
async def test_bad_replies_end_the_session_without_fallback(flood: str, reason: str) -> None:
    calls = Calls()
    with capture_logs() as logs:
        async with serving({"ivr": lab_ivr}, fallback_setting_default(calls)) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(RECORDED_ENV.encode())
            assert await pbx.read_command() == "WAIT FOR DIGIT 6000"
            await pbx.send(flood.encode())
            assert await pbx.expect_closed() == b""
            await pbx.close()
            assert (await run_lab_call(server.port))[0] == "WAIT FOR DIGIT 6000"
    assert calls.seen == []
    assert [e["reason"] for e in events(logs, "agi_session_dropped")] == [reason]


async def test_caller_closing_mid_command_ends_the_session_quietly() -> None:
    seen: list[Any] = []
    done = asyncio.Event()

    async def ivr(s: AgiSession) -> None:
        try:
            seen.append(await s.wait_for_digit(6000))
            await s.set_variable("CTID_QUEUE", "ordinary")
            seen.append(s.hung_up)
        finally:
            done.set()

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        await pbx.read_command()
        await pbx.close()
        await asyncio.wait_for(done.wait(), 5)
    assert seen == [None, True]


# --------------------------------------------------------------------------- quoting on the wire


async def test_unsafe_values_are_refused_before_anything_is_sent() -> None:
    refused: list[str] = []
    nasty = 'Zhang "San" \\ 1\tx'

    async def ivr(s: AgiSession) -> None:
        attempts: list[Callable[[], Awaitable[Any]]] = [
            lambda: s.set_variable("CALLER", 'x"\nEXEC System "reboot'),
            lambda: s.set_variable("CALLER\r\nEXEC", "x"),
            lambda: s.set_variable("CALLER", "a\0b"),
            lambda: s.command("EXEC\nSystem", "reboot"),
            lambda: s.command("VERBOSE", "ok\r", 1),
            lambda: s.verbose("line one\nline two"),
            lambda: s.stream_file("ctid/welcome\nEXEC System reboot"),
            lambda: s.set_variable("CALLER", "A" * MAX_COMMAND_BYTES),
            lambda: s.set_variable("CALLER", "\ud800"),
        ]
        for attempt in attempts:
            try:
                await attempt()
            except UnsafeValueError as exc:
                refused.append(str(exc))
        await s.set_variable("CALLER", nasty)
        await s.set_variable("CALLER_NAME", s.caller_name)

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(env_block(calleridname='Li "\\" Si'))
        line = await pbx.read_command()
        assert line == 'SET VARIABLE CALLER "Zhang \\"San\\" \\\\ 1\tx"'
        assert parse_args(line) == ["SET", "VARIABLE", "CALLER", nasty]
        await pbx.reply("200 result=1")
        line = await pbx.read_command()
        assert parse_args(line) == ["SET", "VARIABLE", "CALLER_NAME", 'Li "\\" Si']
        await pbx.reply("200 result=1")
        assert await pbx.expect_closed() == b""
    assert len(refused) == 9


async def test_longest_allowed_command_is_sent() -> None:
    async def ivr(s: AgiSession) -> None:
        # `SET VARIABLE X "` + value + `"\n` is exactly the limit
        await s.set_variable("X", "v" * (MAX_COMMAND_BYTES - len('SET VARIABLE X ""\n')))

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        line = await pbx.read_command()
        assert len(line) + 1 == MAX_COMMAND_BYTES
        await pbx.reply("200 result=1")
        await pbx.expect_closed()


# --------------------------------------------------------------------------- deadline & fallback


@pytest.mark.looptime
async def test_deadline_cancels_the_route_and_runs_the_fallback() -> None:
    calls = Calls()
    cancelled = asyncio.Event()

    async def ivr(s: AgiSession) -> None:
        try:
            await asyncio.sleep(3600)  # a lookup that hangs
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with capture_logs() as logs:
        async with serving(
            {"ivr": ivr}, fallback_setting_default(calls), request_deadline_s=60.0
        ) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(RECORDED_ENV.encode())
            assert await pbx.read_command(wait_s=600) == 'SET VARIABLE CTID_QUEUE "ordinary"'
            await pbx.reply("200 result=1")
            assert await pbx.expect_closed() == b""
            stats = server.stats()
    assert cancelled.is_set()
    assert calls.names() == ["fallback"]
    assert stats["deadline_exceeded"] == 1 and stats["fallbacks"] == 1
    (ev,) = events(logs, "agi_deadline_exceeded")
    assert ev["deadline_s"] == 60.0 and ev["route"] == "ivr"


@pytest.mark.looptime
async def test_deadline_mid_command_fallback_reads_the_late_reply_first() -> None:
    calls = Calls()
    seen: list[Any] = []

    async def ivr(s: AgiSession) -> None:
        await s.wait_for_digit(120_000)
        raise AssertionError("not reached")

    async def fallback(s: AgiSession) -> None:
        calls.event("fallback").set()
        await s.set_variable("CTID_QUEUE", "ordinary")
        seen.append(await s.get_variable("CTID_QUEUE"))

    async with serving({"ivr": ivr}, fallback, request_deadline_s=60.0) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        assert await pbx.read_command() == "WAIT FOR DIGIT 120000"
        await asyncio.wait_for(calls.event("fallback").wait(), 600)
        await pbx.reply("200 result=49")  # the late reply to WAIT FOR DIGIT
        assert await pbx.read_command() == 'SET VARIABLE CTID_QUEUE "ordinary"'
        await pbx.reply("200 result=1")
        assert await pbx.read_command() == "GET VARIABLE CTID_QUEUE"
        await pbx.reply("200 result=1 (ordinary)")
        assert await pbx.expect_closed() == b""
    assert seen == ["ordinary"]


@pytest.mark.looptime
async def test_fallback_that_overruns_is_cut_and_the_socket_closed() -> None:
    async def ivr(s: AgiSession) -> None:
        await asyncio.sleep(3600)

    async def fallback(s: AgiSession) -> None:
        await asyncio.sleep(3600)

    with capture_logs() as logs:
        async with serving({"ivr": ivr}, fallback, request_deadline_s=30.0) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(RECORDED_ENV.encode())
            assert await pbx.expect_closed(wait_s=600) == b""
    assert [e["stage"] for e in events(logs, "agi_deadline_exceeded")] == ["route", "fallback"]


class Boom(Exception):
    pass


@pytest.mark.parametrize("kind", ["raises", "sync"])
async def test_failing_route_logs_and_runs_the_fallback(kind: str) -> None:
    calls = Calls()

    async def raising(s: AgiSession) -> None:
        await s.answer()
        raise Boom("database down")

    def sync_route(s: AgiSession) -> None:  # panoramisk crashed on these
        calls.notes.append("sync called")

    route: Any = raising if kind == "raises" else sync_route
    with capture_logs() as logs:
        async with serving({"ivr": route}, fallback_setting_default(calls)) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(RECORDED_ENV.encode())
            if kind == "raises":
                assert await pbx.read_command() == "ANSWER"
                await pbx.reply("200 result=0")
            assert await pbx.read_command() == 'SET VARIABLE CTID_QUEUE "ordinary"'
            await pbx.reply("200 result=1")
            assert await pbx.expect_closed() == b""
            assert server.stats()["handler_failures"] == 1
    assert calls.names() == ["fallback"]
    (failed,) = events(logs, "agi_handler_failed")
    assert failed["route"] == "ivr" and failed["exc_info"] is True


async def test_failing_route_on_a_dead_channel_gets_no_fallback() -> None:
    calls = Calls()

    async def ivr(s: AgiSession) -> None:
        await s.wait_for_digit(6000)
        raise Boom("after hangup")

    with capture_logs() as logs:
        async with serving({"ivr": ivr}, fallback_setting_default(calls)) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(RECORDED_ENV.encode())
            await pbx.read_command()
            await pbx.reply("200 result=-1", "HANGUP")
            assert await pbx.expect_closed() == b""
    assert calls.seen == []
    assert len(events(logs, "agi_handler_failed")) == 1


async def test_failing_fallback_still_closes_the_socket() -> None:
    async def fallback(s: AgiSession) -> None:
        raise Boom("fallback broken too")

    with capture_logs() as logs:
        async with serving({}, fallback) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(RECORDED_ENV.encode())
            assert await pbx.expect_closed() == b""
    assert [e["stage"] for e in events(logs, "agi_handler_failed")] == ["fallback"]


# --------------------------------------------------------------------------- lifecycle & load


async def test_shutdown_closes_sessions_in_flight() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def ivr(s: AgiSession) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        await asyncio.wait_for(started.wait(), 5)
        assert server.stats()["in_flight"] == 1
        port = server.port
    assert cancelled.is_set()
    assert await pbx.expect_closed() == b""
    assert server.stats()["in_flight"] == 0
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_port_in_use_fails_at_startup() -> None:
    async with serving({}) as first:
        with pytest.raises(OSError):
            async with FastAgiServer(
                AgiConfig(listen_port=first.port), {}, fallback_setting_default(Calls())
            ):
                pass


async def test_many_concurrent_sessions() -> None:
    n = 200
    digits = {i: "2" if i % 3 == 0 else "1" for i in range(n)}

    async def call(i: int) -> list[str]:
        return await run_lab_call(port, f"200 result={ord(digits[i])}")

    with capture_logs():  # keep 200 sessions' logs out of the output
        async with serving({"ivr": lab_ivr}) as server:
            port = server.port
            results = await asyncio.wait_for(asyncio.gather(*(call(i) for i in range(n))), 60)
            stats = server.stats()
    for i, commands in enumerate(results):
        queue = "expert" if digits[i] == "2" else "ordinary"
        assert commands == [
            "WAIT FOR DIGIT 6000",
            f'SET VARIABLE CTID_QUEUE "{queue}"',
            f'SET VARIABLE CTID_IVR "{digits[i]}"',
        ]
    assert stats["served"] == n and stats["dropped"] == 0


async def test_logs_name_the_request() -> None:
    with capture_logs() as logs:
        async with serving({"ivr": lab_ivr}) as server:
            await run_lab_call(server.port)
    (req,) = events(logs, "agi_request")
    assert req["route"] == "ivr" and req["known_route"] is True
    assert req["channel"] == "Local/4000@hotline-00000000;2"
    assert req["uniqueid"] == "1795358660.1"
    assert "13800138000" not in repr(logs)  # caller values stay out of the logs
    assert structlog.contextvars.get_contextvars() == {}


def test_raw_env_helper_round_trips() -> None:
    assert raw_env([("agi_a", "1")]) == b"agi_a: 1\n\n"
    assert env_block().decode() == RECORDED_ENV


# --------------------------------------------------------------------------- missing prompt vs hangup

MISSING = "200 result=-1 endpos=0"  # pjsip_missing_prompt: Asterisk cannot open the file


async def test_missing_prompt_is_told_from_a_hangup_and_the_menu_goes_on() -> None:
    seen: list[Any] = []
    sessions: list[AgiSession] = []

    async def ivr(s: AgiSession) -> None:
        sessions.append(s)
        seen.append(await s.stream_file("ctid/no-such-prompt", "0123456789*#"))
        seen.append(await s.stream_file("ctid/no-such-prompt", "0123456789*#"))
        seen.append(await s.get_data("ctid/menu", 5000, 1))
        seen.append(await s.get_data("ctid/enter-incident", 4000, 16))
        seen.append(s.alive)

    with capture_logs() as logs:
        async with serving({"ivr": ivr}) as server:
            pbx = await FakeAsterisk.connect(server.port)
            await pbx.send(RECORDED_ENV.encode())
            assert await pbx.read_command() == 'STREAM FILE ctid/no-such-prompt "0123456789*#"'
            await pbx.reply(MISSING)
            # the probe: on a live channel CHANNEL STATUS answers the state (6 = Up)
            assert await pbx.read_command() == "CHANNEL STATUS"
            await pbx.reply("200 result=6")
            assert await pbx.read_command() == 'STREAM FILE ctid/no-such-prompt "0123456789*#"'
            await pbx.reply(MISSING)
            assert await pbx.read_command() == "CHANNEL STATUS"
            await pbx.reply("200 result=6")
            # GET DATA of a missing prompt answers `result=-1` at once; the key is collected
            # silently with WAIT FOR DIGIT
            assert await pbx.read_command() == "GET DATA ctid/menu 5000 1"
            await pbx.reply("200 result=-1")
            assert await pbx.read_command() == "CHANNEL STATUS"
            await pbx.reply("200 result=6")
            assert await pbx.read_command() == "WAIT FOR DIGIT 5000"
            await pbx.reply("200 result=50")
            assert await pbx.read_command() == "GET DATA ctid/enter-incident 4000 16"
            await pbx.reply("200 result=-1")
            assert await pbx.read_command() == "CHANNEL STATUS"
            await pbx.reply("200 result=6")
            for key in "42#":
                assert await pbx.read_command() == "WAIT FOR DIGIT 4000"
                await pbx.reply(f"200 result={ord(key)}")
            assert await pbx.expect_closed() == b""
            await pbx.close()
    assert seen == ["", "", "2", "42", True]
    assert sessions[0].unplayable == ["ctid/no-such-prompt", "ctid/menu", "ctid/enter-incident"]
    warned = [e["prompt"] for e in logs if e["event"] == "agi_prompt_unplayable"]
    assert warned == ["ctid/no-such-prompt", "ctid/menu", "ctid/enter-incident"]  # once each


@pytest.mark.parametrize("sighup", [True, False], ids=["hangup-line", "agisighup-no"])
async def test_hangup_during_a_prompt_ends_the_session(sighup: bool) -> None:
    seen: list[Any] = []
    sessions: list[AgiSession] = []

    async def ivr(s: AgiSession) -> None:
        sessions.append(s)
        seen.append(await s.stream_file("ctid/welcome", "0123456789*#"))
        seen.append(s.alive)

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        assert await pbx.read_command() == 'STREAM FILE ctid/welcome "0123456789*#"'
        # res_agi announces the hangup after the reply (unless AGISIGHUP=no) and turns the
        # session dead before it reads the probe, which therefore gets 511 either way
        await pbx.reply("200 result=-1 endpos=11520", *(["HANGUP"] if sighup else []))
        assert await pbx.read_command() == "CHANNEL STATUS"
        await pbx.reply("511 Command Not Permitted on a dead channel or intercept routine")
        assert await pbx.expect_closed() == b""
        await pbx.close()
    assert seen == [None, False]
    assert sessions[0].unplayable == []


async def test_missing_prompt_then_hangup_while_collecting_digits() -> None:
    seen: list[Any] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(await s.get_data("ctid/menu", 5000, 1))

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        assert await pbx.read_command() == "GET DATA ctid/menu 5000 1"
        await pbx.reply("200 result=-1")
        assert await pbx.read_command() == "CHANNEL STATUS"
        await pbx.reply("200 result=6")
        assert await pbx.read_command() == "WAIT FOR DIGIT 5000"
        await pbx.reply("200 result=-1", "HANGUP")
        assert await pbx.expect_closed() == b""
        await pbx.close()
    assert seen == [None]


async def test_a_probe_asterisk_does_not_understand_counts_as_a_live_channel() -> None:
    seen: list[Any] = []

    async def ivr(s: AgiSession) -> None:
        seen.append(await s.stream_file("ctid/welcome"))
        seen.append(await s.wait_for_digit(1000))

    async with serving({"ivr": ivr}) as server:
        pbx = await FakeAsterisk.connect(server.port)
        await pbx.send(RECORDED_ENV.encode())
        assert await pbx.read_command() == 'STREAM FILE ctid/welcome ""'
        await pbx.reply(MISSING)
        assert await pbx.read_command() == "CHANNEL STATUS"
        await pbx.reply("510 Invalid or unknown command")
        # went on; the caller turns out to be gone at the next command
        assert await pbx.read_command() == "WAIT FOR DIGIT 1000"
        await pbx.reply("511 Command Not Permitted on a dead channel or intercept routine")
        assert await pbx.expect_closed() == b""
        await pbx.close()
    assert seen == ["", None]
