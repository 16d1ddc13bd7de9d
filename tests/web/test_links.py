"""The e-mailed link pages over loopback with real signed tokens: GET never acts (mail scanners
open every link), POST needs our Origin plus the double-submit cookie bound to the token, and a
tampered or expired token gets a clear page with 400/410."""

from __future__ import annotations

import re
from collections.abc import Callable

import aiohttp

from ctid.web.link_pages import LINK_COOKIE

from .conftest import Client, Env

_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
XSS = "<img src=x onerror=alert(1)>"


async def _open(c: Client, path: str) -> tuple[aiohttp.ClientResponse, str, str]:
    """GET the link page: (response, html, form token)."""
    async with await c.get(path) as resp:
        html = await resp.text()
    match = _FORM_TOKEN.search(html)
    return resp, html, match.group(1) if match else ""


def _tamper(token: str) -> str:
    payload, mac = token.split(".")
    return payload + "." + ("A" if mac[0] != "A" else "B") + mac[1:]


async def test_get_only_shows_the_dispatch_page_even_with_a_decision(
    env: Env, clients: Callable[[], Client]
) -> None:
    token = env.links.dispatch_token("INC-20261123-0007", summary=XSS)
    c = clients()
    resp, html, form_token = await _open(c, f"/incidents/respond/{token}?decision=accept")
    assert resp.status == 200
    assert env.links.responses == []  # a scanner following the link changes nothing
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'value="accept" checked' in html and form_token
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    cookie = next(h for h in resp.headers.getall("Set-Cookie") if h.startswith(LINK_COOKIE))
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert "path=/incidents/respond" in cookie.lower()
    async with await c.http.head(c.url(f"/incidents/respond/{token}?decision=reject")) as head:
        assert head.status == 200
    assert env.links.responses == []


async def test_posting_the_form_accepts_or_rejects_with_a_reason(
    env: Env, clients: Callable[[], Client]
) -> None:
    token = env.links.dispatch_token("INC-20261123-0007")
    c = clients()
    _, _, form_token = await _open(c, f"/incidents/respond/{token}")
    no_reason = await c.post_form(
        f"/incidents/respond/{token}", {"decision": "reject", "reason": " "}, csrf=form_token
    )
    assert no_reason.status == 400 and "reason is required" in await no_reason.text()
    rejected = await c.post_form(
        f"/incidents/respond/{token}",
        {"decision": "reject", "reason": "Not our switch"},
        csrf=form_token,
    )
    assert rejected.status == 200
    assert "rejected and sent back" in await rejected.text()
    assert env.links.responses == [("INC-20261123-0007", "reject", "Not our switch")]
    # The incident moved on: the page says so (with no form) and a second answer is a 409.
    _, html, stale = await _open(c, f"/incidents/respond/{token}")
    assert 'id="link-state"' in html and "no longer waiting" in html and not stale
    again = await c.post_form(
        f"/incidents/respond/{token}", {"decision": "accept"}, csrf=form_token
    )
    assert again.status == 409 and "no longer waiting for network" in await again.text()

    other = env.links.dispatch_token("INC-20261123-0008")
    _, _, form_token = await _open(c, f"/incidents/respond/{other}")
    accepted = await c.post_form(
        f"/incidents/respond/{other}", {"decision": "accept"}, csrf=form_token
    )
    assert accepted.status == 200 and "INC-20261123-0008 accepted" in await accepted.text()


async def test_the_link_form_needs_its_cookie_its_token_and_our_origin(
    env: Env, clients: Callable[[], Client]
) -> None:
    token = env.links.dispatch_token("INC-20261123-0007")
    other = env.links.dispatch_token("INC-20261123-0009")
    c = clients()
    _, _, form_token = await _open(c, f"/incidents/respond/{token}")
    path = f"/incidents/respond/{token}"
    accept = {"decision": "accept"}
    assert (await c.post_form(path, accept, csrf="")).status == 403
    assert (
        await c.post_form(path, accept, csrf=form_token, origin="http://evil.example")
    ).status == 403
    assert (await c.post_form(path, accept, csrf=form_token, origin=None)).status == 403
    # The form token is bound to its link: it does not work for another incident's link.
    assert (await c.post_form(f"/incidents/respond/{other}", accept, csrf=form_token)).status == 403
    # Without the cookie (another browser replaying the field) it is refused too.
    stranger = clients()
    assert (await stranger.post_form(path, accept, csrf=form_token)).status == 403
    assert env.links.responses == []
    assert (await c.post_form(path, accept, csrf=form_token)).status == 200


async def test_tampered_and_expired_links_get_a_clear_page(
    env: Env, clients: Callable[[], Client]
) -> None:
    token = env.links.dispatch_token("INC-20261123-0007")
    survey = env.links.survey_token("INC-20261123-0007")
    c = clients()
    for path in (f"/incidents/respond/{_tamper(token)}", f"/survey/{_tamper(survey)}"):
        resp, html, form_token = await _open(c, path)
        assert resp.status == 400 and "This link is not valid" in html and not form_token
    for junk in ("/incidents/respond/%3Cscript%3E", "/survey/x"):
        async with await c.get(junk) as resp:
            assert resp.status == 400
    _, _, form_token = await _open(c, f"/incidents/respond/{token}")
    env.clock.advance(7 * 86400 + 1)
    resp, html, _ = await _open(c, f"/incidents/respond/{token}")
    assert resp.status == 410 and "This link has expired" in html
    late = await c.post_form(f"/incidents/respond/{token}", {"decision": "accept"}, csrf=form_token)
    assert late.status == 410
    assert env.links.responses == []
    resp, html, _ = await _open(c, f"/survey/{survey}")
    assert resp.status == 200  # surveys last 14 days
    env.clock.advance(7 * 86400)
    resp, html, _ = await _open(c, f"/survey/{survey}")
    assert resp.status == 410


async def test_the_survey_records_one_rating(env: Env, clients: Callable[[], Client]) -> None:
    survey = env.links.survey_token("INC-20261123-0003", summary=XSS)
    c = clients()
    resp, html, form_token = await _open(c, f"/survey/{survey}")
    assert resp.status == 200 and XSS not in html and form_token
    assert env.links.ratings == []
    for bad in ({"score": "6"}, {"score": ""}, {"score": "3", "comment": "x" * 2001}):
        assert (await c.post_form(f"/survey/{survey}", bad, csrf=form_token)).status == 400
    assert (await c.post_form(f"/survey/{survey}", {"score": "5"}, csrf="")).status == 403
    ok = await c.post_form(
        f"/survey/{survey}", {"score": "4", "comment": "quick and friendly"}, csrf=form_token
    )
    assert ok.status == 200 and "Thank you" in await ok.text()
    assert env.links.ratings == [("INC-20261123-0003", 4, "quick and friendly")]
    again = await c.post_form(f"/survey/{survey}", {"score": "1"}, csrf=form_token)
    assert again.status == 409 and "rated already" in await again.text()
    _, html, fresh = await _open(c, f"/survey/{survey}")
    assert "You rated this already" in html and not fresh
    assert env.links.ratings == [("INC-20261123-0003", 4, "quick and friendly")]
