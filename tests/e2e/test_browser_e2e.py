"""The whole desk in headless Chromium, in real time: a simulated caller dials the hotline, ctid's
IVR routes the call, the PBX rings seat1 — the pop appears on seat1's desktop with the caller from
the directory (and nothing on seat2's), the wallboard shows seat1 ringing then on the call, the
agent saves the incident form, and the incident opened for the call carries it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from ctid.accounts.users import add_user
from tests.e2e.harness import Desk, running_desk

pytestmark = pytest.mark.browser

PASSWORD = "e2e-password-123"
CALLERS = (
    "name,employee_id,department,office_location,phones,vip\n"
    "张三丰,E5001,财务部,北京总部 5F,+86 138-0013-8000,是\n"
)


async def _login(browser: Browser, desk: Desk, employee_id: str, path: str) -> Page:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20_000)
    page = await context.new_page()
    base = str(desk.daemon.web.public_url)
    await page.goto(base + "/login")
    await page.fill("input[name=employee_id]", employee_id)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    if path != "/desk":
        await page.goto(base + path)
    await expect(page.locator("#conn")).to_have_text("live")
    return page


async def test_a_simulated_call_pops_on_the_ringing_seat_only(
    browser: Browser, tmp_path: Path
) -> None:
    async with running_desk(tmp_path) as desk:
        sessions = desk.daemon.sessions
        for emp, name, role in (
            ("E1001", "王芳", "agent"),
            ("E1002", "Tom Li", "agent"),
            ("S9001", "Shift Leader", "supervisor"),
        ):
            await add_user(sessions, emp, name, role, PASSWORD)
        await desk.daemon.directory.import_csv(CALLERS, actor="test")

        seat1 = await _login(browser, desk, "E1001", "/desk")
        seat2 = await _login(browser, desk, "E1002", "/desk")
        seat2_frames: list[str] = []
        seat2.on(
            "websocket",
            lambda ws: ws.on("framereceived", lambda payload: seat2_frames.append(str(payload))),
        )
        await seat2.reload()
        await expect(seat2.locator("#conn")).to_have_text("live")
        board = await _login(browser, desk, "S9001", "/supervisor")

        desk.sim.set_phone("seat1", answer_after_s=6, talk_s=None)
        desk.sim.set_phone("seat2", answer_after_s=None)
        desk.sim.set_rr_position("ordinary", 0)
        call = desk.sim.place_call("13800138000", "Zhang S", digits="1", talk_s=None)

        await expect(seat1.locator("#pop-state")).to_have_text("Ringing", timeout=30_000)
        await expect(seat1.locator("#caller-number")).to_have_text("13800138000", timeout=15_000)
        # the directory record arrives right after the first frame
        await expect(seat1.locator("#caller-name")).to_have_text("张三丰", timeout=15_000)
        card = board.locator('.seat-card[data-seat="seat1"]')
        await expect(card.locator(".seat-status")).to_have_text("Ringing", timeout=30_000)

        await expect(seat1.locator("#pop-state")).to_have_text("On call", timeout=30_000)
        await expect(card.locator(".seat-status")).to_have_text("Talking", timeout=30_000)
        await seat1.fill("input[name=summary]", "打印机无法打印")
        await seat1.fill("input[name=office]", "北京总部 6F")  # the caller moved: fix it in the pop
        await seat1.select_option("select[name=category]", "hardware")
        await seat1.select_option("select[name=impact]", "medium")
        await seat1.select_option("select[name=urgency]", "high")
        await seat1.click("#save-incident")
        await expect(seat1.locator("#incident-number")).to_have_text(
            re.compile(r"^INC-\d{8}-\d{4}$")
        )

        # The pop may show the call's incident number before the save's three steps (describe,
        # classify, prioritize) are all written: wait for the last one.
        incidents = await desk.wait_for(
            lambda: [
                r
                for r in desk.incidents()
                if r["summary"] == "打印机无法打印" and r["priority"] is not None
            ]
        )
        assert len(desk.incidents()) == 1  # the one opened for the call, now described
        assert incidents[0]["owner_seat"] == "seat1"
        assert incidents[0]["priority"] == "P2"  # medium impact × high urgency
        assert incidents[0]["category"] == "hardware"

        offices = desk.rows("SELECT office_location FROM callers")
        assert [r["office_location"] for r in offices] == ["北京总部 6F"]

        assert call.linkedid
        assert not any(call.linkedid in f for f in seat2_frames)
        call.hangup()
        await desk.wait_for(call.ended.is_set)
