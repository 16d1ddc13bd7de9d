"""The agent desk in headless Chromium on the simulated PBX, in real time: one card per call (a
second call never touches the first call's draft, and each Save lands in its own call's incident),
not-ready and back (the PBX sees both pauses), hang-up and transfer from the desk, the desk in
Chinese, and the screenshots of the desk in both languages (docs/screenshots/)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, expect

from ctid.accounts.users import add_user
from tests.e2e.harness import Desk, running_desk

pytestmark = pytest.mark.browser

PASSWORD = "e2e-password-123"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
NO_WRAPUP = {"wrapup_s": {"ordinary": 0, "expert": 0}}  # the harness's default, said here


async def _users(desk: Desk) -> None:
    for emp, name, role in (
        ("E1001", "王芳", "agent"),
        ("E2001", "Chen Jie", "agent"),
        ("S9001", "Shift Leader", "supervisor"),
    ):
        await add_user(desk.daemon.sessions, emp, name, role, PASSWORD)


async def _login(browser: Browser, desk: Desk, employee_id: str, locale: str = "en-US") -> Page:
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale=locale)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    page.on("dialog", lambda d: d.accept())
    base = str(desk.daemon.web.public_url)
    await page.goto(base + "/login")
    await page.fill("input[name=employee_id]", employee_id)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    await expect(page.locator("#conn")).to_have_class(re.compile("conn-up"))
    return page


async def _number_of(desk: Desk, call_id: str) -> str:
    rows = await desk.wait_rows(
        "SELECT i.number FROM incidents i JOIN calls c ON c.incident_id = i.id WHERE c.call_id = ?",
        call_id,
    )
    return str(rows[0]["number"])


async def _talking(desk: Desk, page: Page, number: str, **call: Any) -> Any:
    sim_call = desk.sim.place_call(number, "Caller " + number[-4:], digits="1", talk_s=None, **call)
    await desk.wait_for(sim_call.answered.is_set)
    await expect(page.locator("#pop-state")).to_have_text("On call", timeout=30_000)
    return sim_call


async def test_a_second_call_never_touches_the_first_draft(
    browser: Browser, tmp_path: Path
) -> None:
    async with running_desk(tmp_path, desk=NO_WRAPUP) as desk:
        await _users(desk)
        desk.sim.set_phone("seat1", answer_after_s=2, talk_s=None)
        desk.sim.set_phone("seat2", answer_after_s=None)
        desk.sim.set_rr_position("ordinary", 0)
        page = await _login(browser, desk, "E1001")
        first = await _talking(desk, page, "13800138001")
        # Save is on screen without scrolling at 1440×900
        box = await page.locator("#save-incident").bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900
        await page.fill("input[name=summary]", "VPN drops every hour")
        await page.fill("textarea[name=description]", "since Monday")
        # the draft is kept on the server as the agent types
        await desk.wait_rows(
            "SELECT * FROM desk_drafts WHERE call_id = ? AND fields LIKE '%VPN drops%'",
            first.linkedid,
        )
        first.hangup()
        await desk.wait_for(first.ended.is_set)

        second = await _talking(desk, page, "13800138002")
        assert second.linkedid != first.linkedid
        # the new call has its own card and an empty form; the first card is still there
        await expect(page.locator(".card-tab")).to_have_count(2)
        await expect(page.locator("input[name=summary]")).to_have_value("")
        await page.fill("input[name=summary]", "Printer jam")

        await page.locator(f'.card-tab[data-call="{first.linkedid}"]').click()
        await expect(page.locator("input[name=summary]")).to_have_value("VPN drops every hour")
        await expect(page.locator("textarea[name=description]")).to_have_value("since Monday")
        await page.select_option("select[name=category]", "network")
        await page.select_option("select[name=impact]", "medium")
        await page.select_option("select[name=urgency]", "medium")
        await page.click("#save-incident")
        await expect(page.locator("#save-status")).to_contain_text("Saved INC-")
        first_number = await _number_of(desk, first.linkedid)
        await expect(page.locator("#incident-number")).to_have_text(first_number)

        await page.locator(f'.card-tab[data-call="{second.linkedid}"]').click()
        await expect(page.locator("input[name=summary]")).to_have_value("Printer jam")
        # every problem at once, next to its field, in words
        await page.click("#save-incident")
        await expect(page.locator('.field[data-field="category"] .field-error')).to_have_text(
            "Choose a category."
        )
        await expect(page.locator('.field[data-field="impact"] .field-error')).to_have_text(
            "Choose the impact."
        )
        await page.select_option("select[name=category]", "hardware")
        await page.select_option("select[name=impact]", "low")
        await page.select_option("select[name=urgency]", "low")
        await page.click("#save-incident")
        await expect(page.locator("#save-status")).to_contain_text("Saved INC-")
        second_number = await _number_of(desk, second.linkedid)
        assert second_number != first_number

        rows = await desk.wait_for(
            lambda: (
                [
                    r
                    for r in desk.incidents()
                    if r["summary"] in ("VPN drops every hour", "Printer jam")
                    and r["priority"] is not None
                ]
                if len([r for r in desk.incidents() if r["priority"] is not None]) == 2
                else None
            )
        )
        by_number = {r["number"]: r["summary"] for r in rows}
        assert by_number == {first_number: "VPN drops every hour", second_number: "Printer jam"}

        # a reload keeps both cards (drafts live on the server)
        await page.reload()
        await expect(page.locator(".card-tab")).to_have_count(2)

        # the server refuses a save whose call and incident do not belong together
        status = await page.evaluate(
            """async ([call, number]) => {
                const r = await fetch('/api/incidents', {method: 'POST',
                  headers: {'Content-Type': 'application/json',
                            'X-CSRF-Token': document.body.dataset.csrf},
                  body: JSON.stringify({call_id: call, number: number, caller_name: 'x',
                    summary: 'wrong', request_type: 'fault', category: 'other',
                    impact: 'low', urgency: 'low'})});
                return [r.status, (await r.json()).error];
            }""",
            [second.linkedid, first_number],
        )
        assert status[0] == 409 and first_number in status[1] and second_number in status[1]
        second.hangup()


async def test_b_not_ready_with_a_reason_and_back(browser: Browser, tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        await _users(desk)
        page = await _login(browser, desk, "E1001")
        await expect(page.locator("#seat-state")).to_have_text("Ready")
        await page.select_option("#pause-reason", "training")
        await page.click("#btn-pause")
        await expect(page.locator("#seat-state")).to_have_text("Paused")
        await expect(page.locator("#seat-why")).to_contain_text("Training")
        await expect(page.locator("#seat-why")).to_contain_text("Press Ready")
        await page.click("#btn-ready")
        await expect(page.locator("#seat-state")).to_have_text("Ready")
        pauses = [
            (a["Paused"], a.get("Reason"))
            for a in desk.actions("QueuePause")
            if a["Interface"] == "PJSIP/seat1"
        ]
        assert pauses == [("true", "training"), ("false", "training")]
        members = [m for q in desk.sim.config.queues for m in desk.sim.queue_members(q.name)]
        assert not any(m.interface == "PJSIP/seat1" and m.paused for m in members)


async def test_c_a_late_seat_snapshot_never_undoes_a_pushed_state(
    browser: Browser, tmp_path: Path
) -> None:
    # The page asks GET /api/seats when its socket opens; a seat_state frame pushed while that
    # answer is on its way is newer, and the answer must not draw the older state over it.
    async with running_desk(tmp_path) as desk:
        await _users(desk)
        page = await _login(browser, desk, "E1001")
        released = asyncio.Event()
        answered: list[str] = []

        async def hold(route: Route) -> None:
            response = await route.fetch()  # the server answers now: the seat is ready
            answered.append(str(await response.text()))
            await released.wait()  # ... and the page gets that answer only later
            await route.fulfill(response=response)

        await page.route("**/api/seats", hold)
        await page.reload()
        await expect(page.locator("#conn")).to_have_class(re.compile("conn-up"))
        await desk.wait_for(lambda: bool(answered))
        assert '"state": "ready"' in answered[0] or '"state":"ready"' in answered[0]
        # The page shows no seat yet (its snapshot is held): pause the way its button does.
        status = await page.evaluate(
            """async () => (await fetch("/api/seats/seat1/state", {
                method: "POST", credentials: "same-origin",
                headers: {"Content-Type": "application/json",
                          "X-CSRF-Token": document.body.dataset.csrf},
                body: JSON.stringify({state: "paused", reason: "training"})})).status"""
        )
        assert status == 200
        await expect(page.locator("#seat-state")).to_have_text("Paused")
        released.set()
        await expect(page.locator("body")).to_have_attribute("data-seat-loads", "1")
        await expect(page.locator("#seat-state")).to_have_text("Paused")
        await expect(page.locator("#btn-ready")).to_be_visible()


async def test_d_hang_up_and_transfer_from_the_desk(browser: Browser, tmp_path: Path) -> None:
    async with running_desk(tmp_path, desk=NO_WRAPUP) as desk:
        await _users(desk)
        desk.sim.set_phone("seat1", answer_after_s=2, talk_s=None)
        desk.sim.set_phone("seat2", answer_after_s=None)
        desk.sim.set_phone("seat3", answer_after_s=2, talk_s=None)
        desk.sim.set_rr_position("ordinary", 0)
        page = await _login(browser, desk, "E1001")
        # call control shows only while a call is on
        await expect(page.locator("#btn-hangup")).to_be_hidden()
        call = await _talking(desk, page, "13800138003")
        await expect(page.locator("#btn-hangup")).to_be_visible()
        await page.click("#btn-hangup")
        await desk.wait_for(call.ended.is_set)
        [hangup] = desk.actions("Hangup")
        assert not hangup["Channel"].startswith("PJSIP/seat")  # the caller's side was hung up

        call = await _talking(desk, page, "13800138004")
        await page.click("#btn-transfer-expert")
        await desk.wait_for(lambda: call.seat == "seat3")
        [redirect] = desk.actions("Redirect")
        assert (redirect["Context"], redirect["Exten"]) == ("ctid-transfer", "expert")
        await expect(page.locator("#btn-hangup")).to_be_hidden(timeout=30_000)
        call.hangup()


async def test_e_the_desk_in_chinese(browser: Browser, tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        await _users(desk)
        page = await _login(browser, desk, "E1001", locale="zh-CN")
        await expect(page.locator("#save-incident")).to_have_text("保存事件单")
        await expect(page.locator("#seat-state")).to_have_text("就绪")
        await expect(page.locator("#conn")).to_have_text("已连接")
        await expect(page.locator('.field[data-field="caller_name"] .field-label')).to_contain_text(
            "来电人姓名"
        )
        await expect(page.locator("#btn-pause")).to_have_text("示忙")
        # the user's own choice beats the browser's language
        await page.goto(str(desk.daemon.web.public_url) + "/lang?to=en&next=/desk")
        await expect(page.locator("#save-incident")).to_have_text("Save incident")


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_screenshots_of_the_desk(browser: Browser, tmp_path: Path, locale: str) -> None:
    """Ringing, talking near the cap, wrap-up and paused, saved to docs/screenshots/."""
    lang = "zh" if locale.startswith("zh") else "en"
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with running_desk(tmp_path, desk={"wrapup_s": {"ordinary": 600, "expert": 600}}) as desk:
        await _users(desk)
        desk.sim.set_phone("seat1", answer_after_s=8, talk_s=None)
        desk.sim.set_phone("seat2", answer_after_s=None)
        desk.sim.set_rr_position("ordinary", 0)
        page = await _login(browser, desk, "E1001", locale=locale)
        call = desk.sim.place_call("13800138005", "Zhang San", digits="2", talk_s=None)
        await expect(page.locator("#ring-words")).to_be_visible(timeout=30_000)
        await expect(page.locator("#ring-words")).to_contain_text("2")
        await page.screenshot(path=str(SHOTS / f"desk-ringing-{lang}.png"))
        await desk.wait_for(call.answered.is_set)
        await expect(page.locator("#talk-bar")).to_be_visible(timeout=30_000)
        await page.fill(
            "input[name=summary]", "邮箱无法登录" if lang == "zh" else "Cannot log in to mail"
        )
        # near the cap: the page's clock runs 8:50 ahead (the server's cap is not touched)
        await page.evaluate("() => { const real = Date.now; Date.now = () => real() + 530000; }")
        await expect(page.locator(".talk-fill.warn")).to_be_visible()
        await page.screenshot(path=str(SHOTS / f"desk-talking-near-cap-{lang}.png"))
        await desk.wait_rows(
            "SELECT * FROM desk_drafts WHERE fields LIKE '%mail%' OR fields LIKE '%邮箱%'"
        )
        await page.reload()
        await expect(page.locator("#conn")).to_have_class(re.compile("conn-up"))
        call.hangup()
        await expect(page.locator("#seat-state")).to_have_text(
            "话后整理" if lang == "zh" else "Wrap-up", timeout=30_000
        )
        await page.screenshot(path=str(SHOTS / f"desk-wrapup-{lang}.png"))
        await page.click("#btn-ready")
        await page.select_option("#pause-reason", "meal")
        await expect(page.locator("#btn-pause")).to_be_visible()
        await page.click("#btn-pause")
        await expect(page.locator("#seat-state")).to_have_text("暂停" if lang == "zh" else "Paused")
        await page.screenshot(path=str(SHOTS / f"desk-paused-{lang}.png"))
