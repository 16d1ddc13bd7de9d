"""The wallboard on the whole desk, in headless Chromium and in Chinese: a seat that lets a call
ring past the limit is paused by ctid for missed calls (`rna`), the board says so in words, the
supervisor unpauses it from the board and the simulated PBX sees the seat unpaused; the alert is
still there after a reload (the server keeps the last alerts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from ctid.accounts.users import add_user
from tests.e2e.harness import Desk, running_desk

pytestmark = pytest.mark.browser

PASSWORD = "e2e-password-123"


async def _board(browser: Browser, desk: Desk) -> Page:
    context = await browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
    context.set_default_timeout(30_000)
    page = await context.new_page()
    base = str(desk.daemon.web.public_url)
    await page.goto(base + "/login")
    await page.fill("input[name=employee_id]", "S9001")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    await page.goto(base + "/supervisor")
    await expect(page.locator("#conn")).to_have_text("已连接")
    return page


def _seat1_paused(desk: Desk) -> bool:
    return any(
        m.interface == "PJSIP/seat1" and m.paused
        for q in desk.sim.config.queues
        for m in desk.sim.queue_members(q.name)
    )


async def test_the_supervisor_unpauses_a_seat_paused_for_missed_calls(
    browser: Browser, tmp_path: Path
) -> None:
    # One ring of 1 s, one miss pauses the seat: the story of the desk in a few seconds.
    async with running_desk(
        tmp_path, ring={"ring_cadence_s": 1, "max_rings": 1, "rna_pause_after": 1}
    ) as desk:
        for emp, name, role in (("E1001", "王芳", "agent"), ("S9001", "值班长", "supervisor")):
            await add_user(desk.daemon.sessions, emp, name, role, PASSWORD)
        page = await _board(browser, desk)
        card = page.locator('.seat-card[data-seat="seat1"]')
        await expect(card.locator(".seat-status")).to_have_text("就绪")

        desk.sim.set_phone("seat1", answer_after_s=None)
        for seat in ("seat2", "seat3", "seat4"):
            desk.sim.set_phone(seat, answer_after_s=0.5, talk_s=2)
        desk.sim.set_rr_position("ordinary", 0)
        call = desk.sim.place_call("13800138000", "Zhang S", digits="1", talk_s=2)
        await desk.wait_for(lambda: _seat1_paused(desk))

        await expect(card.locator(".seat-status")).to_have_text("暂停")
        await expect(card.locator(".seat-reason")).to_have_text("未接来电")
        await expect(card.locator(".today-missed")).to_have_text("1")
        alert = page.locator("#alerts li", has_text="坐席已暂停")
        await expect(alert).to_have_count(1)
        # A reload keeps the alerts: the server sends the last ones on connect.
        await page.reload()
        await expect(page.locator("#alerts li", has_text="坐席已暂停")).to_have_count(1)
        await expect(page.locator("#alerts li", has_text="未接来电")).to_have_count(1)

        unpauses_before = len(
            [
                a
                for a in desk.actions("QueuePause")
                if a["Interface"] == "PJSIP/seat1" and a["Paused"] == "false"
            ]
        )
        await card.locator("button[data-unpause]").click()
        await expect(page.locator("#seat-status-msg")).to_have_text("Seat 1 已恢复接听。")
        await desk.wait_for(lambda: not _seat1_paused(desk))
        unpauses = [
            a
            for a in desk.actions("QueuePause")
            if a["Interface"] == "PJSIP/seat1" and a["Paused"] == "false"
        ]
        assert len(unpauses) > unpauses_before
        await expect(card.locator(".seat-status")).to_have_text("就绪")
        await expect(card.locator("button[data-unpause]")).to_be_hidden()
        rows = await desk.wait_rows(
            "SELECT by FROM seat_states WHERE seat_id = 'seat1' AND state = 'ready' AND by = 'S9001'"
        )
        assert rows
        await desk.wait_for(call.ended.is_set)
