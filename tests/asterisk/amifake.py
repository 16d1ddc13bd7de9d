"""A tiny scriptable fake AMI server (raw asyncio TCP) and transcript helpers for the AMI tests.

It answers Login and Ping like Asterisk 22 (bytes from the recordings) unless told otherwise and
hands every other action to the test, which scripts the reply byte by byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from structlog.testing import capture_logs

from ctid.asterisk.ami import AmiConnection
from ctid.asterisk.frame import Frame
from ctid.config import AmiConfig
from tests.paths import TRANSCRIPTS

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
LOGIN_OK = "Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\n"
FULLY_BOOTED = (
    "Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 275\r\nLastReload: 275\r\n"
    "Status: Fully Booted\r\n\r\n"
)
PONG = "Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1795358928.606567\r\n\r\n"
WAIT = 5.0  # the bound on every wait in these tests


def transcript(name: str) -> list[dict[str, str]]:
    path = TRANSCRIPTS / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def reply_block(name: str, action: str, nth: int = 0) -> tuple[str, list[str]]:
    """The recorded ActionID of the `nth` `action` in transcript `name` and every frame Asterisk
    sent after it, up to the client's next action (exact recorded text)."""
    records = transcript(name)
    seen = 0
    for i, rec in enumerate(records):
        if rec["dir"] == "out" and rec["raw"].startswith(f"Action: {action}\r\n"):
            if seen < nth:
                seen += 1
                continue
            recorded_id = Frame(_pairs(rec["raw"]))["ActionID"]
            block: list[str] = []
            for later in records[i + 1 :]:
                if later["dir"] == "out":
                    break
                if later["dir"] == "in" and later["raw"] != "<EOF>":
                    block.append(later["raw"])
            return recorded_id, block
    raise LookupError(f"{name} has no action {action} #{nth}")


def retarget(raw: str, recorded_id: str, action_id: str) -> bytes:
    """The recorded frame with its ActionID swapped for the one our client chose."""
    return raw.replace(f"ActionID: {recorded_id}\r\n", f"ActionID: {action_id}\r\n").encode()


def parse_frame(raw: str) -> Frame:
    return Frame(_pairs(raw))


def _pairs(raw: str) -> list[tuple[str, str]]:
    pairs = []
    for line in raw.split("\r\n"):
        if ": " in line:
            name, _, value = line.partition(": ")
            pairs.append((name, value))
    return pairs


@dataclass
class ReceivedAction:
    conn: int
    frame: Frame
    raw: bytes

    @property
    def name(self) -> str:
        return self.frame["Action"]

    @property
    def action_id(self) -> str:
        return self.frame["ActionID"]


@dataclass
class FakeConn:
    """One accepted client connection."""

    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    accepted_at: float
    actions: asyncio.Queue[ReceivedAction] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    pong: bool = True

    def write(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)

    async def send(self, data: bytes | str) -> None:
        self.write(data)
        await self.writer.drain()

    async def next_action(self, within: float = WAIT) -> ReceivedAction:
        return await asyncio.wait_for(self.actions.get(), within)

    def abort(self) -> None:
        self.writer.transport.abort()

    async def wait_closed(self, within: float = WAIT) -> None:
        await asyncio.wait_for(self.closed.wait(), within)


