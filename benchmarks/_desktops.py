"""The benchmarks' agent desktops: WebSocket clients that timestamp each frame when its last byte
reaches the client's socket (a bare asyncio Protocol), or the older aiohttp clients that timestamp
after aiohttp has parsed and handed over the message (`--client aiohttp`).

Why two: one pop goes to 25–50 desktops of a seat, all in one client process. With aiohttp the
client's loop parses, decodes and books those messages one after another, so the last desktop's
time includes ~50 × the client's own per-message work (measured: ~4 ms at p50 with 200 desktops on
an idle box). The raw client's `data_received` does no more than note CLOCK_MONOTONIC and keep the
bytes; frames are split and JSON-decoded after the run. What it measures is "the frame's bytes are
in the desktop's socket buffer and the client's loop has seen them": the fair arrival time.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

Seen = list[tuple[str, str, str, float]]
"""(kind, call_id, seat, CLOCK_MONOTONIC) per ringing pop ("pop") and suggestions frame, and an
"early" entry for a suggestions frame that reached a desktop before that desktop had the call's
ringing pop (ctid sends the pop first: per desktop, frames arrive in the order sent)."""


def _note(seen: Seen, at: float, text: str | bytes, popped: set[tuple[str, str]]) -> None:
    """`popped`: the (call, seat) pops this one desktop has had so far."""
    frame = json.loads(text)
    if frame.get("type") == "pop" and frame.get("state") == "ringing":
        seen.append(("pop", frame["call_id"], frame["seat"], at))
        popped.add((frame["call_id"], frame["seat"]))
    elif frame.get("type") == "suggestions":
        seen.append(("suggestions", frame["call_id"], frame["seat"], at))
        if (frame["call_id"], frame["seat"]) not in popped:
            seen.append(("early", frame["call_id"], frame["seat"], at))


class _RawDesktop(asyncio.Protocol):
    """One desktop's WebSocket, client side, in a Protocol: the handshake, then server frames
    (unmasked) split in place; pings answered with a masked pong at once."""

    def __init__(self, request: bytes, ready: Any) -> None:
        self.request = request
        self.ready = ready
        self.buf = bytearray()
        self.upgraded = False
        self.frames: list[tuple[float, bytes]] = []
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status:
                raise RuntimeError(f"WebSocket handshake refused: {status!r}")
            del buf[: end + 4]
            self.upgraded = True
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if n - pos < head + length:
                break
            payload = bytes(buf[pos + head : pos + head + length])
            pos += head + length
            opcode = b0 & 0x0F
            if opcode == 0x1:
                if not self.frames:
                    self.ready.put(1)
                self.frames.append((now, payload))
            elif opcode == 0x9:  # ping → pong (client frames are masked)
                self._send(0xA, payload)
            elif opcode == 0x8 and self.transport is not None:
                self.transport.close()
        del buf[:pos]

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126 and self.transport is not None
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)


async def _raw(url: str, cookies: list[tuple[str, str]], cookie_name: str, ready: Any) -> Any:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    desktops: list[_RawDesktop] = []
    for _seat, token in cookies:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws/seat HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {url}\r\nCookie: {cookie_name}={token}\r\n\r\n"
        ).encode()
        _t, proto = await loop.create_connection(
            functools.partial(_RawDesktop, request, ready), host, port
        )
        desktops.append(proto)
    return desktops


def desktops(
    url: str,
    cookies: list[tuple[str, str]],
    out: Any,
    ready: Any,
    stop: Any,
    client: str = "raw",
    cookie_name: str = "ctid_session",
) -> None:
    """Child process: one WebSocket per (seat, session cookie); puts the `Seen` list on `out` when
    told to stop. `ready` gets one item per desktop once its first frame (hello) has arrived."""
    if client == "aiohttp":
        _aiohttp_desktops(url, cookies, out, ready, stop, cookie_name)
        return

    async def main() -> None:
        conns = await _raw(url, cookies, cookie_name, ready)
        await asyncio.get_running_loop().run_in_executor(None, stop.get)
        seen: Seen = []
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
            popped: set[tuple[str, str]] = set()
            for at, payload in conn.frames:
                _note(seen, at, payload, popped)
        out.put(seen)

    asyncio.run(main())


def _aiohttp_desktops(
    url: str, cookies: list[tuple[str, str]], out: Any, ready: Any, stop: Any, cookie_name: str
) -> None:
    """The benchmarks' first client: aiohttp, timestamp once the message is handed over."""
    import aiohttp

    async def one(token: str, seen: Seen) -> None:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            http.cookie_jar.update_cookies({cookie_name: token})
            async with http.ws_connect(
                f"{url.replace('http', 'ws')}/ws/seat", headers={"Origin": url}
            ) as ws:
                first = True
                popped: set[tuple[str, str]] = set()
                async for msg in ws:
                    if first:
                        first = False
                        ready.put(1)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    _note(seen, time.monotonic(), msg.data, popped)

    async def main() -> None:
        seen: Seen = []
        tasks = [asyncio.create_task(one(tok, seen)) for _seat, tok in cookies]
        await asyncio.get_running_loop().run_in_executor(None, stop.get)
        for t in tasks:
            t.cancel()
        out.put(seen)

    asyncio.run(main())
