"""The client address behind a reverse proxy, over a real socket: X-Forwarded-For counts only
from a trusted proxy, and only its right-most untrusted hop (the left part is client-written)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from ctid.web.proxy import client_ip


async def _serve(trusted: tuple[str, ...]) -> AsyncIterator[str]:
    async def whoami(request: web.Request) -> web.Response:
        return web.Response(text=client_ip(request, trusted))

    app = web.Application()
    app.router.add_get("/", whoami)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


@pytest.fixture
async def behind_proxy() -> AsyncIterator[str]:
    async for url in _serve(("127.0.0.1", "10.0.0.0/8")):
        yield url


@pytest.fixture
async def no_proxy() -> AsyncIterator[str]:
    async for url in _serve(()):
        yield url


async def _ask(url: str, forwarded: str | None) -> str:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers) as resp:
        return await resp.text()


async def test_trusted_proxy_names_the_client(behind_proxy: str) -> None:
    assert await _ask(behind_proxy, "203.0.113.7") == "203.0.113.7"
    # A client-forged left part is skipped; trusted hops on the right are skipped too.
    assert await _ask(behind_proxy, "1.2.3.4, 203.0.113.7, 10.1.2.3") == "203.0.113.7"
    assert await _ask(behind_proxy, None) == "127.0.0.1"
    assert await _ask(behind_proxy, "not-an-ip") == "127.0.0.1"


async def test_without_trusted_proxies_the_header_is_ignored(no_proxy: str) -> None:
    assert await _ask(no_proxy, "203.0.113.7") == "127.0.0.1"
