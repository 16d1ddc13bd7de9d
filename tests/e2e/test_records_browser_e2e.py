"""The incident records in headless Chromium, in real time on the simulator: a second call from
the same number is attached to the caller's open incident from the pop (no new incident stays
open); a work note lands in the timeline; the incident page offers only its state's legal actions;
an article a supervisor writes is suggested in the next matching pop and found by a Chinese word.
Also takes the screenshots in docs/screenshots/ (incident, caller, knowledge base, pop with
suggestions; English and Chinese)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from ctid.accounts.users import add_user
from ctid.tickets.kb import Author
from ctid.tickets.lifecycle import allowed_actions
from tests.e2e.harness import Desk, running_desk

pytestmark = pytest.mark.browser

PASSWORD = "e2e-password-123"
CALLERS = (
    "name,employee_id,department,office_location,phones,vip,email\n"
    "张三丰,E5001,财务部,北京总部 5F,+86 138-0013-8000,否,zsf@example.com\n"
)
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LOCALES = {"en": "en-US", "zh_CN": "zh-CN"}


async def _login(
    browser: Browser, desk: Desk, employee_id: str, path: str, *, locale: str = "en-US"
) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 860}, locale=locale)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    base = str(desk.daemon.web.public_url).rstrip("/")
    await page.goto(base + "/login")
    await page.fill("input[name=employee_id]", employee_id)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    await page.goto(base + path)
    return page


async def _people(desk: Desk) -> None:
    for emp, name, role in (
        ("E1001", "王芳", "agent"),
        ("S9001", "陈静", "supervisor"),
    ):
        await add_user(desk.daemon.sessions, emp, name, role, PASSWORD)
    await desk.daemon.directory.import_csv(CALLERS, actor="test")


def _open_numbers(desk: Desk) -> list[str]:
    return [r["number"] for r in desk.incidents() if r["status"] not in ("resolved", "closed")]


async def _shot(page: Page, name: str, lang: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}-{lang}.png"), full_page=True)


async def test_second_call_attached_from_the_pop_note_and_legal_actions(
    browser: Browser, tmp_path: Path
) -> None:
    async with running_desk(tmp_path) as desk:
        await _people(desk)
        caller = desk.rows("SELECT id FROM callers")[0]["id"]
        first = await desk.daemon.incidents.create(
            actor="E1001",
            summary="打印机卡纸",
            category="hardware",
            caller_id=caller,
            caller_number="+8613800138000",
            caller_name="张三丰",
            owner_seat="seat1",
            owner_employee="E1001",
        )
        seat1 = await _login(browser, desk, "E1001", "/desk")
        await expect(seat1.locator("#conn")).to_have_text("live")

        desk.sim.set_phone("seat1", answer_after_s=6, talk_s=None)
        desk.sim.set_phone("seat2", answer_after_s=None)
        desk.sim.set_rr_position("ordinary", 0)
        call = desk.sim.place_call("13800138000", "Zhang S", digits="1", talk_s=None)

        attach = seat1.locator(f'button.attach[data-incident="{first.number}"]')
        await expect(attach).to_be_visible(timeout=30_000)
        await attach.click()
        await expect(seat1.locator("#attached-to")).to_contain_text(first.number)
        await expect(seat1.locator("#pop-state")).to_have_text("On call", timeout=30_000)
        await expect(seat1.locator("#incident-number")).to_have_text(first.number)
        call.hangup()
        await desk.wait_for(call.ended.is_set)
        row = await desk.call_row(call.linkedid)
        # the call became a contact on the first incident and no other incident is open
        await desk.wait_for(
            lambda: (
                desk.rows("SELECT incident_id FROM calls WHERE call_id = ?", call.linkedid)[0][
                    "incident_id"
                ]
                == first.id
            )
        )
        assert row["call_id"] == call.linkedid
        assert _open_numbers(desk) == [first.number]

        # the incident page: the call and a work note in the timeline, legal actions only
        page = await _login(browser, desk, "E1001", f"/incidents/{first.number}")
        status = desk.rows("SELECT status FROM incidents WHERE id = ?", first.id)[0]["status"]
        offered = [await page.locator("#action-form").get_attribute("data-action")] + [
            str(await a.get_attribute("data-action"))
            for a in await page.locator("#other-actions a").all()
        ]
        legal = allowed_actions(status)
        assert offered and all(a in legal for a in offered), (status, offered)
        assert "close" not in offered and "reopen" not in offered
        assert len(set(offered)) == len(offered)
        await expect(page.locator("#timeline li.tl-call")).to_have_count(1)

        await page.fill("#note-form textarea[name=body]", "已远程重启打印服务")
        await page.click("#note-form button[type=submit]")
        await expect(page.locator("#timeline")).to_contain_text("已远程重启打印服务")
        await expect(page.locator("#timeline li.tl-note-internal")).to_have_count(1)

        # take the next step the page leads with; the offer follows the new state
        before = await page.locator("#action-form").get_attribute("data-action")
        assert before == "prioritize"  # classified and owned: the priority comes next
        await page.select_option("#action-form select[name=impact]", "medium")
        await page.select_option("#action-form select[name=urgency]", "high")
        await page.click("#action-form button[type=submit]")
        await expect(page.locator("#action-form")).not_to_have_attribute("data-action", str(before))
        status = desk.rows("SELECT status FROM incidents WHERE id = ?", first.id)[0]["status"]
        now = await page.locator("#action-form").get_attribute("data-action")
        assert now in allowed_actions(status), (status, now)

        for lang, locale in LOCALES.items():
            shot = await _login(browser, desk, "S9001", f"/incidents/{first.number}", locale=locale)
            await expect(shot.locator("#timeline")).to_contain_text("已远程重启打印服务")
            await _shot(shot, "incident-view", lang)
            await shot.goto(str(desk.daemon.web.public_url).rstrip("/") + f"/callers/{caller}")
            await expect(shot.locator("body")).to_contain_text(first.number)
            await _shot(shot, "caller-profile", lang)
            await shot.context.close()


async def test_a_supervisors_article_is_suggested_in_the_next_pop_and_found_in_chinese(
    browser: Browser, tmp_path: Path
) -> None:
    async with running_desk(tmp_path) as desk:
        await _people(desk)
        sup = await _login(browser, desk, "S9001", "/kb/new", locale="zh-CN")
        await sup.fill("input[name=title]", "打印机卡纸的处理办法")
        await sup.fill("textarea[name=symptoms]", "打印机提示卡纸,无法继续打印")
        await sup.fill("textarea[name=steps]", "1. 关闭电源\n2. 打开后盖取出纸张\n3. 重新开机")
        await sup.select_option("select[name=category]", "hardware")
        await sup.select_option("select[name=request_type]", "consultation")
        await sup.fill("input[name=tags]", "打印机")
        await sup.click("#kb-form button[type=submit]")
        await expect(sup.locator("#kb-title")).to_contain_text("打印机卡纸的处理办法")
        await desk.daemon.kb.create(
            Author("S9001", "supervisor", expert=False),
            {
                "title": "投诉的处理流程",
                "steps": "记录并转值班长",
                "request_type": "complaint",
                "language": "zh",
            },
        )

        caller = desk.rows("SELECT id FROM callers")[0]["id"]
        earlier = await desk.daemon.incidents.create(
            actor="E1001",
            summary="打印机卡纸",
            caller_id=caller,
            caller_number="+8613800138000",
            caller_name="张三丰",
            owner_seat="seat1",
        )
        desks = {
            lang: await _login(browser, desk, "E1001", "/desk", locale=locale)
            for lang, locale in LOCALES.items()
        }
        for page in desks.values():
            await expect(page.locator("#conn")).not_to_have_class("conn conn-down")
        desk.sim.set_phone("seat1", answer_after_s=9, talk_s=None)
        desk.sim.set_phone("seat2", answer_after_s=None)
        desk.sim.set_rr_position("ordinary", 0)
        call = desk.sim.place_call("13800138000", "Zhang S", digits="1", talk_s=None)
        for lang, page in desks.items():
            suggested = page.locator("#kb-suggestions a")
            await expect(suggested).to_have_text(["打印机卡纸的处理办法"], timeout=30_000)
            await expect(page.locator("#caller-name")).to_have_text("张三丰")
            # the caller's open incident is offered to attach the call to
            attach = page.locator(f'button.attach[data-incident="{earlier.number}"]')
            await expect(attach).to_be_visible()
            await _shot(page, "pop-suggestions", lang)
        call.hangup()
        await desk.wait_for(call.ended.is_set)

        # found by a Chinese search term, in both languages of the page
        for lang, locale in LOCALES.items():
            page = await _login(browser, desk, "E1001", "/kb?q=卡纸", locale=locale)
            await expect(page.locator("main")).to_contain_text("打印机卡纸的处理办法")
            await expect(page.locator("main")).not_to_contain_text("投诉的处理流程")
            await _shot(page, "kb-search", lang)
            await page.context.close()
