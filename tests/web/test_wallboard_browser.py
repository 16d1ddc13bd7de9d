"""The wallboard in headless Chromium: agents, states and time in state from `/api/seats`, the
thresholds' colours, pause/unpause through the seat-state port, alerts the server kept across a
reload, and the same board in Chinese. Writes docs/screenshots/wallboard-<lang>.png when
CTID_UPDATE_SCREENSHOT=1."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from ctid.calls.seat_desk import SeatToday
from tests.frames import alert_of, wallboard_of, wallboard_seat

from .conftest import PASSWORD, Env

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]


def _board(now: float, *, loss_rate: float, within_pct: float) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "wallboard",
        "at": now,
        "seats": [
            wallboard_seat(
                "seat1", "on_call", caller="Zhou Jie", talk_started_at=now - 125, cap_at=now + 475
            ),
            wallboard_seat("seat2", "paused", pause_reason="rna"),
            wallboard_seat("seat3", "ringing", ring_started_at=now - 6, ring_deadline_at=now + 9),
            wallboard_seat("seat4", "available"),
        ],
        "queues": [
            {
                "name": "shared",
                "waiting": [
                    {"caller": "Sun Qiang", "since": now - 22},
                    {"caller": "Wang Xiaoming", "since": now - 4},
                ],
            }
        ],
        "kpis": {
            "offered": 24,
            "answered": 20,
            "abandoned": 4,
            "loss_rate": loss_rate,
            "within_rings_pct": within_pct,
            "asa_s": 7.5,
            "aht_s": 245.0,
            "over_cap": 1,
        },
        "desk": {
            "mode": "open",
            "lunch_group": None,
            "next_transition": "2026-11-23T12:00:00+08:00",
            "next_mode": "lunch",
        },
        "ami": {"connected": True},
    }


def _staff(env: Env) -> None:
    at = env.clock.utcnow().timestamp()
    ss = env.seat_states
    ss.add(
        "seat1",
        "talking",
        employee_id="E1001",
        agent_name="李伟",
        since=at - 125,
        today=SeatToday(answered=9, missed=0, talk_s=9 * 240),
    )
    ss.add(
        "seat2",
        "paused",
        "rna",
        employee_id="E1002",
        agent_name="张敏",
        since=at - 74,
        today=SeatToday(answered=5, missed=2, talk_s=5 * 200),
    )
    ss.add(
        "seat3",
        "ringing",
        employee_id="E2003",
        agent_name="Wang Fang",
        since=at - 6,
        today=SeatToday(answered=6, missed=1, talk_s=6 * 310),
    )
    ss.add("seat4", "ready", since=at - 600)


async def _wallboard(browser: Browser, env: Env, lang: str) -> Page:
    context = await browser.new_context(
        viewport={"width": 1600, "height": 1000}, locale=lang, extra_http_headers={}
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(env.base + "/login")
    await page.fill("input[name=employee_id]", "S9001")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/desk")
    # The page's clock stands still at the server's (fake) time: the timers are exact.
    await page.clock.set_fixed_time(env.clock.utcnow())
    await page.goto(env.base + "/supervisor")
    await expect(page.locator("#conn")).not_to_have_class(re.compile("conn-down"))
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


async def test_the_wallboard_steers_in_english(browser: Browser, env: Env, tmp_path: Path) -> None:
    _staff(env)
    page = await _wallboard(browser, env, "en-US")
    now = env.clock.utcnow().timestamp()
    env.hub.publish_supervisor(wallboard_of(_board(now, loss_rate=4 / 24, within_pct=85.0)))
    seat1 = page.locator('.seat-card[data-seat="seat1"]')
    seat2 = page.locator('.seat-card[data-seat="seat2"]')
    await expect(seat1.locator(".seat-agent")).to_have_text("李伟 · E1001")
    await expect(seat1.locator(".seat-status")).to_have_text("Talking")
    await expect(seat1.locator(".seat-since")).to_have_text("2:05")
    await expect(seat1.locator(".seat-talk")).to_have_text("Talking 2:05 · cap in 7:55")
    await expect(seat1.locator(".today-answered")).to_have_text("9")
    await expect(seat1.locator(".today-avg")).to_have_text("4:00")
    await expect(seat2.locator(".seat-status")).to_have_text("Paused")
    await expect(seat2.locator(".seat-reason")).to_have_text("Missed calls")
    await expect(seat2.locator(".seat-since")).to_have_text("1:14")
    await expect(seat2.locator(".today-missed")).to_have_text("2")
    await expect(page.locator('.seat-card[data-seat="seat3"] .seat-ring')).to_have_text(
        "Ring 2 of 3 (6 s)"
    )
    await expect(page.locator('.seat-card[data-seat="seat4"] .seat-agent')).to_have_text(
        "Nobody on this seat"
    )
    # Thresholds: 85 % within three rings is short of the 90 % target (amber, not red below
    # 80 %); a 16.7 % loss rate is past the 10 % red line; the longest wait is 22 s (red at 15).
    await expect(page.locator("#kpi-service_level")).to_have_text("85.0%")
    await expect(page.locator("#tile-service_level")).to_have_class(re.compile(r"\blvl-amber\b"))
    await expect(page.locator("#tile-service_level .tile-note")).to_have_text("target 90.0%")
    await expect(page.locator("#kpi-loss_rate")).to_have_text("16.7%")
    await expect(page.locator("#tile-loss_rate")).to_have_class(re.compile(r"\blvl-red\b"))
    await expect(page.locator("#kpi-longest_wait")).to_have_text("0:22")
    await expect(page.locator("#tile-longest_wait")).to_have_class(re.compile(r"\blvl-red\b"))
    await expect(page.locator("#desk-next")).to_have_text("Lunch hours at 12:00")
    await expect(page.locator("#lunch-duty")).to_contain_text("Lunch duty: group")
    # The empty alerts card says so quietly.
    await expect(page.locator("#alerts-empty")).to_have_text("No alerts.")

    # The supervisor puts the seat paused for missed calls back into service.
    await seat2.locator("button[data-unpause]").click()
    await expect(page.locator("#seat-status-msg")).to_have_text("Seat 2 takes calls again.")
    assert env.seat_states.changes == [("S9001", "seat2", "ready", None)]
    await expect(seat2.locator(".seat-status")).to_have_text("Ready")
    await expect(seat2.locator("button[data-unpause]")).to_be_hidden()
    # … and pauses the ready one with a reason.
    seat4 = page.locator('.seat-card[data-seat="seat4"]')
    await seat4.locator("select.pause-reason").select_option("training")
    await seat4.locator("button[data-pause]").click()
    await expect(seat4.locator(".seat-reason")).to_have_text("Training")
    assert env.seat_states.changes[-1] == ("S9001", "seat4", "paused", "training")

    # Alerts are kept by the server: a reload shows the last ones again, newest first.
    for n, kind in enumerate(("ring_miss", "auto_pause")):
        env.hub.publish_supervisor(
            alert_of(
                {
                    "v": 1,
                    "type": "alert",
                    "kind": kind,
                    "message": f"seat2 alert {n}",
                    "seat": "seat2",
                    "call_id": "",
                    "at": now - 60 + n,
                }
            )
        )
    await expect(page.locator("#alerts li")).to_have_count(2)
    await page.reload()
    await expect(page.locator("#alerts li")).to_have_count(2)
    await expect(page.locator("#alerts li").first).to_contain_text("Seat paused")
    await expect(page.locator("#alerts li").first).to_contain_text("paused after missed calls")
    await expect(page.locator("#alerts li").last).to_contain_text("let a call ring past 3 rings")
    await expect(page.locator("#alerts-empty")).to_be_hidden()
    env.hub.publish_supervisor(wallboard_of(_board(now, loss_rate=4 / 24, within_pct=85.0)))
    await expect(seat1.locator(".seat-status")).to_have_text("Talking")
    await _shoot(page, "wallboard-en.png", tmp_path)


async def test_the_wallboard_in_chinese(browser: Browser, env: Env, tmp_path: Path) -> None:
    _staff(env)
    page = await _wallboard(browser, env, "zh-CN")
    await page.goto(env.base + "/lang?to=zh_CN&next=/supervisor")
    now = env.clock.utcnow().timestamp()
    env.hub.publish_supervisor(wallboard_of(_board(now, loss_rate=0.5 / 24, within_pct=95.0)))
    env.hub.publish_supervisor(
        alert_of(
            {
                "v": 1,
                "type": "alert",
                "kind": "auto_pause",
                "message": "seat2 paused after 2 missed calls",
                "seat": "seat2",
                "call_id": "",
                "at": now - (timedelta(minutes=3).total_seconds()),
            }
        )
    )
    await expect(page.locator("h1")).to_have_text("监控大屏")
    seat2 = page.locator('.seat-card[data-seat="seat2"]')
    await expect(seat2.locator(".seat-status")).to_have_text("暂停")
    await expect(seat2.locator(".seat-reason")).to_have_text("未接来电")
    await expect(seat2.locator("button[data-unpause]")).to_have_text("恢复接听")
    await expect(page.locator('.seat-card[data-seat="seat1"] .seat-status')).to_have_text("通话中")
    await expect(page.locator('.seat-card[data-seat="seat3"] .seat-ring')).to_have_text(
        "第 2 声(共 3 声) (6 秒)"
    )
    await expect(page.locator("#tile-service_level .tile-label")).to_have_text("服务水平")
    await expect(page.locator("#tile-service_level")).to_have_class(re.compile(r"\blvl-green\b"))
    await expect(page.locator("#tile-loss_rate")).to_have_class(re.compile(r"\blvl-green\b"))
    await expect(page.locator("#desk-mode")).to_have_text("服务中")
    await expect(page.locator("#alerts li").first).to_contain_text("坐席已暂停")
    await expect(page.locator("#alerts li").first).to_contain_text("连续漏接后已自动暂停")
    await expect(page.locator("nav")).to_contain_text("事件单")
    await _shoot(page, "wallboard-zh_CN.png", tmp_path)
