"""The language of each request: the user's own choice (the nav's switch, kept in a cookie),
else the browser's Accept-Language, else the site default; pages, errors and the API follow it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from .conftest import Client, Env


@pytest.fixture
async def env(make_env: Callable[..., Any]) -> AsyncIterator[Env]:
    """The example config's site default: Chinese."""
    async with make_env(language="zh_CN") as running:
        yield running


async def _page(c: Client, path: str, **headers: str) -> tuple[int, str, str]:
    async with await c.get(path, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Language", ""), await resp.text()


async def test_the_site_default_speaks_when_nothing_else_does(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    status, lang, body = await _page(c, "/login")
    assert (status, lang) == (200, "zh-CN")  # cfg.site.language
    assert '<html lang="zh-CN">' in body
    assert "<h1>登录</h1>" in body and "工号" in body


async def test_accept_language_decides_per_request(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    status, lang, body = await _page(c, "/login", **{"Accept-Language": "en-US,en;q=0.9"})
    assert (status, lang) == (200, "en")
    assert "<h1>Sign in</h1>" in body and "Employee ID" in body
    # The same client, the next request in Chinese: nothing is remembered from a header.
    status, lang, body = await _page(c, "/login", **{"Accept-Language": "zh-TW,zh;q=0.8"})
    assert (status, lang) == (200, "zh-CN")
    assert "<h1>登录</h1>" in body


async def test_the_switch_keeps_the_users_choice_over_the_browser(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("S9001")
    back = c.url("/callers?q=wang")
    async with await c.get("/lang?to=en", headers={"Referer": back}) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == "/callers?q=wang"
        assert "ctid_lang=en" in resp.headers["Set-Cookie"]
    status, lang, body = await _page(c, "/callers", **{"Accept-Language": "zh-CN"})
    assert (status, lang) == (200, "en")
    assert ">Incidents</a>" in body and ">Log out</button>" in body
    assert 'href="/lang?to=zh_CN"' in body  # the way back, named in Chinese
    async with await c.get("/lang?to=zh-CN", headers={"Referer": back}) as resp:
        assert resp.status == 303
    status, lang, body = await _page(c, "/callers", **{"Accept-Language": "en"})
    assert (status, lang) == (200, "zh-CN")
    assert ">事件单</a>" in body and ">退出登录</button>" in body


async def test_the_switch_never_sends_the_user_to_another_site(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    async with await c.get("/lang?to=en", headers={"Referer": "https://evil.example/x"}) as r:
        assert (r.status, r.headers["Location"]) == (303, "/")
    async with await c.get("/lang?to=klingon") as r:
        assert r.status == 400


async def test_errors_speak_the_requests_language(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    await c.login("E1001")  # an agent: the wallboard is not for them
    status, _, body = await _page(c, "/supervisor", **{"Accept-Language": "zh-CN"})
    assert status == 403
    assert "无权访问" in body and "您的角色无权执行此操作" in body
    status, _, body = await _page(c, "/supervisor", **{"Accept-Language": "en"})
    assert status == 403
    assert "Not allowed" in body and "not allowed for your role" in body
    anon = clients()
    async with await anon.get("/api/me", headers={"Accept-Language": "zh-CN"}) as resp:
        assert resp.status == 401
        assert await resp.json() == {"error": "尚未登录"}
