"""The agent desktop in headless Chromium (Debian's, driven by Playwright): the pop appears for
the right seat only, caller text is inert, a reload restores the pop, and the incident form saves
through the port. Needs /usr/bin/chromium (or CTID_CHROMIUM); never downloads a browser."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from ctid.config import TalkCapConfig
from ctid.core.frames import AlertFrame
from ctid.screenpop import pop
from ctid.screenpop.pop import (
    CallerCard,
    CallerMatch,
    ContactLine,
    IncidentLine,
    IvrChoice,
    RingInput,
)
from tests.frames import wallboard_of, wallboard_seat

from .conftest import PASSWORD, Env

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"
REPO = Path(__file__).resolve().parents[2]

# Records desktop notifications instead of showing them, as if the agent had allowed them.
RECORD_NOTIFICATIONS = """
(() => {
  window.__notes = [];
  class Recorder {
    constructor(title, opts) { window.__notes.push([title, (opts && opts.body) || ""]); }
    static get permission() { return "granted"; }
    static requestPermission() { return Promise.resolve("granted"); }
  }
  window.Notification = Recorder;
})();
"""


async def _desk(
    browser: Browser, env: Env, employee_id: str, *, init_script: str = ""
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    if init_script:
        await context.add_init_script(init_script)
    page = await context.new_page()
    await page.goto(env.base + "/login")
    await page.fill("input[name=employee_id]", employee_id)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/desk")
    await expect(page.locator("#conn")).to_have_text("live")
    return context, page


def _ring(
    env: Env, seat: str, call_id: str, *matches: CallerMatch, cid_name: str = ""
) -> RingInput:
    now = env.clock.utcnow().timestamp()
    return RingInput(
        call_id=call_id,
        seat_id=seat,
        number="13800138000",
        cid_name=cid_name,
        queue="shared",
        ivr=IvrChoice(digit="2", label="fault", request_type="fault"),
        entered_at=now - 37,
        rang_at=now,
        ring_deadline_at=now + 15,
        matches=matches,
    )


def _caller(name: str, caller_id: int = 7, **kw: Any) -> CallerMatch:
    return CallerMatch(
        card=CallerCard(
            caller_id=caller_id,
            name=name,
            phone="13800138000",
            employee_id="A0042",
            department=kw.get("department", "Finance"),
            office=kw.get("office", "HQ 12F"),
            vip=kw.get("vip", False),
        ),
        open_incidents=kw.get("open_incidents", ()),
        recent_contacts=kw.get("recent_contacts", ()),
    )


async def test_ring_pop_shows_the_caller_literally_and_only_on_thatwallboard_seat(
    browser: Browser, env: Env
) -> None:
    _, seat1 = await _desk(browser, env, "E1001", init_script=RECORD_NOTIFICATIONS)
    _, seat2 = await _desk(browser, env, "E1002")
    seat2_frames: list[str] = []
    seat2.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda payload: seat2_frames.append(str(payload))),
    )
    await seat2.reload()  # re-open the socket with the frame recorder attached
    await expect(seat2.locator("#conn")).to_have_text("live")
    dialogs: list[str] = []

    async def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    seat1.on("dialog", on_dialog)
    seat2.on("dialog", on_dialog)

    env.hub.publish(
        "seat1", pop.to_frame(pop.ringing(_ring(env, "seat1", "call-xss", _caller(XSS))))
    )
    await expect(seat1.locator("#caller-name")).to_have_text(XSS)
    await expect(seat1.locator("#pop-state")).to_have_text("Ringing")
    await expect(seat1.locator("#caller-number")).to_have_text("13800138000")
    await expect(seat1.locator("#ivr-choice")).to_have_text("Fault (2)")
    await expect(seat1.locator("#ring-words")).to_contain_text("Ring 1 of 3")
    assert await seat1.locator("#pop img").count() == 0
    assert await seat1.locator("input[name=caller_name]").input_value() == XSS
    notes = await seat1.evaluate("window.__notes")
    assert notes and XSS in notes[0][1]

    # seat2 gets its own marker call, and never saw seat1's pop.
    env.hub.publish(
        "seat2", pop.to_frame(pop.ringing(_ring(env, "seat2", "call-marker", _caller("Marker"))))
    )
    await expect(seat2.locator("#caller-name")).to_have_text("Marker")
    assert seat2_frames and not any("call-xss" in f for f in seat2_frames)
    assert dialogs == []


async def test_reload_shows_the_current_pop_again(browser: Browser, env: Env) -> None:
    _, page = await _desk(browser, env, "E1001")
    ringing = pop.ringing(_ring(env, "seat1", "call-1", _caller("Zhou Jie", vip=True)))
    env.hub.publish(
        "seat1",
        pop.to_frame(
            pop.answered(ringing, at=env.clock.utcnow().timestamp(), talk_cap=TalkCapConfig())
        ),
    )
    await expect(page.locator("#pop-state")).to_have_text("On call")
    await page.reload()
    await expect(page.locator("#conn")).to_have_text("live")
    await expect(page.locator("#caller-name")).to_have_text("Zhou Jie")
    await expect(page.locator("#pop-state")).to_have_text("On call")
    await expect(page.locator("#caller-vip")).to_be_visible()
    await expect(page.locator("#talk-words")).to_contain_text("Talking ")
    await expect(page.locator("#cap-words")).to_contain_text("The call ends at 10:00")
    await expect(page.locator("#sop-list > li")).to_have_count(5)
    # the step whose budget the talk time is in is marked (one at a time)
    await expect(page.locator("#sop-list > li.active")).to_have_count(1)
    env.hub.publish(
        "seat1",
        pop.cap_warning_frame(
            seat_id="seat1",
            call_id="call-1",
            at=env.clock.utcnow().timestamp() + 480,
            cap_at=env.clock.utcnow().timestamp() + 600,
            action="hangup",
        ),
    )
    await expect(page.locator("#banner")).to_have_text("2:00 to the talk-time cap.")


async def test_the_desktop_reconnects_and_rerenders_from_the_snapshot(
    browser: Browser, env: Env
) -> None:
    _, page = await _desk(browser, env, "E1001")
    sockets: list[object] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    env.hub.publish(
        "seat1", pop.to_frame(pop.ringing(_ring(env, "seat1", "c-a", _caller("Before"))))
    )
    await expect(page.locator("#caller-name")).to_have_text("Before")
    await env.server.close_sockets()  # as on a daemon restart: code 1001
    # Published while the desktop is away: it must show up from the snapshot on reconnect.
    env.hub.publish(
        "seat1", pop.to_frame(pop.ringing(_ring(env, "seat1", "c-b", _caller("After"))))
    )
    await expect(page.locator("#caller-name")).to_have_text("After")
    await expect(page.locator("#conn")).to_have_text("live")
    assert len(sockets) == 1  # one new socket since the listener was attached


async def test_several_matches_let_the_agent_choose_the_caller(browser: Browser, env: Env) -> None:
    _, page = await _desk(browser, env, "E1001")
    ring = _ring(
        env,
        "seat1",
        "call-2",
        _caller("Liu Yang", 11, department="Sales"),
        _caller("Liu Yan", 12, department="Legal"),
        cid_name="LIU Y",
    )
    env.hub.publish("seat1", pop.to_frame(pop.ringing(ring)))
    await expect(page.locator("#chooser")).to_be_visible()
    await page.get_by_role("button", name="Liu Yan", exact=True).click()
    assert await page.locator("input[name=caller_id]").input_value() == "12"
    assert await page.locator("input[name=department]").input_value() == "Legal"
    await expect(page.locator("#caller-name")).to_have_text("Liu Yan")


async def test_the_incident_form_saves_through_the_port_and_wrapup_ends(
    browser: Browser, env: Env
) -> None:
    _, page = await _desk(browser, env, "E1001")
    now = env.clock.utcnow().timestamp()
    talking = pop.answered(
        pop.ringing(_ring(env, "seat1", "call-3", _caller("Sun Qiang"))),
        at=now,
        talk_cap=TalkCapConfig(),
    )
    env.hub.publish("seat1", pop.to_frame(talking))
    await expect(page.locator("#pop-state")).to_have_text("On call")
    assert await page.locator("input[name=caller_name]").input_value() == "Sun Qiang"
    await page.select_option("select[name=category]", "network")
    await page.select_option("select[name=impact]", "high")
    await page.select_option("select[name=urgency]", "medium")
    await page.fill("input[name=summary]", "VPN drops every 5 minutes")
    await page.fill("textarea[name=description]", "Home office; since Friday.")
    env.hub.publish(
        "seat1",
        pop.to_frame(pop.hung_up(talking, at=now + 200, incident_number="INC-20261123-0042")),
    )
    await expect(page.locator("#pop-state")).to_have_text("Ended")
    # The agent's typing survives the state change of the same call.
    assert await page.locator("input[name=summary]").input_value() == "VPN drops every 5 minutes"
    await page.click("#save-incident")
    await expect(page.locator("#save-status")).to_have_text("Saved INC-20261123-0042.")
    [(draft, actor)] = env.incidents.saved
    assert actor.employee_id == "E1001" and actor.seat_id == "seat1"
    assert draft.number == "INC-20261123-0042" and draft.call_id == "call-3"
    assert (draft.caller_id, draft.caller_name, draft.phone) == (7, "Sun Qiang", "13800138000")
    assert (draft.request_type, draft.category, draft.impact, draft.urgency) == (
        "fault",
        "network",
        "high",
        "medium",
    )
    assert draft.summary == "VPN drops every 5 minutes"
    # The card stays, marked saved, until the agent closes it.
    await expect(page.locator(".card-tab.saved")).to_have_count(1)


async def test_screenshot_of_a_ringing_pop(
    browser: Browser, env: Env, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Writes docs/screenpop.png when CTID_UPDATE_SCREENSHOT=1 (else a temp file)."""
    _, page = await _desk(browser, env, "E1001")
    now = env.clock.utcnow().timestamp()
    match = _caller(
        "Wang Xiaoming",
        vip=True,
        department="Finance — Accounts Payable",
        office="HQ Tower B, 12F, desk 12-031",
        open_incidents=(
            IncidentLine(
                number="INC-20261120-0007",
                summary="Invoice printer jams on tray 2",
                status="dispatched",
                priority="P3",
            ),
        ),
        recent_contacts=(
            ContactLine(
                at=now - 3 * 86400, channel="phone", summary="Printer jams (INC-20261120-0007)"
            ),
            ContactLine(at=now - 9 * 86400, channel="email", summary="Password reset for ERP"),
        ),
    )
    env.hub.publish("seat1", pop.to_frame(pop.ringing(_ring(env, "seat1", "call-shot", match))))
    await expect(page.locator("#caller-name")).to_have_text("Wang Xiaoming")
    await expect(page.locator("#ring-words")).to_be_visible()
    target = (
        REPO / "docs" / "screenpop.png"
        if os.environ.get("CTID_UPDATE_SCREENSHOT")
        else tmp_path / "screenpop.png"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000


# ------------------------------------------------------------------------------ workflow pages


async def _login(browser: Browser, env: Env, employee_id: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(env.base + "/login")
    await page.fill("input[name=employee_id]", employee_id)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/desk")
    return context, page


def _wallboard(now: float, *seats: dict[str, Any], waiting: int = 0) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "wallboard",
        "at": now,
        "seats": list(seats),
        "queues": [
            {"name": "shared", "waiting": [{"caller": "Zhou Jie", "since": now - 40}] * waiting}
        ],
        "kpis": {
            "offered": 12,
            "answered": 11,
            "abandoned": 1,
            "loss_rate": 1 / 12,
            "within_rings_pct": 90.9,
            "asa_s": 7.5,
            "aht_s": 245.0,
            "over_cap": 0,
        },
        "desk": {
            "mode": "lunch",
            "lunch_group": "A",
            "next_transition": "2026-11-23T13:30:00+08:00",
            "next_mode": "open",
        },
        "ami": {"connected": True},
    }


async def test_the_wallboard_shows_live_seat_states_and_listens_in(
    browser: Browser, env: Env
) -> None:
    _, page = await _login(browser, env, "S9001")
    # The page's clock stands still at the server's (fake) time, so the ring count and the talk
    # timer it computes from the frame's timestamps are exact.
    await page.clock.set_fixed_time(env.clock.utcnow())
    await page.goto(env.base + "/supervisor")
    await expect(page.locator("#conn")).to_have_text("live")
    now = env.clock.utcnow().timestamp()
    env.hub.publish_supervisor(
        wallboard_of(
            _wallboard(
                now,
                wallboard_seat(
                    "seat1",
                    "on_call",
                    caller=XSS,
                    talk_started_at=now - 125,
                    cap_at=now + 475,
                    call_id="c-1",
                ),
                wallboard_seat(
                    "seat2", "ringing", ring_started_at=now - 6, ring_deadline_at=now + 9
                ),
                wallboard_seat("seat3", "paused", pause_reason="lunch"),
                wallboard_seat("seat4", "available"),
                waiting=1,
            )
        )
    )
    seat1 = page.locator('.seat-card[data-seat="seat1"]')
    seat2 = page.locator('.seat-card[data-seat="seat2"]')
    await expect(seat1.locator(".seat-status")).to_have_text("Talking")
    await expect(seat1.locator(".seat-caller")).to_have_text("Caller: " + XSS)
    await expect(seat1.locator(".seat-talk")).to_have_text("Talking 2:05 · cap in 7:55")
    await expect(seat2.locator(".seat-ring")).to_have_text("Ring 2 of 3 (6 s)")
    await expect(page.locator('.seat-card[data-seat="seat3"] .seat-reason')).to_have_text(
        "Lunch rotation"
    )
    await expect(page.locator("#kpi-loss_rate")).to_have_text("8.3%")
    await expect(page.locator("#kpi-aht_s")).to_have_text("4:05")
    await expect(page.locator("#desk-mode")).to_have_text("Lunch hours")
    await expect(page.locator("#lunch-duty")).to_contain_text("group A — Seat 1, Seat 3")
    await expect(page.locator("#queues")).to_contain_text("Zhou Jie")
    await expect(seat1.locator("button[data-mode=listen]")).to_be_visible()
    await expect(seat2.locator("button[data-mode=listen]")).to_be_hidden()
    assert await page.locator("#seats img, #seats svg").count() == 0

    # The next frame: seat2 answered, seat1 in wrap-up.
    env.hub.publish_supervisor(
        wallboard_of(
            _wallboard(
                now,
                wallboard_seat("seat1", "wrap_up"),
                wallboard_seat(
                    "seat2", "on_call", caller="Sun Qiang", talk_started_at=now, cap_at=now + 600
                ),
                wallboard_seat("seat3", "paused", pause_reason="rna"),
                wallboard_seat(
                    "seat4", "ringing", ring_started_at=now - 16, ring_deadline_at=now - 1
                ),
            )
        )
    )
    await expect(seat1.locator(".seat-status")).to_have_text("Wrap-up")
    await expect(seat2.locator(".seat-status")).to_have_text("Talking")
    await expect(seat2.locator(".seat-ring")).to_have_text("")
    await expect(seat2.locator(".seat-talk")).to_have_text("Talking 0:00 · cap in 10:00")
    await expect(page.locator("#desk-next")).to_have_text("Desk open at 13:30")
    await expect(page.locator('.seat-card[data-seat="seat4"] .seat-ring')).to_have_text(
        "Past 3 rings"
    )
    await expect(page.locator('.seat-card[data-seat="seat3"] .seat-reason')).to_contain_text(
        "Missed calls"
    )
    env.hub.publish_supervisor(
        AlertFrame(kind="ring_missed", message=XSS, seat="seat2", call_id=None, at=now)
    )
    await expect(page.locator("#alerts li").first).to_contain_text(XSS)

    await seat2.locator("button[data-mode=listen]").click()
    await expect(page.locator("#spy-status")).to_have_text("Your phone rings into Seat 2 (Listen).")
    assert env.spy.calls == [("S9001", "seat2", "listen")]
    await expect(page.locator("#spy-panel")).to_be_visible()
    await page.locator("#spy-panel button[data-spy-mode=whisper]").click()
    await expect(page.locator("#spy-what")).to_contain_text("(Whisper)")
    await page.locator("#spy-stop").click()
    await expect(page.locator("#spy-panel")).to_be_hidden()
    assert env.spy.switches == [("S9001", "spy-1", "whisper")]
    assert env.spy.stops == [("S9001", "spy-1")]

    await page.locator("#theme-toggle").click()
    await expect(page.locator("body")).to_have_class(re.compile(r"\bdark\b"))


async def test_an_agent_opens_an_incident_and_suspends_it(browser: Browser, env: Env) -> None:
    from .conftest import make_incident

    number = "INC-20261123-0042"
    env.workflow.add(make_incident(number, summary=XSS))
    _, page = await _login(browser, env, "E1001")
    await page.goto(env.base + "/incidents")
    await page.click(f'a[href="/incidents/{number}"]')
    await expect(page.locator("#incident-summary")).to_have_text(XSS)
    await expect(page.locator("#incident-status")).to_have_text("In progress")
    # one form for the step the page leads with; the other legal steps are links that swap it
    await page.click("#other-actions a[data-action=suspend]")
    await page.fill(
        "#action-form[data-action=suspend] textarea[name=reason]", "Waiting for a spare part"
    )
    await page.click("#action-form[data-action=suspend] button[type=submit]")
    await expect(page.locator("#incident-status")).to_have_text("Suspended")
    await expect(page.locator("#timeline li")).to_have_count(2)
    await expect(
        page.locator("#action-form[data-action=resume], #other-actions a[data-action=resume]")
    ).to_have_count(1)
    assert env.workflow.applied == [
        (number, "suspend", "E1001", 3, {"reason": "Waiting for a spare part"})
    ]
