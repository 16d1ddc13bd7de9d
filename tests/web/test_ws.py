"""The seat and supervisor WebSockets over loopback: who may connect, per-seat delivery through
the hub, the snapshot on reconnect, slow consumers, expiry/logout/shutdown closing sockets."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from ctid.web.sockets import CLOSE_SESSION_ENDED
from tests.frames import pop_frame as _pop
from tests.frames import wallboard

from .conftest import Client, Env


async def _frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    value: dict[str, Any] = json.loads(msg.data)
    return value


async def _connected(c: Client, path: str = "/ws/seat") -> aiohttp.ClientWebSocketResponse:
    ws = await c.ws(path)
    hello = await _frame(ws)
    assert hello["type"] == "hello"
    return ws


async def _handshake_status(c: Client, path: str, **kw: Any) -> int:
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await c.ws(path, **kw)
    return err.value.status


async def test_websocket_without_a_session_is_403(env: Env, clients: Callable[[], Client]) -> None:
    assert await _handshake_status(clients(), "/ws/seat?seat=seat1") == 403


@pytest.mark.parametrize("origin", ["http://evil.example", None, "null"])
async def test_websocket_from_a_foreign_origin_is_403(
    env: Env, clients: Callable[[], Client], origin: str | None
) -> None:
    c = clients()
    await c.login("E1001")
    assert await _handshake_status(c, "/ws/seat", origin=origin) == 403
    assert env.hub.subscribers("seat1") == 0


async def test_an_agent_cannot_subscribe_to_another_seat(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("E1001")
    assert await _handshake_status(c, "/ws/seat?seat=seat2") == 403
    assert await _handshake_status(c, "/ws/seat?seat=nope") == 404
    assert await _handshake_status(c, "/ws/supervisor") == 403
    async with await c.get("/desk?seat=seat2") as page:
        assert page.status == 403
    assert env.hub.subscribers("seat2") == 0


async def test_an_agent_without_a_seat_gets_no_stream(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("E1003")
    assert await _handshake_status(c, "/ws/seat") == 403
    async with await c.get("/desk") as page:
        assert page.status == 200
        assert "not assigned to a seat" in await page.text()
    async with await c.get("/desk", headers={"Accept-Language": "zh-CN"}) as page:
        assert "您目前没有分配坐席" in await page.text()


async def test_agents_cannot_call_supervisor_endpoints(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("E1001")
    resp = await c.post_json("/api/spy", {"seat": "seat2", "mode": "listen"})
    assert resp.status == 403
    assert await resp.json() == {"error": "not allowed for your role"}
    async with await c.get("/supervisor") as page:
        assert page.status == 403
    assert env.spy.calls == []


async def test_a_supervisor_may_follow_any_seat_and_listen_in(
    env: Env, clients: Callable[[], Client]
) -> None:
    sup = clients()
    await sup.login("S9001")
    ws = await _connected(sup, "/ws/seat?seat=seat2")
    assert (await _frame(ws))["reason"] == "none"
    env.hub.publish("seat2", _pop("seat2", "c7"))
    assert (await _frame(ws))["call_id"] == "c7"
    await ws.close()
    resp = await sup.post_json("/api/spy", {"seat": "seat2", "mode": "whisper"})
    assert resp.status == 201
    assert await resp.json() == {
        "seat": "seat2",
        "mode": "whisper",
        "detail": "PJSIP/sup1",
        "session_id": "spy-1",
    }
    assert env.spy.calls == [("S9001", "seat2", "whisper")]
    env.spy.busy = True
    busy = await sup.post_json("/api/spy", {"seat": "seat3", "mode": "listen"})
    assert busy.status == 409 and "not on a call" in (await busy.json())["error"]
    bad = await sup.post_json("/api/spy", {"seat": "seat3", "mode": "sing"})
    assert bad.status == 400
    none = await sup.post_json("/api/spy", {"seat": "seat9"})
    assert none.status == 404


async def test_supervisor_channel_gets_the_wallboard(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.hub.publish_supervisor(wallboard(offered=1))
    sup = clients()
    await sup.login("S9001")
    ws = await _connected(sup, "/ws/supervisor")
    assert (await _frame(ws))["kpis"] == {"offered": 1}
    assert (await _frame(ws))["alerts"] == []  # the kept alerts (none yet)
    env.hub.publish_supervisor(wallboard(offered=0))
    assert (await _frame(ws))["kpis"] == {"offered": 0}
    await ws.close()


async def test_a_pop_reaches_only_the_sockets_of_its_seat(
    env: Env, clients: Callable[[], Client]
) -> None:
    a, a_again, b = clients(), clients(), clients()
    await a.login("E1001")
    await a_again.login("E1001")
    await b.login("E1002")
    ws_a, ws_a2, ws_b = await _connected(a), await _connected(a_again), await _connected(b)
    for ws in (ws_a, ws_a2, ws_b):
        assert (await _frame(ws))["reason"] == "none"
    env.hub.publish("seat1", _pop("seat1", "c1", "<b>Li</b>"))
    env.hub.publish("seat2", _pop("seat2", "marker"))
    for ws in (ws_a, ws_a2):
        frame = await _frame(ws)
        assert (frame["call_id"], frame["caller"]["name"]) == ("c1", "<b>Li</b>")
    # Frames on one socket arrive in order: seat2's first frame after connect is its own
    # marker, so seat1's pop never went there.
    assert (await _frame(ws_b))["call_id"] == "marker"
    for ws in (ws_a, ws_a2, ws_b):
        await ws.close()


async def test_a_burst_of_pops_arrives_whole_and_in_order_on_every_socket(
    env: Env, clients: Callable[[], Client]
) -> None:
    """The hub writes to a socket that keeps up directly and queues behind one that has unsent
    bytes; either way each desktop gets every frame, whole and in order."""
    a, b = clients(), clients()
    await a.login("E1001")
    await b.login("E1001")
    ws_a, ws_b = await _connected(a), await _connected(b)
    for ws in (ws_a, ws_b):
        assert (await _frame(ws))["reason"] == "none"
    names = ["李" * (i % 40) for i in range(200)]
    for i, name in enumerate(names):
        env.hub.publish("seat1", _pop("seat1", f"c{i}", name))
        if i % 20 == 0:
            await asyncio.sleep(0)
    for ws in (ws_a, ws_b):
        for i, name in enumerate(names):
            frame = await _frame(ws)
            assert (frame["call_id"], frame["caller"]["name"]) == (f"c{i}", name)
        await ws.close()


async def test_frames_go_out_uncompressed_even_when_the_browser_offers_deflate(
    env: Env, clients: Callable[[], Client]
) -> None:
    """The hub encodes a frame once for every desktop of the seat; no socket deflates it again."""
    c = clients()
    await c.login("E1001")
    ws = await c.ws(compress=15)  # what browsers offer: permessage-deflate
    assert ws.compress == 0
    assert (await _frame(ws))["type"] == "hello"
    assert (await _frame(ws))["reason"] == "none"
    env.hub.publish("seat1", _pop("seat1", "c1"))
    assert (await _frame(ws))["call_id"] == "c1"
    await ws.close()


async def test_reconnect_gets_the_current_pop_first(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("E1001")
    ws = await _connected(c)
    await _frame(ws)
    env.hub.publish("seat1", _pop("seat1", "c1"))
    assert (await _frame(ws))["call_id"] == "c1"
    await ws.close()
    env.hub.publish("seat1", _pop("seat1", "c1", state="talking"))  # while disconnected
    again = await _connected(c)
    first = await _frame(again)
    assert (first["call_id"], first["state"]) == ("c1", "talking")
    await again.close()


async def test_hello_carries_the_server_clock(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    await c.login("E1001")
    ws = await c.ws()
    hello = await _frame(ws)
    assert hello == {
        "type": "hello",
        "seat": "seat1",
        "server_now": env.clock.utcnow().timestamp(),
        "session_expires_at": env.clock.utcnow().timestamp() + 3600,
    }
    await ws.close()


async def _raw_ws(env: Env, c: Client) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then never reads: a stuck browser."""
    reader, writer = await asyncio.open_connection("127.0.0.1", env.server.port)
    cookie = "; ".join(f"{m.key}={m.value}" for m in c.http.cookie_jar)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws/seat HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{env.server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {env.origin}\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
    )
    status = await asyncio.wait_for(reader.readline(), 5)
    assert b" 101 " in status
    return reader, writer


