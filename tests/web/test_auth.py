"""Login, logout, cookies, expiry, the failure limits and CSRF/Origin checks, over a real
loopback server and a real SQLite database."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from ctid.accounts.sessions import FailureLimiter
from ctid.db.schema import AuditLog, WebSession
from ctid.web.login_pages import LOGIN_COOKIE
from ctid.web.middleware import SECURE_SESSION_COOKIE, SESSION_COOKIE

from .conftest import PASSWORD, Client, Env

INCIDENT = {
    "caller_name": "Li Lei",
    "phone": "13800138000",
    "request_type": "fault",
    "category": "hardware",
    "impact": "medium",
    "urgency": "high",
    "summary": "Monitor stays black",
}


async def _audit(env: Env, action: str) -> list[AuditLog]:
    async with env.sessions() as db:
        rows = await db.execute(select(AuditLog).where(AuditLog.action == action))
        return list(rows.scalars())


async def _session_count(env: Env) -> int:
    async with env.sessions() as db:
        return int((await db.execute(select(func.count()).select_from(WebSession))).scalar_one())


async def test_login_sets_a_strict_httponly_cookie_and_stores_only_its_hash(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    resp = await c.login("E1001")
    assert resp.status == 303 and resp.headers["Location"] == "/desk"
    raw = [h for h in resp.headers.getall("Set-Cookie") if h.startswith(SESSION_COOKIE + "=")]
    assert len(raw) == 1
    flags = raw[0].lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags
    assert "max-age=3600" in flags
    token = resp.cookies[SESSION_COOKIE].value
    async with env.sessions() as db:
        ids = list((await db.execute(select(WebSession.id))).scalars())
    assert ids == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in ids
    logins = await _audit(env, "web_login")
    assert [(a.actor, a.detail["role"]) for a in logins] == [("E1001", "agent")]
    async with await c.get("/api/me") as me:
        assert me.status == 200
        assert await me.json() == {
            "employee_id": "E1001",
            "name": "Li Wei",
            "role": "agent",
            "seat": "seat1",
            "expires_at": env.clock.utcnow().timestamp() + 3600,
        }


async def test_secure_cookies_use_the_host_prefix_and_secure_flag(
    make_env: Callable[..., Any], clients: Callable[[], Client]
) -> None:
    async with make_env(secure_cookies=True) as secure_env:
        c = Client(secure_env)
        try:
            async with await c.get("/login") as form:
                # A Secure cookie never goes back over plain http, so send it by hand.
                nonce = form.cookies[LOGIN_COOKIE].value
                assert "secure" in form.headers["Set-Cookie"].lower()
                token = re.search(r'name="csrf_token" value="([^"]+)"', await form.text())
            assert token
            resp = await c.http.post(
                c.url("/login"),
                data={"csrf_token": token.group(1), "employee_id": "E1001", "password": PASSWORD},
                headers={"Origin": secure_env.origin, "Cookie": f"{LOGIN_COOKIE}={nonce}"},
                allow_redirects=False,
            )
        finally:
            await c.close()
    assert resp.status == 303
    raw = [h for h in resp.headers.getall("Set-Cookie") if h.startswith(SECURE_SESSION_COOKIE)]
    assert len(raw) == 1 and "secure" in raw[0].lower() and "samesite=strict" in raw[0].lower()
    assert "Strict-Transport-Security" in resp.headers


@pytest.mark.parametrize(
    ("employee_id", "password"), [("E1001", "wrong password"), ("E4040", PASSWORD)]
)
async def test_wrong_password_or_unknown_user_is_the_same_401(
    env: Env, clients: Callable[[], Client], employee_id: str, password: str
) -> None:
    c = clients()
    resp = await c.login(employee_id, password)
    assert resp.status == 401
    assert "wrong employee ID or password" in await resp.text()
    assert SESSION_COOKIE not in resp.cookies
    assert await _session_count(env) == 0
    failed = await _audit(env, "web_login_failed")
    assert [(a.actor, a.detail["known"]) for a in failed] == [(employee_id, employee_id == "E1001")]
    async with await c.get("/desk") as desk:
        assert desk.status == 303 and desk.headers["Location"] == "/login"


async def test_the_decoy_hash_is_made_once_whether_prepared_or_not(
    env: Env, clients: Callable[[], Client]
) -> None:
    """`ctid run` starts the decoy once ready (`prepare`); a login that comes first waits for it,
    and a failed and a good login both still answer as before."""
    auth = env.server.auth
    auth.prepare()
    decoy = auth._decoy()
    auth.prepare()
    assert auth._decoy() is decoy  # one decoy, however often asked for
    c = clients()
    assert (await c.login("E1001", "not the password")).status == 401  # while it may be hashing
    assert decoy.done()
    assert (await c.login("E1001")).status == 303


async def test_repeated_failures_lock_the_employee_id_even_with_the_right_password(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    for _ in range(5):
        assert (await c.login("E1001", "guess guess")).status == 401
    locked = await c.login("E1001", PASSWORD)
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert await _session_count(env) == 0
    # Another employee on the same address is not locked out by E1001's failures.
    assert (await c.login("E1002")).status == 303


async def test_a_parallel_burst_of_guesses_is_counted_too(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    token = await c.login_form_token()

    async def guess(i: int) -> int:
        resp = await c.http.post(
            c.url("/login"),
            data={"csrf_token": token, "employee_id": "E1001", "password": f"guess {i:04d}"},
            headers={"Origin": env.origin},
            allow_redirects=False,
        )
        await resp.read()
        return resp.status

    statuses = await asyncio.gather(*(guess(i) for i in range(12)))
    assert sorted(statuses) == [401] * 5 + [429] * 7


async def test_many_failures_from_one_address_lock_that_address(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    for i in range(20):
        assert (await c.login(f"X{i:03d}", "guess guess")).status == 401
    assert (await c.login("E1002")).status == 429


def test_failure_limiter_window_slides() -> None:
    limiter = FailureLimiter(3, 60)
    for t in (0.0, 10.0, 20.0):
        assert limiter.retry_after("k", t) == 0
        limiter.failed("k", t)
    assert limiter.retry_after("k", 30.0) == pytest.approx(30.0)
    assert limiter.retry_after("k", 60.5) == 0  # the first failure aged out
    limiter.failed("k", 61.0)
    assert limiter.retry_after("k", 62.0) > 0
    limiter.reset("k")
    assert limiter.retry_after("k", 62.0) == 0
    for t in (70.0, 71.0, 72.0):
        limiter.failed("k", t)
    limiter.forgive("k", 71.0)  # that attempt succeeded after all
    assert limiter.retry_after("k", 73.0) == 0


def test_failure_limiter_memory_is_bounded() -> None:
    limiter = FailureLimiter(3, 60, max_keys=100)
    for i in range(1000):
        limiter.failed(f"k{i}", float(i) / 100)
    assert len(limiter) <= 100


async def test_logout_ends_the_session(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    await c.login("E1001")
    resp = await c.http.post(
        c.url("/logout"),
        data={"csrf_token": c.csrf},
        headers={"Origin": env.origin},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/login"
    cleared = [h for h in resp.headers.getall("Set-Cookie") if h.startswith(SESSION_COOKIE + "=")]
    assert cleared and "max-age=0" in cleared[0].lower()
    assert await _session_count(env) == 0
    assert [a.actor for a in await _audit(env, "web_logout")] == ["E1001"]
    async with await c.get("/api/me") as me:
        assert me.status == 401
        assert await me.json() == {"error": "not logged in"}


async def test_a_session_expires_after_its_ttl(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    await c.login("E1001")
    env.clock.advance(3599)
    async with await c.get("/api/me") as me:
        assert me.status == 200
    env.clock.advance(2)
    async with await c.get("/api/me") as me:
        assert me.status == 401
    async with await c.get("/desk") as desk:
        assert desk.status == 303 and desk.headers["Location"] == "/login"
    assert await _session_count(env) == 0


async def test_expired_sessions_are_purged(env: Env, clients: Callable[[], Client]) -> None:
    await clients().login("E1001")
    await clients().login("E1002")
    assert await env.server.auth.purge_expired() == 0
    env.clock.advance(3601)
    assert await env.server.auth.purge_expired() == 2
    assert await _session_count(env) == 0


async def test_state_changes_need_the_sessions_csrf_token(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("E1001")
    missing = await c.post_json("/api/incidents", INCIDENT, csrf="")
    assert missing.status == 403
    assert await missing.json() == {"error": "missing or wrong CSRF token"}
    other = clients()
    await other.login("E1002")
    wrong = await c.post_json("/api/incidents", INCIDENT, csrf=other.csrf)
    assert wrong.status == 403
    assert env.incidents.saved == []
    ok = await c.post_json("/api/incidents", INCIDENT)
    assert ok.status == 201
    assert len(env.incidents.saved) == 1


async def test_form_posts_take_the_token_from_a_hidden_field(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("E1001")
    refused = await c.http.post(
        c.url("/logout"), data={"csrf_token": "nope"}, headers={"Origin": env.origin}
    )
    assert refused.status == 403
    assert await _session_count(env) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # same host, another port: another origin
        {"Referer": "http://evil.example/page"},
        {},  # neither Origin nor Referer
    ],
)
async def test_cross_origin_writes_are_refused_even_with_the_token(
    env: Env, clients: Callable[[], Client], headers: dict[str, str]
) -> None:
    c = clients()
    await c.login("E1001")
    resp = await c.post_json("/api/incidents", INCIDENT, origin=None, headers=headers)
    assert resp.status == 403
    assert await resp.json() == {"error": "cross-origin request refused"}
    assert env.incidents.saved == []


async def test_a_same_origin_referer_is_enough_without_origin(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("E1001")
    resp = await c.post_json(
        "/api/incidents", INCIDENT, origin=None, headers={"Referer": env.base + "/desk"}
    )
    assert resp.status == 201


async def test_login_needs_the_login_form_token(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    forged = await c.http.post(
        c.url("/login"),
        data={"csrf_token": "x" * 43, "employee_id": "E1001", "password": PASSWORD},
        headers={"Origin": env.origin},
        allow_redirects=False,
    )
    assert forged.status == 403
    cross = await c.login("E1001", origin="http://evil.example")
    assert cross.status == 403
    assert await _session_count(env) == 0


async def test_pages_send_security_headers(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    async with await c.get("/login") as resp:
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        login_cookie = resp.headers["Set-Cookie"].lower()
        assert "httponly" in login_cookie and "samesite=strict" in login_cookie
