"""The simulator's AMI listener like Asterisk 22's manager: TCP sessions, banner, login (a failed one
answered after a second, then closed), per-user event classes and `!Event` filters, batched writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ctid.asterisk.simulator.wire import (
    ALL_CLASSES,
    BANNER,
    ActionParser,
    Pairs,
    encode,
    header,
    is_true,
)

log = structlog.get_logger(__name__)

# A client that stops reading is dropped once this much is queued for it (Asterisk drops slow
# consumers after its write timeout; we only protect our memory).
MAX_PENDING_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class AmiUser:
    """An AMI account as manager.conf defines it; `read` is the set of event classes it receives."""

    username: str
    secret: str
    read: frozenset[str] = ALL_CLASSES
    write: frozenset[str] = ALL_CLASSES
    ignored: frozenset[str] = frozenset()
    """Event names a `!Event: X` filter in manager.conf keeps from this user."""


def parse_classes(text: str) -> frozenset[str]:
    parts = {p.strip().lower() for p in text.split(",") if p.strip()}
    if "all" in parts:
        return ALL_CLASSES
    return frozenset(parts & ALL_CLASSES)


Dispatch = Callable[["AmiSession", Pairs], None]


class AmiSession(asyncio.Protocol):
    """One manager connection."""

    def __init__(self, server: AmiServer) -> None:
        self._server = server
        self._parser = ActionParser()
        self.transport: asyncio.Transport | None = None
        self.user: AmiUser | None = None
        self.event_mask: frozenset[str] = frozenset()
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._chunks: list[bytes] = []
        self._backlog: list[Pairs] = []
        self.busy = False  # a failed login is being answered (Asterisk sleeps 1 s)
        self.closing = False
        self.peer = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._server.sessions.add(self)
        transport.write(BANNER)
        if self._server.stalled:
            transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.sessions.discard(self)
        self.closing = True
        self._out.clear()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._parser.feed(data)
        except Exception:  # never let a client's junk kill the listener
            log.exception("ami_sim_parse_failed", peer=self.peer)
            return
        for frame in frames:
            if self.busy or self._backlog:
                self._backlog.append(frame)
            else:
                self._handle(frame)

    def eof_received(self) -> bool | None:
        return None

    def _handle(self, frame: Pairs) -> None:
        if self.closing:
            return
        try:
            self._server.dispatch(self, frame)
        except Exception:  # one action ends here; the session lives on
            log.exception("ami_sim_action_failed", action=header(frame, "Action"))
            self.respond(frame, "Error", [("Message", "Internal error")])

    def resume(self) -> None:
        """Process frames that arrived while the session was busy."""
        self.busy = False
        while self._backlog and not self.busy and not self.closing:
            self._handle(self._backlog.pop(0))

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    def respond(self, frame: Pairs, response: str, body: Pairs) -> None:
        """A response frame; the ActionID is echoed right after `Response`, as Asterisk does."""
        pairs: Pairs = [("Response", response)]
        action_id = header(frame, "ActionID")
        if action_id:
            pairs.append(("ActionID", action_id))
        pairs.extend(body)
        self.send(encode(pairs))

    def send(self, data: bytes) -> None:
        if self.closing or self.transport is None:
            return
        self._out.append(data)
        self._out_bytes += len(data)
        if self._out_bytes > MAX_PENDING_BYTES:
            log.warning("ami_sim_slow_client_dropped", peer=self.peer)
            self.close()
            return
        if not self._flush_scheduled and not self._server.stalled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._server.stalled or self.transport is None or self.closing or not self._out:
            return
        if self._chunks:
            return  # a fragmented write is in progress; it picks up what was queued since
        data = b"".join(self._out)
        self._out.clear()
        self._out_bytes = 0
        size = self._server.fragment
        if size:
            self._chunks = [data[i : i + size] for i in range(0, len(data), size)]
            self._write_chunk()
        else:
            self.transport.write(data)

    def _write_chunk(self) -> None:
        """Fragmented mode: one chunk per millisecond, so the client sees separate reads."""
        if self.transport is None or self.closing:
            self._chunks = []
            return
        if not self._chunks and self._out:
            data = b"".join(self._out)
            self._out.clear()
            self._out_bytes = 0
            size = self._server.fragment or len(data)
            self._chunks = [data[i : i + size] for i in range(0, len(data), size)]
        if not self._chunks:
            return
        self.transport.write(self._chunks.pop(0))
        if self._chunks or self._out:
            asyncio.get_running_loop().call_later(0.001, self._write_chunk)

    def close(self) -> None:
        """Flush what was queued and close (used after Logoff and failed logins)."""
        if self.transport is None or self.closing:
            return
        if not self._server.stalled:
            self.flush()
        self.closing = True
        self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.closing = True
            self._out.clear()
            self.transport.abort()

    def set_stalled(self, stalled: bool) -> None:
        if self.transport is None or self.closing:
            return
        if stalled:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()
            if self._out and not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self.flush)


class AmiServer:
    """The listening socket and the set of live sessions."""

    def __init__(self, host: str, port: int, dispatch: Dispatch) -> None:
        self.host = host
        self.port = port
        self.dispatch = dispatch
        self.sessions: set[AmiSession] = set()
        self.stalled = False
        self.fragment: int | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: AmiSession(self), self.host, self.port, reuse_address=True
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            server, self._server = self._server, None
            self.drop_all()
            await server.wait_closed()
        else:
            self.drop_all()

    def drop_all(self) -> None:
        for session in list(self.sessions):
            if session.transport is not None:
                session.closing = True
                session.transport.close()
        self.sessions.clear()

    def set_stalled(self, stalled: bool) -> None:
        self.stalled = stalled
        for session in list(self.sessions):
            session.set_stalled(stalled)

    def broadcast(self, klass: str, data: bytes) -> None:
        for session in self.sessions:
            if klass in session.event_mask:
                user = session.user
                if user is not None and user.ignored:
                    data_for = _without(data, user.ignored)
                    if data_for:
                        session.send(data_for)
                else:
                    session.send(data)


def _without(data: bytes, ignored: frozenset[str]) -> bytes:
    """`data` (one or more encoded events) without the events named in `ignored`."""
    frames = data.split(b"\r\n\r\n")
    kept = [
        f
        for f in frames[:-1]
        if f[7 : f.find(b"\r\n")].decode() not in ignored or not f.startswith(b"Event: ")
    ]
    return b"".join(f + b"\r\n\r\n" for f in kept)


def event_mask_for(user: AmiUser, events_header: str) -> frozenset[str]:
    """The classes a session receives: the user's read classes, narrowed by Login's `Events`."""
    if not events_header:
        return user.read
    value = events_header.strip().lower()
    if value in {"off", "no", "false", "0", "n"}:
        return frozenset()
    if is_true(value):
        return user.read
    return user.read & parse_classes(value)
