"""The roster, incident list, incident and reports pages in headless Chromium, in both languages:
the roster's one Save for the whole plan with the uncovered-tier refusal shown before saving, the
list's pages keeping its filters, and a CSV download that Excel opens (BOM, Chinese headers). Writes docs/screenshots/<page>-<lang>.png when
CTID_UPDATE_SCREENSHOT=1."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from ctid.tickets.views import HistoryView
from ctid.tickets.workflow import IncidentQuery

from .conftest import PASSWORD, START, Env, make_incident

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]


async def _login(browser: Browser, env: Env, employee_id: str, lang: str) -> Page:
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale=lang)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(env.base + "/login")
    await page.fill("input[name=employee_id]", employee_id)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/desk")
    if employee_id.startswith("O"):
        await page.goto(env.base + "/ops/roster")
    return page


async def _shoot(page: Page, name: str, tmp_path: Path) -> None:
    target = (
        REPO / "docs" / "screenshots" / name
        if os.environ.get("CTID_UPDATE_SCREENSHOT")
        else tmp_path / name
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_the_roster_saves_the_whole_plan_and_refuses_an_uncovered_tier_first(
    browser: Browser, env: Env, tmp_path: Path, lang: str
) -> None:
    page = await _login(browser, env, "O7001", lang)
    zh = lang == "zh-CN"
    await expect(page.locator("h1")).to_have_text("排班" if zh else "Roster")
    await _shoot(page, f"roster-{lang.replace('-', '_')}.png", tmp_path)
    seat1 = page.locator('tr[data-seat="seat1"]')
    # Staff by name from a list; the lunch calendar says who is on the phones each week.
    await seat1.locator("select.staff").select_option("E1003")
    w48 = page.locator('tr[data-week="2026-W48"]')
    await expect(w48.locator(".week-seats")).to_contain_text("Seat 1 · Wang Fang")
    # seat3 (group A's only expert) made ordinary: weeks of group A lose their expert, and
    # the page says so before anything is sent, with Save disabled.
    await page.locator('tr[data-seat="seat3"] select.tier').select_option("ordinary")
    problem = page.locator('tr[data-week-problem="2026-W48"] .field-error')
    await expect(problem).to_be_visible()
    await expect(problem).to_have_text(
        "2026-W48 周:午间值班没有专家坐席(A 组:Seat 1, Seat 3)。"
        if zh
        else "Week 2026-W48: no expert seat on lunch duty (group A: Seat 1, Seat 3)."
    )
    await expect(page.locator("#plan-save")).to_be_disabled()
    await expect(page.locator("#plan-problems")).to_be_visible()
    await _shoot(page, f"roster-refused-{lang.replace('-', '_')}.png", tmp_path)
    assert env.roster.plans == []
    # Swap group B (with seat4, an expert) into the weeks of group A: the plan is whole again.
    for week in ("2026-W48", "2026-W50"):
        await page.locator(f'tr[data-week="{week}"] select.week-group').select_option("B")
    await expect(page.locator("#plan-problems")).to_be_hidden()
    await expect(page.locator("#plan-save")).to_be_enabled()
    await page.click("#plan-save")
    await expect(page.locator(".banner.info")).to_have_text(
        "排班计划已保存。" if zh else "The plan is saved."
    )
    [(seats, weeks, by)] = env.roster.plans
    assert by == "O7001"
    assert [(s.seat_id, s.tier, s.staffed_by) for s in seats] == [
        ("seat1", "ordinary", "E1003"),
        ("seat2", "ordinary", "E1002"),
        ("seat3", "ordinary", None),
        ("seat4", "expert", None),
    ]
    assert weeks == {"2026-W48": "B", "2026-W49": "B", "2026-W50": "B", "2026-W51": "B"}
    # The server's own refusal (the plan check) is shown at the form too, nothing lost.
    env.roster.refuse = "rejected, the lunch plan would break: week 2026-W52: no expert seat"
    await page.click("#plan-save")
    await expect(page.locator('[data-error="plan"]')).to_contain_text("week 2026-W52")
    await expect(page.locator('tr[data-seat="seat1"] select.staff')).to_have_value("E1003")


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_the_incident_list_pages_keep_the_filters(
    browser: Browser, env: Env, tmp_path: Path, lang: str
) -> None:
    shown = [
        ("0051", "new", None, "打印机卡纸 / Printer on 12F jams", None, None),
        ("0050", "assigned", "P3", "VPN 连不上 / VPN drops every hour", "seat1", None),
        ("0049", "in_progress", "P2", "邮箱满了 / Mailbox full", "seat1", -1),
        ("0048", "dispatched", "P2", "会议室投影仪无信号 / Projector, room 3", None, 5),
        ("0047", "suspended", "P4", "新员工账号 / Account for a new hire", "seat2", 30),
        ("0046", "escalated", "P1", "财务系统登录失败 / Finance app login fails", "seat3", 2),
    ]
    for i, (seq, status, priority, summary, seat, due_h) in enumerate(shown):
        env.workflow.add(
            make_incident(
                f"INC-20261123-{seq}",
                status=status,
                priority=priority,
                summary=summary,
                owner_seat=seat,
                owner_employee=None,
                owner_group="desktop" if status == "dispatched" else None,
                created_at=START - timedelta(minutes=25 * i + 5),
                sla_resolve_due=START + timedelta(hours=due_h) if due_h is not None else None,
            )
        )
    env.workflow.newer, env.workflow.older = "INC-20261123-0051", "INC-20261123-0046"
    page = await _login(browser, env, "S9001", lang)
    zh = lang == "zh-CN"
    await page.goto(env.base + "/incidents")
    pager = page.locator("nav.pager")
    await expect(pager.locator("a")).to_have_text(
        ["« 最新", "‹ 较新", "较早 ›"] if zh else ["« Newest", "‹ Newer", "Older ›"]
    )
    await expect(page.locator("#incident-list tbody tr")).to_have_count(len(shown))
    await expect(page.locator("#incident-list td.overdue")).to_have_count(1)
    await _shoot(page, f"incidents-{lang.replace('-', '_')}.png", tmp_path)
    # (The fake port answers the same rows whatever the filter: what is checked here is the
    # query the page asks for.)
    await page.select_option("select[name=status]", "in_progress")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url("**/incidents?*status=in_progress*")
    assert env.workflow.queries[-1] == IncidentQuery(statuses=("in_progress",))
    await pager.locator("a[rel=next]").click()
    await page.wait_for_url("**before=INC-20261123-0046")
    assert env.workflow.queries[-1] == IncidentQuery(
        statuses=("in_progress",), before="INC-20261123-0046"
    )
    await pager.locator("a[rel=prev]").click()
    await page.wait_for_url("**after=INC-20261123-0051")
    assert env.workflow.queries[-1] == IncidentQuery(
        statuses=("in_progress",), after="INC-20261123-0051"
    )
    await expect(page.locator("select[name=status]")).to_have_value("in_progress")


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_the_incident_page_speaks_the_users_language(
    browser: Browser, env: Env, tmp_path: Path, lang: str
) -> None:
    number = "INC-20261123-0042"
    env.workflow.add(
        make_incident(
            number,
            status="dispatched",
            summary="打印机卡纸 / Printer on 12F jams",
            description="Tray 2 jams on every print job since Monday.",
            request_type="fault",
            category="hardware",
            impact="medium",
            urgency="high",
            priority="P2",
            owner_group="desktop",
            sla_resolve_due=START + timedelta(hours=6),
            history=(
                HistoryView(
                    at=START - timedelta(hours=2),
                    actor="E1001",
                    action="create",
                    from_status=None,
                    to_status="in_progress",
                    detail={"channel": "phone"},
                ),
                HistoryView(
                    at=START - timedelta(hours=1),
                    actor="E1001",
                    action="dispatch",
                    from_status="in_progress",
                    to_status="dispatched",
                    detail={"group": "desktop", "note": "Spare tray in stock"},
                ),
            ),
        )
    )
    page = await _login(browser, env, "S9001", lang)
    zh = lang == "zh-CN"
    await page.goto(env.base + f"/incidents/{number}")
    await expect(page.locator("#incident-status")).to_have_text(
        "已派发二线" if zh else "Dispatched to second line"
    )
    facts = page.locator("dl.facts")
    await expect(facts).to_contain_text("硬件" if zh else "Hardware")
    await expect(facts).to_contain_text("中 × 高" if zh else "Medium × High")
    await expect(page.locator("#timeline")).to_contain_text(
        "处理中 → 已派发二线" if zh else "In progress → Dispatched to second line"
    )
    # One form at a time: the expected step (accept) is shown, reject is one click away.
    await page.click("#other-actions a[data-action=reject]")
    await expect(page.locator("form[data-action=reject] abbr.req")).to_have_count(1)
    await _shoot(page, f"incident-{lang.replace('-', '_')}.png", tmp_path)


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_reports_and_a_csv_download_that_excel_opens(
    browser: Browser, env: Env, tmp_path: Path, lang: str
) -> None:
    page = await _login(browser, env, "S9001", lang)
    zh = lang == "zh-CN"
    await page.goto(env.base + "/reports?by=seat")
    await expect(page.locator("h1")).to_have_text("报表" if zh else "Reports")
    async with page.expect_download() as info:
        await page.click("#csv-link")
    download = await info.value
    data = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel reads the Chinese right
    header = data[3:].decode("utf-8").splitlines()[0]
    assert header == ("坐席,呼入" if zh else "seat,offered")
    await _shoot(page, f"reports-{lang.replace('-', '_')}.png", tmp_path)
