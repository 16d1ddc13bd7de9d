"""The push sockets: `/ws/seat` and `/ws/supervisor` fed from the pop hub, each bounded in what
it may fall behind, closed when its login ends or the server stops."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from ctid.core.clock import Clock
from ctid.core.frames import HelloFrame, to_json
from ctid.web.edge import HttpError, RequestContext, seat_for
from ctid.web.middleware import context
from ctid.web.ports import PushSource, PushSubscription, SeatDirectory

log = structlog.get_logger(__name__)

CLOSE_SESSION_ENDED = 4001
"""WebSocket close code: the login ended (expired or logged out) — the desktop goes to /login."""
CLOSE_TOO_SLOW = 4008
"""WebSocket close code: the desktop fell behind and was dropped — it reconnects."""
WALLBOARD_ROLES = ("supervisor", "ops")


@dataclass(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    session_id: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    code: int = 1001
    reason: str = "server shutting down"
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class PushSockets:
    """The open desktop sockets. `origin_ok` is the CSRF guard's Origin check: a WebSocket
    handshake is a GET, so cross-site WebSocket hijacking is stopped here."""

    def __init__(
        self,
        hub: PushSource,
        seats: SeatDirectory,
        clock: Clock,
        origin_ok: Callable[[web.Request], bool],
        *,
        send_timeout_s: float,
        heartbeat_s: float,
    ) -> None:
        self._hub = hub
        self._seats = seats
        self._clock = clock
        self._origin_ok = origin_ok
        self._send_timeout = send_timeout_s
        self._heartbeat = heartbeat_s
        self._sockets: set[_Socket] = set()
        self._last_text: str | None = None
        self._last_frame = b""

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/ws/seat", self._ws_seat)
        r.add_get("/ws/supervisor", self._ws_supervisor)

    def __len__(self) -> int:
        return len(self._sockets)

    async def close_all(self, *, timeout_s: float = 5.0) -> None:
        """Close every WebSocket (code 1001) and wait for their handlers to finish."""
        conns = list(self._sockets)
        for conn in conns:
            self._stop(conn, 1001, "server shutting down")
        if conns:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    for conn in conns:
                        await conn.finished.wait()

    def session_ended(self, session_id: str, reason: str = "logged out") -> None:
        """Close the sockets of a login that ended (the desktop goes to /login)."""
        for conn in list(self._sockets):
            if conn.session_id == session_id:
                self._stop(conn, CLOSE_SESSION_ENDED, reason)

    def _stop(self, conn: _Socket, code: int, reason: str) -> None:
        if not conn.stop.is_set():
            conn.code, conn.reason = code, reason
            conn.stop.set()

    def _ws_auth(self, request: web.Request) -> RequestContext:
        if not self._origin_ok(request) or "Origin" not in request.headers:
            raise HttpError(403, "cross-origin WebSocket refused")
        ctx = context(request)
        if ctx is None:
            raise HttpError(403, "not logged in")
        return ctx

    async def _ws_seat(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ws_auth(request)
        seat = seat_for(self._seats, ctx, request.query.get("seat"))
        if seat is None:
            raise HttpError(403, "you are not assigned to a seat")
        return await self._serve(
            request,
            ctx,
            lambda: self._hub.subscribe(seat),
            lambda now, expires: HelloFrame(server_now=now, session_expires_at=expires, seat=seat),
        )

    async def _ws_supervisor(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ws_auth(request)
        if ctx.actor.role not in WALLBOARD_ROLES:
            raise HttpError(403, "not allowed for your role")
        return await self._serve(
            request,
            ctx,
            self._hub.subscribe_supervisor,
            lambda now, expires: HelloFrame(
                server_now=now, session_expires_at=expires, channel="supervisor"
            ),
        )

    async def _serve(
        self,
        request: web.Request,
        ctx: RequestContext,
        subscribe: Callable[[], PushSubscription],
        hello: Callable[[float, float], HelloFrame],
    ) -> web.StreamResponse:
        # No permessage-deflate: the hub encodes a frame once for all of a seat's desktops, and
        # deflating it again per socket (each has its own compressor) would cost the loop once
        # per receiver for frames of about a kilobyte on the desk's LAN.
        ws = web.WebSocketResponse(
            heartbeat=self._heartbeat, max_msg_size=4096, timeout=3.0, compress=False
        )
        await ws.prepare(request)
        conn = _Socket(ws, ctx.session.session_id)
        self._sockets.add(conn)
        sub = subscribe()
        tasks: list[asyncio.Task[Any]] = []
        code, reason = 1000, ""
        try:
            now = self._clock.utcnow()
            await ws.send_str(to_json(hello(now.timestamp(), ctx.session.expires_at.timestamp())))
            sub.deliver_to(self._direct(ws, conn, request.transport))
            reader = asyncio.create_task(self._read(ws), name="ws-read")
            sender = asyncio.create_task(self._forward(ws, sub), name="ws-forward")
            stopper = asyncio.create_task(conn.stop.wait(), name="ws-stop")
            tasks = [reader, sender, stopper]
            remaining = (ctx.session.expires_at - now).total_seconds()
            done, _ = await asyncio.wait(
                tasks, timeout=max(0.0, remaining), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                code, reason = CLOSE_SESSION_ENDED, "session expired"
            elif stopper in done:
                code, reason = conn.code, conn.reason
            elif sender in done:
                if sub.dropped or sender.exception() is not None:
                    code, reason = CLOSE_TOO_SLOW, "too slow, reconnect"
                    log.warning("web_socket_too_slow", employee_id=ctx.actor.employee_id)
                else:
                    code, reason = 1001, "stream closed"
        except (ConnectionResetError, OSError) as exc:
            log.info("web_socket_lost", employee_id=ctx.actor.employee_id, error=repr(exc))
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            sub.close()
            self._sockets.discard(conn)
            try:
                if code == CLOSE_TOO_SLOW and request.transport is not None:
                    # Its socket buffer is full: a close frame would only queue behind the
                    # backlog, so drop the connection; the desktop reconnects and gets the
                    # snapshot.
                    request.transport.abort()
                await self._close(ws, code, reason)
            finally:
                conn.finished.set()
        return ws

    async def _read(self, ws: web.WebSocketResponse) -> None:
        # The desktop sends nothing we act on; reading keeps pings/pongs and the close
        # handshake flowing and tells us when the browser goes away.
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:
                return

    def _direct(
        self, ws: web.WebSocketResponse, conn: _Socket, transport: asyncio.BaseTransport | None
    ) -> Callable[[str], bool]:
        """The hub writes a pop to this socket from `publish` itself while the socket keeps up:
        one `transport.write` of a frame built once for all the seat's desktops, instead of
        waking this socket's task (25–50 task switches a pop). Anything else (the socket has
        unsent bytes, it is closing) says False and the frame goes through the queue and
        `_forward`, which waits on the socket with a timeout. Safe beside aiohttp's own writes:
        with compression off it writes each frame in whole and without yielding in between."""
        if not isinstance(transport, asyncio.WriteTransport):
            return lambda _data: False

        def sink(data: str) -> bool:
            if (
                conn.stop.is_set()
                or ws.closed
                or transport.is_closing()
                or transport.get_write_buffer_size()
            ):
                return False
            transport.write(self._frame(data))
            return True

        return sink

    def _frame(self, data: str) -> bytes:
        """`data` as one unmasked, uncompressed WebSocket text frame (RFC 6455 §5.2); the last
        one is kept, as the hub hands the same string to every desktop of the seat."""
        if data is not self._last_text:
            payload = data.encode()
            n = len(payload)
            if n < 126:
                head = struct.pack("!BB", 0x81, n)
            elif n < 65536:
                head = struct.pack("!BBH", 0x81, 126, n)
            else:
                head = struct.pack("!BBQ", 0x81, 127, n)
            self._last_text, self._last_frame = data, head + payload
        return self._last_frame

    async def _forward(self, ws: web.WebSocketResponse, sub: PushSubscription) -> None:
        while True:
            data = await sub.get()
            if data is None:
                return
            # A browser that stops reading fills the socket buffer and send blocks: bounded.
            async with asyncio.timeout(self._send_timeout):
                await ws.send_str(data)
            sub.written()  # only now may the hub write the next frame straight to the socket

    async def _close(self, ws: web.WebSocketResponse, code: int, reason: str) -> None:
        if ws.closed:
            return
        # wait_for cancels a close stuck on an unread socket; aiohttp then drops the link.
        with contextlib.suppress(TimeoutError, ConnectionError, OSError):
            await asyncio.wait_for(ws.close(code=code, message=reason.encode()), 5.0)
