"""The web edge wired into the running daemon, end to end: ctid's daemon and the PBX simulator on
loopback, an aiohttp client logging in like a browser (session cookie, Origin, CSRF token), on
fake loop time."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ctid.accounts.users import add_user, make_hasher, set_password
from ctid.asterisk.simulator import SimCall
from ctid.core.ids import SeatId
from tests.e2e.harness import Desk, running_desk

# Fake loop time; the SQLite writes (and the one Argon2 rehash at login) run in worker threads
# the fake clock cannot see, hence many idle cycles before it moves.
pytestmark = pytest.mark.looptime(noop_cycles=20_000)

PASSWORD = "correct horse battery staple"
SUPERVISORS = [{"employee_id": "S100", "name": "Wang Wei", "phone": "PJSIP/sup1"}]
_CSRF = re.compile(r'(?:name="csrf_token" value|data-csrf)="([^"]+)"')


class Browser:
    """A logged-in user's HTTP client: keeps the cookie, sends our Origin and the CSRF token."""

    def __init__(self, desk: Desk) -> None:
        self.base = str(desk.daemon.web.public_url).rstrip("/")
        # No client-side time limit: the loop clock is fake, the test's bounds are asyncio's.
        # The site speaks Chinese by default; these tests read the English words.
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=aiohttp.ClientTimeout(total=None),
            headers={"Accept-Language": "en"},
        )
        self.csrf = ""

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path, allow_redirects=False) as resp:
            return resp.status, await resp.text()

    async def login(self, employee_id: str) -> None:
        status, page = await self.get("/login")
        assert status == 200
        token = _CSRF.search(page)
        assert token is not None
        async with self.http.post(
            self.base + "/login",
            data={"csrf_token": token.group(1), "employee_id": employee_id, "password": PASSWORD},
            headers={"Origin": self.base},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303, await resp.text()
        status, page = await self.get("/incidents")
        assert status == 200
        token = _CSRF.search(page)
        assert token is not None
        self.csrf = token.group(1)

    async def post_json(self, path: str, data: object) -> tuple[int, Any]:
        async with self.http.post(
            self.base + path,
            json=data,
            headers={"Origin": self.base, "X-CSRF-Token": self.csrf},
            allow_redirects=False,
        ) as resp:
            return resp.status, await resp.json()

    async def post_form(self, path: str, data: dict[str, str]) -> tuple[int, str]:
        async with self.http.post(
            self.base + path,
            data={**data, "csrf_token": self.csrf},
            headers={"Origin": self.base},
            allow_redirects=False,
        ) as resp:
            return resp.status, await resp.text()


@asynccontextmanager
async def web_desk(tmp_path: Path) -> AsyncIterator[Desk]:
    """The desk with a supervisor (S100, phone PJSIP/sup1), an ops user (O1) and seat1's agent
    (E1001) who can log in."""
    async with running_desk(tmp_path, supervisors=SUPERVISORS) as desk:
        cheap = make_hasher(time_cost=1, memory_cost_kib=8, parallelism=1)
        sessions = desk.daemon.sessions
        # The roster seeds configured supervisors as users without a password.
        await set_password(sessions, "S100", PASSWORD, hasher=cheap)
        await add_user(sessions, "O1", "Ops One", "ops", PASSWORD, hasher=cheap)
        await add_user(sessions, "E1001", "Li Lei", "agent", PASSWORD, hasher=cheap)  # seat1
        yield desk


@asynccontextmanager
async def browser(desk: Desk, employee_id: str) -> AsyncIterator[Browser]:
    b = Browser(desk)
    try:
        await b.login(employee_id)
        yield b
    finally:
        await b.close()


async def live_call_on_seat1(desk: Desk) -> SimCall:
    desk.sim.set_phone("seat2", answer_after_s=None)
    desk.sim.set_phone("seat1", answer_after_s=2, talk_s=None)
    call = desk.sim.place_call("13800138000", "Zhang San", digits="1", talk_s=None)
    await desk.wait_for(call.answered.is_set)
    assert call.seat == "seat1"
    tracker = desk.daemon.calls.tracker
    await desk.wait_for(lambda: tracker.seat(SeatId("seat1")).activity == "on_call")
    await desk.wait_for(lambda: call.linkedid in desk.daemon.intake.incidents)
    return call


async def test_supervisor_sees_the_live_call_incident_acts_on_it_and_listens_in(
    tmp_path: Path,
) -> None:
    async with web_desk(tmp_path) as desk, browser(desk, "S100") as web:
        call = await live_call_on_seat1(desk)
        number = desk.daemon.intake.incidents[call.linkedid]

        status, page = await web.get("/incidents")
        assert status == 200
        assert number in page

        status, detail = await web.post_json("/api/incidents/nope/actions", {})
        assert status in (400, 404)  # the API answers, it does not crash
        async with web.http.get(f"{web.base}/api/incidents/{number}") as resp:
            assert resp.status == 200
            detail = await resp.json()
        assert detail["live_call_id"] == call.linkedid
        assert "flag" in [a["action"] for a in detail["actions"]]
        version = detail["version"]

        # A lifecycle step through the JSON API, then the same step on the old version: 409.
        step = {"action": "flag", "expected_version": version, "args": {"flag": "vip"}}
        status, done = await web.post_json(f"/api/incidents/{number}/actions", step)
        assert status == 200, done
        assert done["number"] == number and done["version"] == version + 1
        status, stale = await web.post_json(f"/api/incidents/{number}/actions", step)
        assert status == 409, stale
        history = desk.rows(
            "SELECT h.action, h.actor FROM incident_history h JOIN incidents i"
            " ON i.id = h.incident_id WHERE i.number = ? ORDER BY h.id",
            number,
        )
        assert (history[-1]["action"], history[-1]["actor"]) == ("flag", "S100")

        # Listen in: the supervisor's phone is originated into [ctid-spy], whose Local channel
        # runs ChanSpy on seat1's exact leg.
        seat_leg = desk.daemon.calls.tracker.call(call.linkedid)  # type: ignore[arg-type]
        assert seat_leg is not None and seat_leg.seat_channel is not None
        status, started = await web.post_json("/api/spy", {"seat": "seat1", "mode": "listen"})
        assert status == 201, started
        session = started["session_id"]
        assert session.isdigit()
        [originate] = desk.actions("Originate")
        assert originate["Channel"] == "PJSIP/sup1"
        assert (originate["Context"], originate["Exten"]) == ("ctid-spy", f"spy{session}")
        assert originate["Variable"] == (
            f"__CTID_SPY_CHANNEL={seat_leg.seat_channel},__CTID_SPY_OPTIONS=uqE"
        )
        spy = desk.daemon.spy
        await desk.wait_for(lambda: (s := spy.session(int(session))) and s.state == "active")
        status, stopped = await web.post_json(f"/api/spy/{session}/stop", {})
        assert status == 200, stopped
        await desk.wait_for(lambda: (s := spy.session(int(session))) and s.state == "stopped")
        status, again = await web.post_json(f"/api/spy/{session}/stop", {})
        assert status == 404, again
        status, gone = await web.post_json("/api/spy/999999/stop", {})
        assert status == 404, gone
        status, idle = await web.post_json("/api/spy", {"seat": "seat2", "mode": "listen"})
        assert status == 409, idle


async def test_callback_list_click_to_call_reports_and_roster(tmp_path: Path) -> None:
    async with web_desk(tmp_path) as desk:
        for seat in ("seat1", "seat2"):
            desk.sim.set_phone(seat, answer_after_s=None)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="1", hangup_after_s=10)
        await desk.wait_for(call.ended.is_set)
        [callback] = await desk.wait_for_callbacks()

        async with browser(desk, "E1001") as agent:
            status, page = await agent.get("/callbacks")
            assert status == 200
            assert "+8613800138000" in page or "13800138000" in page
            assert "Hung up while waiting" in page  # reason: abandoned

            # Start it: ctid rings the agent's seat phone into the number (national digits) in
            # ctid-callback. The simulator refuses Originates to seat phones; the page says so
            # (and the callback stays in progress) instead of failing.
            status, page = await agent.post_form(f"/callbacks/{callback['id']}/call", {})
            originates = [o for o in desk.actions("Originate") if o.get("Context")]
            assert [(o["Channel"], o["Context"], o["Exten"]) for o in originates] == [
                ("PJSIP/seat1", "ctid-callback", "13800138000")
            ]
            assert status == 200, page
            assert "could not be rung" in page
            assert "OriginateResponse Failure" in page
            [row] = desk.rows("SELECT status, attempts, worked_by FROM callbacks")
            assert (row["status"], row["attempts"], row["worked_by"]) == ("in_progress", 1, "E1001")

        async with browser(desk, "S100") as web:
            status, text = await web.get("/reports.csv?from=2026-11-23&to=2026-11-23&by=total")
            assert status == 200, text
            assert text.startswith("\ufeff")  # UTF-8 with a BOM for Excel
            table = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
            offered = "Calls offered (reached a queue in service hours)"
            assert table and table[-1][offered] == "1"
            assert table[-1]["abandoned in queue"] == "1"

            status, _ = await web.get("/ops/roster")
            assert status == 403  # a supervisor is not ops

        async with browser(desk, "O1") as ops:
            status, page = await ops.get("/ops/roster")
            assert status == 200, page
            for seat in ("seat1", "seat2", "seat3", "seat4"):
                assert seat in page
            assert "2026-W48" in page or "W48" in page
