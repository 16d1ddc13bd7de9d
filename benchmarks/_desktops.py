"""The benchmarks' agent desktops: WebSocket clients that timestamp each frame when its last byte
reaches the desktop's socket (the kernel's receive timestamp; the default, `raw`), or the older
aiohttp clients that timestamp after aiohttp has parsed and handed over the message
(`--client aiohttp`).

Why: one pop goes to 25–50 desktops of a seat, all simulated in one client process on the same
2-core box as ctid. With aiohttp the client's loop parses, decodes and books those messages one
after another, so the last desktop's time includes ~50 × the client's own per-message work
(measured: ~4 ms at p50 with 200 desktops on an idle box). The next client (until 2026-12-06) was
a bare asyncio Protocol that noted CLOCK_MONOTONIC in `data_received`; it still counted the time
this one process took to get round to each socket — reading 50 sockets one after another, and
waiting for a core while ctid, the simulator and the page client ran (measured: from ctid's last
write to the last desktop's read p50 0.8, p90 2.0 ms; from ctid's first write to the first
desktop's read p99 2.8 ms). Real desktops are separate machines, each reading its own socket.
So each frame now carries the time the kernel queued its last byte to the desktop's socket
(`SO_TIMESTAMPNS`, converted to CLOCK_MONOTONIC) — "the bytes are at the desktop" — and, as
`pop_read`, the time this client read it, printed beside it for comparison.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import select
import socket
import struct
import threading
import time
from typing import Any
from urllib.parse import urlsplit

Seen = list[tuple[str, str, str, float]]
"""(kind, call_id, seat, CLOCK_MONOTONIC) per ringing pop ("pop", at the socket; "pop_read", read
by the client, raw client only) and suggestions frame, and an "early" entry for a suggestions
frame that reached a desktop before that desktop had the call's ringing pop (ctid sends the pop
first: per desktop, frames arrive in the order sent)."""


def _note(
    seen: Seen,
    at: float,
    text: str | bytes,
    popped: set[tuple[str, str]],
    read: float | None = None,
) -> None:
    """`popped`: the (call, seat) pops this one desktop has had so far; `read`: when the client's
    loop read the frame, if that differs from `at` (its arrival at the socket)."""
    frame = json.loads(text)
    if frame.get("type") == "pop" and frame.get("state") == "ringing":
        seen.append(("pop", frame["call_id"], frame["seat"], at))
        if read is not None:
            seen.append(("pop_read", frame["call_id"], frame["seat"], read))
        popped.add((frame["call_id"], frame["seat"]))
    elif frame.get("type") == "suggestions":
        seen.append(("suggestions", frame["call_id"], frame["seat"], at))
        if (frame["call_id"], frame["seat"]) not in popped:
            seen.append(("early", frame["call_id"], frame["seat"], at))


# Not in Python's `socket` module; 35 on Linux (asm-generic, x86 and arm alike).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_ANC = socket.CMSG_SPACE(16)  # one struct timespec


def _realtime_offset() -> float:
    """CLOCK_REALTIME − CLOCK_MONOTONIC, from the closest of a few paired readings (the kernel
    stamps a packet in real time; the benchmarks' marks are monotonic)."""
    best = None
    for _ in range(50):
        m0 = time.monotonic()
        r = time.time()
        m1 = time.monotonic()
        if best is None or m1 - m0 < best[0]:
            best = (m1 - m0, r - (m0 + m1) / 2)
    assert best is not None
    return best[1]


class _RawDesktop:
    """One desktop's WebSocket, client side, on a plain non-blocking socket: the handshake, then
    server frames (unmasked) split in place; pings answered with a masked pong at once.

    Each frame gets two times: when its last byte reached the socket (the kernel's receive
    timestamp, `SO_TIMESTAMPNS`: taken as the packet is queued to the socket, on loopback within
    ctid's `send`) and when this client's loop read it. With TCP a read's timestamp is its last
    segment's, so a frame read together with a later one gets the later time (never an earlier
    one)."""

    def __init__(self, sock: socket.socket, ready: Any, offset: float) -> None:
        self.sock = sock
        self.ready = ready
        self.offset = offset
        self.buf = bytearray()
        self.upgraded = False
        self.frames: list[tuple[float, float, bytes]] = []
        """(arrived at the socket, read by the client, payload), CLOCK_MONOTONIC."""
        self.closed = False

    def read(self) -> None:
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(65536, _ANC)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, anc = b"", []
        seen = time.monotonic()
        if not data:
            self.closed = True
            return
        arrived = seen
        for level, kind, raw in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                sec, nsec = struct.unpack("qq", raw[:16])
                arrived = sec + nsec / 1e9 - self.offset
        self._frames(data, arrived, seen)

    def _frames(self, data: bytes, arrived: float, seen: float) -> None:
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
                self.frames.append((arrived, seen, payload))
            elif opcode == 0x9:  # ping → pong (client frames are masked)
                self._send(0xA, payload)
            elif opcode == 0x8:
                self.closed = True
        del buf[:pos]

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert len(payload) < 126
        self.sock.setblocking(True)
        try:
            self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)
        finally:
            self.sock.setblocking(False)


def _raw(
    url: str, cookies: list[tuple[str, str]], cookie_name: str, ready: Any, stop: Any
) -> list[_RawDesktop]:
    """Connect every desktop, then read them all (one epoll loop) until `stop` says so."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    offset = _realtime_offset()
    conns: dict[int, _RawDesktop] = {}
    poller = select.epoll()
    for _seat, token in cookies:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws/seat HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {url}\r\nCookie: {cookie_name}={token}\r\n\r\n"
        ).encode()
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.sendall(request)
        sock.setblocking(False)
        conns[sock.fileno()] = _RawDesktop(sock, ready, offset)
        poller.register(sock.fileno(), select.EPOLLIN)
    stopped = threading.Event()

    def wait_for_stop() -> None:
        stop.get()
        stopped.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    while not stopped.is_set():
        for fd, _mask in poller.poll(0.1):
            conn = conns[fd]
            conn.read()
            if conn.closed:
                poller.unregister(fd)
    poller.close()
    for conn in conns.values():
        conn.sock.close()
    return list(conns.values())


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
    seen: Seen = []
    for conn in _raw(url, cookies, cookie_name, ready, stop):
        popped: set[tuple[str, str]] = set()
        for arrived, read, payload in conn.frames:
            _note(seen, arrived, payload, popped, read)
    out.put(seen)


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
