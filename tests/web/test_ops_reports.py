"""Role checks across the new pages, the ops roster page (edits, inline refusals, uploads), the
reports pages with their CSV downloads, and the listen-in controls' API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.accounts.sessions import Authenticator
from ctid.core.clock import FakeClock
from ctid.rotation.admin import (
    LunchOverrideRow,
    RosterSeatRow,
)
from ctid.screenpop.hub import PopHub
from ctid.web.server import WebPorts, WebServer

from .conftest import (
    Client,
    Env,
    FakeCallers,
    FakeHealth,
    RecordingIncidents,
    kpi_line,
    make_config,
)

XSS = "<svg onload=alert(1)>"
UNCOVERED = (
    "rejected, the lunch plan would break: 2026-W49: lunch group A leaves the expert tier "
    "with nobody on the phones"
)


async def _login(clients: Callable[[], Client], who: str) -> Client:
    c = clients()
    assert (await c.login(who)).status == 303
    return c


SUPERVISION = {"S9001", "O7001"}
PAGES = {
    "/supervisor": SUPERVISION,
    "/reports": SUPERVISION,
    "/reports.csv": SUPERVISION,
    "/reports/agent-month": SUPERVISION,
    "/reports/agent-month.csv": SUPERVISION,
    "/ops/roster": {"O7001"},
}


@pytest.mark.parametrize("who", ["E1001", "S9001", "O7001"])
async def test_each_role_opens_only_its_pages(
    env: Env, clients: Callable[[], Client], who: str
) -> None:
    c = await _login(clients, who)
    for path, who_may in PAGES.items():
        async with await c.get(path) as resp:
            expected = 200 if who in who_may else 403
            assert resp.status == expected, (who, path)
            if expected == 403:
                assert "not allowed for your role" in await resp.text()
    async with await c.get("/desk") as desk:
        nav = await desk.text()
    assert ('href="/ops/roster"' in nav) == (who == "O7001")
    assert ('href="/reports"' in nav) == (who in SUPERVISION)
    assert ('href="/callbacks"' in nav) == (who != "O7001")


async def test_anonymous_users_are_sent_to_login(env: Env, clients: Callable[[], Client]) -> None:
    c = clients()
    for path in ("/supervisor", "/reports", "/reports.csv", "/ops/roster"):
        async with await c.get(path) as resp:
            assert (resp.status, resp.headers.get("Location")) == (303, "/login"), path
    refused = await c.post_form("/ops/roster/lunch/remove", {"key": "2026-W49"})
    assert refused.status == 401


def _plan_form(**changes: str) -> dict[str, str]:
    fields = {}
    for n, (tier, staff) in enumerate(
        (("ordinary", "E1001"), ("ordinary", "E1002"), ("expert", ""), ("expert", "")), start=1
    ):
        fields |= {
            f"name:seat{n}": f"Seat {n}",
            f"tier:seat{n}": tier,
            f"interface:seat{n}": f"PJSIP/s{n}",
            f"staffed_by:seat{n}": staff,
            f"active:seat{n}": "1",
        }
    fields |= {f"week:2026-W{48 + i}": "AB"[i % 2] for i in range(4)}
    fields |= changes
    return fields


async def test_ops_save_the_whole_plan_with_one_save_and_see_a_refusal_inline(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.roster.seats[2] = RosterSeatRow(
        seat_id="seat3", name=XSS, tier="expert", interface="PJSIP/s3", staffed_by=None
    )
    ops = await _login(clients, "O7001")
    async with await ops.get("/ops/roster") as page:
        html = await page.text()
    assert page.status == 200
    assert XSS not in html and "&lt;svg onload=alert(1)&gt;" in html
    assert 'data-week="2026-W48"' in html and "Desk open" in html
    # Staff are chosen by name from a list; tiers from a list; one form for everything.
    assert '<option value="E1003">Wang Fang (E1003)</option>' in html
    assert html.count('id="plan-form"') == 1 and html.count('id="plan-save"') == 1
    ok = await ops.post_form(
        "/ops/roster/plan", _plan_form(**{"staffed_by:seat1": "E1003", "week:2026-W49": "A"})
    )
    assert (ok.status, ok.headers["Location"]) == (303, "/ops/roster?done=plan")
    [(seats, weeks, by)] = env.roster.plans
    assert by == "O7001" and [s.staffed_by for s in seats] == ["E1003", "E1002", None, None]
    assert weeks == {"2026-W48": "A", "2026-W49": "A", "2026-W50": "A", "2026-W51": "B"}
    env.roster.refuse = UNCOVERED
    refused = await ops.post_form("/ops/roster/plan", _plan_form(**{"tier:seat3": "ordinary"}))
    assert refused.status == 400
    html = await refused.text()
    assert 'data-error="plan"' in html and "leaves the expert tier" in html
    # The page keeps what the user chose, so nothing typed is lost.
    assert (
        '<option value="ordinary" selected>Ordinary</option>' in html.split('name="tier:seat3"')[1]
    )
    bad = await ops.post_form("/ops/roster/plan", _plan_form(**{"tier:seat1": "boss"}))
    assert bad.status == 400 and "tier must be ordinary or expert" in await bad.text()
    unknown = await ops.post_form("/ops/roster/plan", _plan_form(**{"week:2026-W48": "Z"}))
    assert unknown.status == 400 and "choose a lunch group" in await unknown.text()
    no_csrf = await ops.post_form("/ops/roster/plan", _plan_form(), csrf="")
    assert no_csrf.status == 403
    sup = await _login(clients, "S9001")
    assert (await sup.post_form("/ops/roster/plan", _plan_form())).status == 403
    assert len(env.roster.plans) == 1


async def test_ops_manage_lunch_overrides_and_import_holidays(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.roster.overrides.append(
        LunchOverrideRow(kind="week_swap", key="2026-W50", group="B", note=XSS, created_by="O7001")
    )
    ops = await _login(clients, "O7001")
    async with await ops.get("/ops/roster") as page:
        html = await page.text()
    assert "2026-W50" in html and XSS not in html
    day = await ops.post_form("/ops/roster/lunch/day", {"day": "2026-12-03", "group": "B"})
    assert day.status == 303
    assert env.roster.days == [(date(2026, 12, 3), "B", None)]
    bad_day = await ops.post_form("/ops/roster/lunch/day", {"day": "3/12", "group": "A"})
    assert bad_day.status == 400
    env.roster.refuse = UNCOVERED
    refused = await ops.post_form("/ops/roster/lunch/remove", {"key": "2026-W50"})
    assert refused.status == 400 and 'data-error="lunch"' in await refused.text()
    removed = await ops.post_form("/ops/roster/lunch/remove", {"key": "2026-W50"})
    assert removed.status == 303 and env.roster.removed == ["2026-W50"]

    body = aiohttp.FormData()
    body.add_field("csrf_token", ops.csrf)
    body.add_field(
        "file",
        "\ufeff2026-12-25,holiday,Christmas\n2026-12-27,workday,Make-up\n".encode(),
        filename="holidays.csv",
        content_type="text/csv",
    )
    uploaded = await ops.http.post(
        ops.url("/ops/roster/holidays"),
        data=body,
        headers={"Origin": env.origin},
        allow_redirects=False,
    )
    assert uploaded.status == 303
    assert env.roster.imports == [
        ("2026-12-25,holiday,Christmas\n2026-12-27,workday,Make-up\n", "holidays.csv")
    ]
    pasted = await ops.post_form("/ops/roster/holidays", {"text": "2027-01-01,holiday,New Year"})
    assert pasted.status == 303 and env.roster.imports[-1][1] == "web form"
    empty = await ops.post_form("/ops/roster/holidays", {"text": ""})
    assert empty.status == 400 and "choose a holidays file" in await empty.text()
    unsigned = aiohttp.FormData()
    unsigned.add_field("file", b"2027-01-02,holiday,x\n", filename="h.csv")
    refused_upload = await ops.http.post(
        ops.url("/ops/roster/holidays"), data=unsigned, headers={"Origin": env.origin}
    )
    assert refused_upload.status == 403
    assert len(env.roster.imports) == 2


async def test_the_reports_page_has_the_table_charts_and_csv_link(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.reports.rows = (
        kpi_line(XSS, offered=3, answered=2, loss_rate=1 / 3),
        kpi_line("seat2", offered=6, answered=6, loss_rate=0.0, asa_s=4.2),
    )
    sup = await _login(clients, "S9001")
    async with await sup.get("/reports") as page:
        html = await page.text()
    assert page.status == 200
    # Default: the last seven site-local days, by day (the clock says 2026-11-23 in Shanghai).
    assert env.reports.asked[-1] == ("kpis", date(2026, 11, 17), date(2026, 11, 23), "day")
    assert html.count("<svg") >= 4 and "33.3%" in html and "4 s" in html
    assert XSS not in html and "&lt;svg onload=alert(1)&gt;" in html
    assert 'href="/reports.csv?from=2026-11-17&amp;to=2026-11-23&amp;by=day"' in html
    async with await sup.get("/reports?from=2026-11-01&to=2026-11-30&by=seat") as page:
        assert page.status == 200
    assert env.reports.asked[-1] == ("kpis", date(2026, 11, 1), date(2026, 11, 30), "seat")
    for bad in ("from=2026-11-30&to=2026-11-01", "from=yesterday", "by=moon", "from=2024-01-01"):
        async with await sup.get("/reports?" + bad) as page:
            assert page.status == 400, bad


async def test_csv_downloads_are_attachments(env: Env, clients: Callable[[], Client]) -> None:
    ops = await _login(clients, "O7001")
    async with await ops.get("/reports.csv?from=2026-11-01&to=2026-11-30&by=seat") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert resp.headers["Content-Disposition"] == (
            'attachment; filename="ctid-kpis-2026-11-01-2026-11-30-by-seat.csv"'
        )
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        # UTF-8 with a byte-order mark (Excel), headers in the request's language.
        assert await resp.read() == b"\xef\xbb\xbfseat,offered\nseat1,10\ntotal,14\n"
    async with await ops.get("/reports/agent-month?month=2026-10") as page:
        html = await page.text()
    assert page.status == 200 and "Li Wei" in html and ">42<" in html
    async with await ops.get("/reports/agent-month.csv?month=2026-10") as resp:
        assert (
            resp.headers["Content-Disposition"] == 'attachment; filename="ctid-agents-2026-10.csv"'
        )
    async with await ops.get("/reports/agent-month?month=2026-13") as bad:
        assert bad.status == 400


async def test_a_chinese_csv_opens_in_excel(env: Env, clients: Callable[[], Client]) -> None:
    ops = await _login(clients, "O7001")
    zh = {"Accept-Language": "zh-CN,zh;q=0.9"}
    async with await ops.get("/reports.csv?from=2026-11-01&to=2026-11-30&by=seat", headers=zh) as r:
        data = await r.read()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data[3:].decode("utf-8").splitlines()[0] == "坐席,呼入"


# ------------------------------------------------------------------------------ listen-in API


async def test_a_supervisor_starts_switches_and_stops_listening(
    env: Env, clients: Callable[[], Client]
) -> None:
    sup = await _login(clients, "S9001")
    started = await sup.post_json("/api/spy", {"seat": "seat1", "mode": "listen"})
    assert started.status == 201
    session = (await started.json())["session_id"]
    switched = await sup.post_json(f"/api/spy/{session}/mode", {"mode": "barge"})
    assert switched.status == 200 and (await switched.json())["mode"] == "barge"
    assert (await sup.post_json(f"/api/spy/{session}/mode", {"mode": "sing"})).status == 400
    assert (await sup.post_json(f"/api/spy/{session}/mode", {})).status == 400
    stopped = await sup.post_json(f"/api/spy/{session}/stop", {})
    assert stopped.status == 200 and await stopped.json() == {
        "session_id": session,
        "stopped": True,
    }
    gone = await sup.post_json(f"/api/spy/{session}/stop", {})
    assert gone.status == 404
    assert env.spy.switches == [("S9001", session, "barge")]
    assert env.spy.stops == [("S9001", session)]


@pytest.mark.parametrize("who", ["E1001", "O7001"])
async def test_only_supervisors_listen_in(
    env: Env, clients: Callable[[], Client], who: str
) -> None:
    env.spy.sessions["spy-9"] = "seat2"
    c = await _login(clients, who)
    for path, body in (
        ("/api/spy", {"seat": "seat2"}),
        ("/api/spy/spy-9/mode", {"mode": "whisper"}),
        ("/api/spy/spy-9/stop", {}),
    ):
        resp = await c.post_json(path, body)
        assert resp.status == 403, path
    assert env.spy.calls == [] and env.spy.stops == [] and env.spy.switches == []


async def test_listen_in_writes_need_the_csrf_token(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.spy.sessions["spy-9"] = "seat2"
    sup = await _login(clients, "S9001")
    for path, body in (
        ("/api/spy", {"seat": "seat2"}),
        ("/api/spy/spy-9/mode", {"mode": "whisper"}),
        ("/api/spy/spy-9/stop", {}),
    ):
        assert (await sup.post_json(path, body, csrf="")).status == 403, path
        assert (await sup.post_json(path, body, origin="http://evil.example")).status == 403
    assert env.spy.calls == [] and env.spy.stops == [] and "spy-9" in env.spy.sessions


async def test_ops_may_follow_the_wallboard_but_get_no_spy_buttons(
    env: Env, clients: Callable[[], Client]
) -> None:
    ops = await _login(clients, "O7001")
    async with await ops.get("/supervisor") as page:
        html = await page.text()
    assert page.status == 200 and "data-spy=" not in html and 'data-can-spy="0"' in html
    ws = await ops.ws("/ws/supervisor")
    hello = await ws.receive_json(timeout=5)
    assert hello["type"] == "hello" and hello["channel"] == "supervisor"
    await ws.close()


async def test_pages_of_ports_not_wired_say_so(
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    hasher: PasswordHasher,
    hub: PopHub,
) -> None:
    server = WebServer(
        make_config(tmp_path),
        WebPorts(
            hub=hub, incidents=RecordingIncidents(), callers=FakeCallers(), health=FakeHealth()
        ),
        auth=Authenticator(sessions, clock, ttl_s=3600, hasher=hasher),
        clock=clock,
        secret=b"test-secret-0123456789abcdef",
    )
    async with server:
        base = str(server.public_url).rstrip("/")
        c = Client(SimpleNamespace(base=base, origin=base))  # Client reads only these two
        try:
            await c.login("O7001")
            for path in ("/incidents", "/reports", "/ops/roster", "/survey/abc.def"):
                async with await c.get(path) as resp:
                    assert resp.status == 404, path
                    assert "not available" in await resp.text(), path
            async with await c.get("/supervisor") as resp:
                assert resp.status == 200 and "data-spy=" not in await resp.text()
        finally:
            await c.close()