class FakeAmi:
    """Listens on 127.0.0.1 (ephemeral port). `login`: accept (Success + FullyBooted), reject
    (the recorded `Authentication failed`, then close) or ignore (never answer)."""

    def __init__(
        self,
        *,
        login: Literal["accept", "reject", "ignore"] = "accept",
        banner: bytes = BANNER,
        pong: bool = True,
    ) -> None:
        self.login = login
        self.banner = banner
        self.pong = pong
        self.received: list[ReceivedAction] = []
        self.conns: list[FakeConn] = []
        self._new: asyncio.Queue[FakeConn] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._got_action = asyncio.Event()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def names(self) -> list[str]:
        return [a.name for a in self.received]

    async def __aenter__(self) -> FakeAmi:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self.conns:
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self._server.wait_closed()

    async def wait_received(self, name: str, within: float = WAIT) -> ReceivedAction:
        """The first action named `name` the server has read (waits for it)."""
        async with asyncio.timeout(within):
            while True:
                for action in self.received:
                    if action.name == name:
                        return action
                self._got_action.clear()
                await self._got_action.wait()

    async def next_conn(self, within: float = WAIT) -> FakeConn:
        return await asyncio.wait_for(self._new.get(), within)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        conn = FakeConn(
            len(self.conns), reader, writer, asyncio.get_running_loop().time(), pong=self.pong
        )
        self.conns.append(conn)
        try:
            if self.banner:
                writer.write(self.banner)
            self._new.put_nowait(conn)
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                frame = Frame(_pairs(raw.decode("utf-8", "replace")))
                action = ReceivedAction(conn.index, frame, raw)
                self.received.append(action)
                self._got_action.set()
                if not self._auto(conn, action):
                    conn.actions.put_nowait(action)
        finally:
            conn.closed.set()
            writer.transport.abort()
            self._tasks.discard(task)

    def _auto(self, conn: FakeConn, action: ReceivedAction) -> bool:
        aid = action.action_id
        if action.name == "Login":
            if self.login == "accept":
                conn.write(LOGIN_OK.format(id=aid) + FULLY_BOOTED)
            elif self.login == "reject":
                recorded_id, block = reply_block("bad_login.jsonl", "Login")
                conn.write(retarget(block[0], recorded_id, aid))
                # Asterisk hangs up right after refusing a login.
                conn.writer.close()
            return True
        if action.name == "Ping":
            if conn.pong:
                conn.write(PONG.format(id=aid))
            return True
        return False


def config(port: int, **overrides: object) -> AmiConfig:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "username": "ctid",
        "secret": "ctidlab",
        "connect_timeout_s": 5.0,
        "action_timeout_s": 5.0,
        "ping_interval_s": 30.0,
        "reconnect_min_s": 0.01,
        "reconnect_max_s": 0.05,
    }
    base.update(overrides)
    return AmiConfig.model_validate(base)


class Recorder:
    """Collects what the connection hands the app: frames, link changes, logins."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[Frame] = asyncio.Queue()
        self.seen: list[Frame] = []
        self.links: asyncio.Queue[bool] = asyncio.Queue()
        self.logins = 0
        self.login_done: asyncio.Queue[int] = asyncio.Queue()

    def on_frame(self, frame: Frame) -> None:
        self.seen.append(frame)
        self.frames.put_nowait(frame)

    def on_link_change(self, up: bool) -> None:
        self.links.put_nowait(up)

    async def on_login(self) -> None:
        self.logins += 1
        self.login_done.put_nowait(self.logins)

    async def next_frame(self, within: float = WAIT) -> Frame:
        return await asyncio.wait_for(self.frames.get(), within)

    async def next_event(self, name: str, within: float = WAIT) -> Frame:
        """The next frame named `name`, skipping others (e.g. FullyBooted)."""
        async with asyncio.timeout(within):
            while True:
                frame = await self.frames.get()
                if frame.event == name:
                    return frame

    async def next_link(self, within: float = WAIT) -> bool:
        return await asyncio.wait_for(self.links.get(), within)


def connection(
    cfg: AmiConfig,
    rec: Recorder,
    *,
    on_frame: Callable[[Frame], None] | None = None,
    seed: int = 7,
) -> AmiConnection:
    return AmiConnection(
        cfg,
        on_frame or rec.on_frame,
        on_login=rec.on_login,
        on_link_change=rec.on_link_change,
        rng=random.Random(seed),
    )


@contextlib.asynccontextmanager
async def running(conn: AmiConnection) -> AsyncIterator[asyncio.Task[None]]:
    """Run `conn.run()` for the block; close it afterwards and check run() ended cleanly."""
    async with conn:
        task = asyncio.create_task(conn.run())
        try:
            yield task
        finally:
            await conn.close()
            await asyncio.wait_for(task, WAIT)


class LogWatch:
    """`capture_logs` entries that a test can also wait on."""

    def __init__(self) -> None:
        self.entries: list[Any] = []
        self._changed = asyncio.Event()

    def _notify(self, _logger: object, _method: str, event_dict: Any) -> Any:
        self._changed.set()
        return event_dict

    def names(self) -> list[str]:
        return [e["event"] for e in self.entries]

    def count(self, event: str) -> int:
        return self.names().count(event)

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["event"] == event]

    async def wait_count(self, event: str, n: int, within: float = WAIT) -> None:
        async with asyncio.timeout(within):
            while self.count(event) < n:
                self._changed.clear()
                await self._changed.wait()


@contextlib.contextmanager
def watch_logs() -> Iterator[LogWatch]:
    watch = LogWatch()
    with capture_logs(processors=[watch._notify]) as entries:
        watch.entries = entries
        yield watch
