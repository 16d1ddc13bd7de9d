"""The JSON API and the server-rendered pages: incident saving through the port, caller search,
health, error shapes and HTML escaping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from ctid.core.errors import (
    RequestRefusedError,
    StateConflictError,
)
from ctid.tickets.forms import (
    CallerRow,
)
from ctid.web.ports import (
    HealthReport,
)
from tests.frames import pop_frame

from .conftest import Client, Env

FORM = {
    "number": "",
    "call_id": "1795000000.17",
    "caller_id": "7",
    "caller_name": "王小明",
    "phone": "13800138000",
    "department": "Finance",
    "office": "HQ 12F",
    "request_type": "fault",
    "category": "hardware",
    "impact": "medium",
    "urgency": "high",
    "summary": "Monitor stays black",
    "description": "Since this morning; cable re-seated.",
}


async def test_saving_the_incident_form_goes_through_the_port(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    await c.login("E1001")
    resp = await c.post_json("/api/incidents", FORM)
    assert resp.status == 201
    assert await resp.json() == {"number": "INC-20261123-0001", "status": "recorded"}
    [(draft, actor)] = env.incidents.saved
    assert (actor.employee_id, actor.role, actor.seat_id) == ("E1001", "agent", "seat1")
    assert draft.caller_id == 7 and draft.caller_name == "王小明" and draft.number is None
    assert draft.call_id == "1795000000.17" and draft.category == "hardware"
    assert draft.description == "Since this morning; cable re-seated."


async def test_saving_the_wrapup_incident_clears_the_seats_pop(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.hub.publish("seat1", pop_frame("seat1", str(FORM["call_id"]), state="wrapup"))
    c = clients()
    await c.login("E1001")
    ws = await c.ws()
    for _ in range(2):  # hello, then the wrap-up snapshot
        await asyncio.wait_for(ws.receive(), 5)
    assert (await c.post_json("/api/incidents", FORM)).status == 201
    frame = json.loads((await asyncio.wait_for(ws.receive(), 5)).data)
    assert (frame["type"], frame["reason"], frame["incident_number"]) == (
        "idle",
        "saved",
        "INC-20261123-0001",
    )
    assert env.hub.snapshot("seat1") is None
    await ws.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"category": "toaster"}, "field:category"),
        ({"caller_name": " "}, "field:caller_name"),
        ({"summary": "x" * 201}, "field:summary"),
        ({"caller_id": "seven"}, "caller_id must be a number"),
        ({"number": "<x>"}, "number is not an incident number"),
        ({"phone": 13800138000}, "phone must be a string"),
    ],
)
async def test_a_bad_form_is_a_400_naming_the_field(
    env: Env, clients: Callable[[], Client], change: dict[str, Any], message: str
) -> None:
    c = clients()
    await c.login("E1001")
    resp = await c.post_json("/api/incidents", {**FORM, **change})
    assert resp.status == 400
    body = await resp.json()
    if message.startswith("field:"):
        # A form problem is said in words next to its field (every one at once).
        field = message.removeprefix("field:")
        assert set(body["fields"]) == {field}
        assert not body["fields"][field].startswith(field)  # words, not the field's code name
    else:
        assert message in body["error"]
    assert env.incidents.saved == []


async def test_port_refusals_map_to_400_and_409(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    await c.login("E1001")
    env.incidents.fail = RequestRefusedError("caller 7 does not exist")
    rejected = await c.post_json("/api/incidents", FORM)
    assert (rejected.status, await rejected.json()) == (400, {"error": "caller 7 does not exist"})
    env.incidents.fail = StateConflictError("INC-1 was closed meanwhile")
    conflict = await c.post_json("/api/incidents", FORM)
    assert (conflict.status, await conflict.json()) == (
        409,
        {"error": "INC-1 was closed meanwhile"},
    )


async def test_api_errors_are_json(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    async with await c.get("/api/me") as anon:
        assert (anon.status, await anon.json()) == (401, {"error": "not logged in"})
    await c.login("E1001")
    async with await c.get("/api/nothing-here") as missing:
        assert missing.status == 404
        assert "error" in await missing.json()
    not_json = await c.http.post(
        c.url("/api/incidents"),
        data="caller_name=x",
        headers={
            "Origin": c.env.origin,
            "X-CSRF-Token": c.csrf,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert not_json.status == 400
    broken = await c.http.post(
        c.url("/api/incidents"),
        data=b"{not json",
        headers={
            "Origin": c.env.origin,
            "X-CSRF-Token": c.csrf,
            "Content-Type": "application/json",
        },
    )
    assert (broken.status, await broken.json()) == (400, {"error": "the body is not valid JSON"})
    ops = clients()
    await ops.login("O7001")
    forbidden = await ops.post_json("/api/incidents", FORM)
    assert (forbidden.status, await forbidden.json()) == (
        403,
        {"error": "not allowed for your role"},
    )


async def test_caller_search_api_and_page_escape_caller_data(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.callers.rows = [
        CallerRow(
            caller_id=1,
            name="<script>alert(1)</script>",
            phones=("13800138000",),
            department="R&D",
            vip=True,
            open_incidents=2,
        ),
        CallerRow(caller_id=2, name="Zhang San", phones=("1001",)),
    ]
    c = clients()
    await c.login("E1001")
    async with await c.get("/api/callers?q=138") as api:
        data = await api.json()
    assert [r["caller_id"] for r in data["callers"]] == [1]
    assert data["callers"][0]["name"] == "<script>alert(1)</script>"
    async with await c.get("/callers", params={"q": "138"}) as page:
        html = await page.text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert "R&amp;D" in html
    async with await c.get("/callers", params={"q": '"><img src=x>'}) as page:
        html = await page.text()
    assert "<img src=x>" not in html
    assert "&quot;&gt;&lt;img src=x&gt;" in html
    async with await c.get("/api/callers") as empty:
        assert empty.status == 400


async def test_healthz_needs_no_login_and_reports_degraded_as_503(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    async with await c.get("/healthz") as ok:
        assert ok.status == 200
        assert await ok.json() == {
            "status": "ok",
            "checks": {"ami": "up", "database": "ok"},
            "websockets": 0,
        }
    env.health.report = HealthReport(False, {"ami": "down"})
    async with await c.get("/healthz") as bad:
        assert bad.status == 503
        assert (await bad.json())["status"] == "degraded"


async def test_desk_page_carries_seat_and_token_as_escaped_data(
    env: Env, clients: Callable[[], Client]
) -> None:
    c = clients()
    async with await c.get("/desk") as anon:
        assert anon.status == 303 and anon.headers["Location"] == "/login"
    await c.login("E1001")
    async with await c.get("/desk") as page:
        html = await page.text()
    assert page.status == 200
    assert 'data-seat="seat1"' in html and f'data-csrf="{c.csrf}"' in html
    assert '<script src="/static/desk.js" defer></script>' in html
    assert "Li Wei" in html
    async with await c.get("/static/desk.js") as js:
        assert js.status == 200
        assert "textContent" in await js.text()
        assert "innerHTML" not in await js.text()


async def test_supervisor_page_lists_seats(env: Env, clients: Callable[[], Client]) -> None:
    sup = clients()
    await sup.login("S9001")
    async with await sup.get("/supervisor") as page:
        html = await page.text()
    assert page.status == 200
    for seat in ("seat1", "seat2", "seat3", "seat4"):
        assert f'data-spy="{seat}"' in html
    async with await sup.get("/desk") as desk:
        assert "Pick a seat" in await desk.text()