async def test_a_browser_that_stops_reading_is_dropped_not_the_daemon(
    env: Env, clients: Callable[[], Client]
) -> None:
    stuck_client, live_client = clients(), clients()
    await stuck_client.login("E1001")
    await live_client.login("E1001")
    live = await _connected(live_client)
    await _frame(live)
    reader, writer = await _raw_ws(env, stuck_client)
    big = "x" * 1_000_000
    sent = 0
    # Publish 1 MB frames until the hub gives up on the stuck socket; the live desktop reads.
    while env.hub.dropped == 0 and sent < 400:
        env.hub.publish("seat1", replace(_pop("seat1", f"c{sent}"), queue=big))
        sent += 1
        assert (await _frame(live))["call_id"] == f"c{sent - 1}"
    assert env.hub.dropped == 1
    assert env.hub.subscribers("seat1") == 1  # the live one
    # The server drops the stuck connection (its buffer is full, a close frame cannot pass).
    closed = False
    try:
        while not closed:
            closed = not await asyncio.wait_for(reader.read(1 << 20), 10)
    except ConnectionResetError:
        closed = True
    assert closed
    writer.close()
    env.hub.publish("seat1", _pop("seat1", "after"))
    assert (await _frame(live))["call_id"] == "after"
    await live.close()


async def test_logout_closes_that_sessions_sockets(env: Env, clients: Callable[[], Client]) -> None:
    c, other = clients(), clients()
    await c.login("E1001")
    await other.login("E1001")
    ws, ws_other = await _connected(c), await _connected(other)
    await _frame(ws)
    await _frame(ws_other)
    resp = await c.http.post(
        c.url("/logout"), data={"csrf_token": c.csrf}, headers={"Origin": env.origin}
    )
    assert resp.status in (200, 303)
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_SESSION_ENDED
    env.hub.publish("seat1", _pop("seat1", "c2"))
    assert (await _frame(ws_other))["call_id"] == "c2"  # the other login is untouched
    await ws_other.close()


async def test_the_socket_closes_when_the_session_expires(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("E1001")
    env.clock.advance(3600 - 0.05)  # connect with 50 ms of session left
    ws = await _connected(c)
    await _frame(ws)
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_SESSION_ENDED


async def test_shutdown_closes_every_socket(
    make_env: Callable[..., Any], clients: Callable[[], Client]
) -> None:
    async with make_env() as running:
        c = Client(running)
        try:
            await c.login("E1001")
            ws = await _connected(c)
            await _frame(ws)
            assert running.server.open_sockets == 1
            closing = asyncio.create_task(running.server.close_sockets())
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1001
            await asyncio.wait_for(closing, 5)
            assert running.server.open_sockets == 0
            assert running.hub.subscribers("seat1") == 0
        finally:
            await c.close()
