"""The incident pages and their JSON twins over loopback: list filters, the detail page with the
actions its status and the role allow, form posts with CSRF and `expected_version` (stale → 409),
live-call transfer on hand-to-expert, the callback list with click-to-call, and escaping."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest

from ctid.core.errors import (
    StateConflictError,
)
from ctid.tickets.forms import (
    CallerRow,
)
from ctid.tickets.views import HistoryView
from ctid.tickets.workflow import (
    IncidentQuery,
)

from .conftest import START, Client, Env, make_incident

XSS = '<script>alert("x")</script>'
NUMBER = "INC-20261123-0001"


def _forms(html: str) -> set[str]:
    # The next step's form and the links to the other legal steps (one form shown at a time).
    return set(re.findall(r'data-action="([a-z_]+)"', html))


async def _agent(clients: Callable[[], Client], who: str = "E1001") -> Client:
    c = clients()
    assert (await c.login(who)).status == 303
    return c


async def test_anonymous_users_are_sent_to_login_or_get_401(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(make_incident(NUMBER))
    c = clients()
    for path in ("/incidents", f"/incidents/{NUMBER}", "/callbacks"):
        async with await c.get(path) as resp:
            assert (resp.status, resp.headers.get("Location")) == (303, "/login"), path
    async with await c.get(f"/api/incidents/{NUMBER}") as api:
        assert (api.status, await api.json()) == (401, {"error": "not logged in"})
    posted = await c.post_form(f"/incidents/{NUMBER}/actions", {"action": "suspend"})
    assert posted.status == 401
    assert env.workflow.applied == []


async def test_the_list_passes_filters_to_the_port_and_escapes_rows(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(make_incident(NUMBER, summary=XSS, caller_name=XSS))
    c = await _agent(clients)
    async with await c.get("/incidents") as page:
        html = await page.text()
    assert page.status == 200
    assert f'href="/incidents/{NUMBER}"' in html
    assert XSS not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    async with await c.get("/incidents?mine=1&status=suspended&group=network") as page:
        assert page.status == 200
    async with await c.get("/incidents?seat=seat3") as page:
        assert page.status == 200
    assert env.workflow.queries == [
        IncidentQuery(),
        IncidentQuery(seat="seat1", group="network", statuses=("suspended",)),
        IncidentQuery(seat="seat3"),
    ]
    for bad in ("seat=seat9", "status=lost", "group=nobody"):
        async with await c.get("/incidents?" + bad) as page:
            assert page.status == 400, bad
    # Someone without a seat: "mine" means owned by their employee ID.
    sup = await _agent(clients, "S9001")
    async with await sup.get("/api/incidents?mine=1") as api:
        data = await api.json()
    assert [i["number"] for i in data["incidents"]] == [NUMBER]
    assert data["incidents"][0]["summary"] == XSS
    assert env.workflow.queries[-1] == IncidentQuery(employee="S9001")
    assert (data["prev"], data["next"]) == (None, None)


async def test_the_list_pages_keep_the_filters_in_their_links(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(make_incident(NUMBER))
    c = await _agent(clients)
    async with await c.get("/incidents?status=new") as page:
        html = await page.text()
    # The newest page with nothing older: no pager at all.
    assert page.status == 200 and 'class="pager"' not in html
    env.workflow.newer, env.workflow.older = "INC-20261123-0009", "INC-20261123-0002"
    async with await c.get("/incidents?status=new&group=network&before=INC-20261123-0010") as page:
        html = await page.text()
    assert page.status == 200
    assert env.workflow.queries[-1] == IncidentQuery(
        group="network", statuses=("new",), before="INC-20261123-0010"
    )
    assert 'href="/incidents?group=network&amp;status=new"' in html  # newest
    assert 'href="/incidents?group=network&amp;status=new&amp;after=INC-20261123-0009"' in html
    assert 'href="/incidents?group=network&amp;status=new&amp;before=INC-20261123-0002"' in html
    async with await c.get("/api/incidents?mine=1&after=INC-20261123-0001") as api:
        data = await api.json()
    assert env.workflow.queries[-1] == IncidentQuery(seat="seat1", after="INC-20261123-0001")
    assert data["newer"] == "INC-20261123-0009" and data["older"] == "INC-20261123-0002"
    assert data["prev"] == "/api/incidents?mine=1&seat=seat1&after=INC-20261123-0009"
    assert data["next"] == "/api/incidents?mine=1&seat=seat1&before=INC-20261123-0002"
    for bad in ("before=a%20b", "after=%3Cx%3E", "before=INC-1&after=INC-2"):
        async with await c.get("/api/incidents?" + bad) as api:
            assert api.status == 400, bad


async def test_the_detail_page_shows_history_and_the_actions_the_role_may_take(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(
        make_incident(
            NUMBER,
            status="dispatched",
            owner_group="network",
            summary=XSS,
            description=XSS + "\nsecond line",
            caller=CallerRow(caller_id=7, name=XSS, department=XSS, office="HQ & 12F"),
            caller_name=None,
            history=(
                HistoryView(
                    at=START - timedelta(hours=1),
                    actor=XSS,
                    action="dispatch",
                    from_status="in_progress",
                    to_status="dispatched",
                    detail={"note": XSS},
                ),
            ),
        )
    )
    agent = await _agent(clients)
    async with await agent.get(f"/incidents/{NUMBER}") as page:
        html = await page.text()
    assert page.status == 200
    assert XSS not in html
    assert html.count("&lt;script&gt;") >= 5  # summary, description, caller, department, history
    assert "HQ &amp; 12F" in html
    assert 'name="expected_version" value="3"' in html
    # dispatched: the lifecycle allows accept/reject/dispatch/escalate/classify/prioritize;
    # agents leave accept/reject to second line; flags and ratings are never staff's.
    assert _forms(html) == {"dispatch", "escalate", "classify", "prioritize"}
    sup = await _agent(clients, "S9001")
    async with await sup.get(f"/incidents/{NUMBER}") as page:
        assert {"accept", "reject"} <= _forms(await page.text())
    ops = await _agent(clients, "O7001")
    async with await ops.get(f"/incidents/{NUMBER}") as page:
        html = await page.text()
    assert page.status == 200 and _forms(html) == set()
    async with await agent.get(f"/api/incidents/{NUMBER}") as api:
        data = await api.json()
    assert data["summary"] == XSS and data["version"] == 3
    assert {a["action"] for a in data["actions"]} == {
        "dispatch",
        "escalate",
        "classify",
        "prioritize",
        "flag",
    }
    assert data["history"][0]["detail"] == {"note": XSS}
    async with await agent.get("/incidents/INC-NOPE") as missing:
        assert missing.status == 404
    async with await agent.get("/incidents/%3Cx%3E") as bad:
        assert bad.status == 404


async def test_a_form_action_applies_with_the_version_and_redirects(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(make_incident(NUMBER))
    c = await _agent(clients)
    resp = await c.post_form(
        f"/incidents/{NUMBER}/actions",
        {"action": "suspend", "expected_version": "3", "reason": "Waiting for a spare part"},
    )
    assert resp.status == 303
    assert resp.headers["Location"] == f"/incidents/{NUMBER}?done=suspend"
    assert env.workflow.applied == [
        (NUMBER, "suspend", "E1001", 3, {"reason": "Waiting for a spare part"})
    ]
    async with await c.get(resp.headers["Location"]) as page:
        html = await page.text()
    assert 'role="status"' in html  # "Done: …" in the page's language
    assert 'class="badge st-suspended" id="incident-status"' in html
    assert 'name="expected_version" value="4"' in html
    # In Chinese the whole page is Chinese, the menu and the log-out link too.
    async with await c.get(resp.headers["Location"], headers={"Accept-Language": "zh-CN"}) as page:
        zh = await page.text()
    assert "退出登录" in zh and ">事件单</a>" in zh and ">Log out<" not in zh


async def test_a_stale_page_gets_409_with_the_incident_as_it_is_now(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(make_incident(NUMBER))
    first, second = await _agent(clients), await _agent(clients, "E1002")
    ok = await first.post_form(
        f"/incidents/{NUMBER}/actions",
        {"action": "suspend", "expected_version": "3", "reason": "spare part"},
    )
    assert ok.status == 303
    stale = await second.post_form(
        f"/incidents/{NUMBER}/actions",
        {"action": "resolve", "expected_version": "3", "resolution": "rebooted"},
    )
    assert stale.status == 409
    html = await stale.text()
    assert "was changed by E1001 (suspend) since you opened it" in html
    assert 'class="badge st-suspended" id="incident-status"' in html  # the fresh state
    assert "rebooted" in html  # what was typed is kept
    assert 'name="expected_version" value="4"' in html
    assert [a[1] for a in env.workflow.applied] == ["suspend"]
    api = await second.post_json(
        f"/api/incidents/{NUMBER}/actions",
        {"action": "resume", "expected_version": 3},
    )
    assert api.status == 409 and "changed by E1001" in (await api.json())["error"]


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"action": "suspend", "expected_version": "3"}, 400, "This is required."),
        ({"action": "suspend", "expected_version": "x", "reason": "r"}, 400, "expected_version"),
        ({"action": "fly", "expected_version": "3"}, 400, "unknown action"),
        ({"action": "reassign", "expected_version": "3", "seat": "seat9"}, 400, "from the list"),
        ({"action": "dispatch", "expected_version": "3", "group": "<b>"}, 400, "from the list"),
        ({"action": "suspend", "expected_version": "3", "reason": "boom"}, 400, "must not be"),
        ({"action": "close", "expected_version": "3"}, 409, "cannot close"),
    ],
)
async def test_refused_form_actions_show_the_reason_on_the_page(
    env: Env, clients: Callable[[], Client], fields: dict[str, str], status: int, message: str
) -> None:
    env.workflow.add(make_incident(NUMBER))
    c = await _agent(clients)
    resp = await c.post_form(f"/incidents/{NUMBER}/actions", fields)
    assert resp.status == status
    html = await resp.text()
    assert message in html and 'id="action-error"' in html
    assert env.workflow.applied == []


async def test_every_problem_of_a_form_at_once_next_to_its_field_in_words(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(make_incident(NUMBER))
    c = await _agent(clients)
    sent = {
        "action": "dispatch",
        "expected_version": "3",
        "group": "",
        "assignee_email": "not-an-address",
        "note": "Keep this note",
    }
    resp = await c.post_form(f"/incidents/{NUMBER}/actions", sent)
    assert resp.status == 400
    html = await resp.text()
    # The refused form is the one shown again, with what was typed, and each problem at its field.
    assert 'id="action-form" data-action="dispatch"' in html
    assert '<span class="field-error" data-field="group">This is required.</span>' in html
    assert (
        '<span class="field-error" data-field="assignee_email">'
        "This is not an e-mail address.</span>"
    ) in html
    assert ">Keep this note</textarea>" in html and 'value="not-an-address"' in html
    zh = await c.post_form(
        f"/incidents/{NUMBER}/actions", sent, headers={"Accept-Language": "zh-CN"}
    )
    assert "此项为必填。" in await zh.text()
    api = await c.post_json(
        f"/api/incidents/{NUMBER}/actions",
        {"action": "dispatch", "expected_version": 3, "args": {"assignee_email": "x"}},
    )
    assert (await api.json())["fields"] == {
        "group": "This is required.",
        "assignee_email": "This is not an e-mail address.",
    }
    assert env.workflow.applied == []


async def test_every_incident_write_needs_csrf_and_our_origin(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(make_incident(NUMBER))
    c = await _agent(clients)
    fields = {"action": "suspend", "expected_version": "3", "reason": "r"}
    assert (await c.post_form(f"/incidents/{NUMBER}/actions", fields, csrf="")).status == 403
    assert (await c.post_form(f"/incidents/{NUMBER}/actions", fields, csrf="x" * 43)).status == 403
    foreign = await c.post_form(
        f"/incidents/{NUMBER}/actions", fields, origin="http://evil.example"
    )
    assert foreign.status == 403
    body = {"action": "suspend", "expected_version": 3, "args": {"reason": "r"}}
    assert (await c.post_json(f"/api/incidents/{NUMBER}/actions", body, csrf="")).status == 403
    assert env.workflow.applied == []


async def test_the_json_action_api_and_its_role_checks(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(make_incident(NUMBER, status="dispatched", owner_group="network"))
    agent = await _agent(clients)
    refused = await agent.post_json(
        f"/api/incidents/{NUMBER}/actions", {"action": "accept", "expected_version": 3}
    )
    assert refused.status == 403
    ops = await _agent(clients, "O7001")
    refused = await ops.post_json(
        f"/api/incidents/{NUMBER}/actions",
        {"action": "escalate", "expected_version": 3, "args": {"reason": "x"}},
    )
    assert refused.status == 403
    sup = await _agent(clients, "S9001")
    ok = await sup.post_json(
        f"/api/incidents/{NUMBER}/actions", {"action": "accept", "expected_version": 3}
    )
    assert ok.status == 200
    assert await ok.json() == {
        "number": NUMBER,
        "status": "accepted",
        "version": 4,
        "transfer_seat": None,
        "mails": 0,
        "warning": None,
    }
    bad = await sup.post_json(
        f"/api/incidents/{NUMBER}/actions",
        {"action": "rate", "expected_version": 4, "args": {"score": 9}},
    )
    assert bad.status == 400
    assert await bad.json() == {
        "error": "Some fields need attention.",
        "fields": {"score": "Choose one from the list."},
    }
    assert env.workflow.applied == [(NUMBER, "accept", "S9001", 3, {})]


async def test_hand_to_expert_on_a_live_call_transfers_it_keeping_the_call_id(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.workflow.add(make_incident(NUMBER, live_call_id="1795000000.42"))
    c = await _agent(clients)
    async with await c.get(f"/incidents/{NUMBER}?act=hand_to_expert") as page:
        html = await page.text()
    assert 'name="call_id" value="1795000000.42"' in html
    # Only expert seats are offered.
    hand = html[html.index('data-action="hand_to_expert"') :]
    assert 'value="seat3"' in hand and 'value="seat1"' not in hand.split("</form>")[0]
    resp = await c.post_form(
        f"/incidents/{NUMBER}/actions",
        {
            "action": "hand_to_expert",
            "expected_version": "3",
            "seat": "seat3",
            "call_live": "true",
            "call_id": "1795000000.42",
        },
    )
    assert resp.status == 303
    assert env.calls.transfers == [("E1001", "1795000000.42", "seat3")]
    assert env.workflow.applied[0][4] == {"seat": "seat3", "call_live": "true"}
    # The PBX refuses: the incident moved, the page says the call did not.
    env.workflow.add(make_incident("INC-20261123-0002", live_call_id="c-2"))
    env.calls.fail = StateConflictError("call c-2 has ended")
    resp = await c.post_json(
        "/api/incidents/INC-20261123-0002/actions",
        {
            "action": "hand_to_expert",
            "expected_version": 3,
            "args": {"seat": "seat4", "call_live": True},
            "call_id": "c-2",
        },
    )
    assert resp.status == 200
    data = await resp.json()
    assert data["status"] == "handed_to_expert"
    assert "not transferred: call c-2 has ended" in data["warning"]
    missing = await c.post_json(
        f"/api/incidents/{NUMBER}/actions",
        {"action": "hand_to_expert", "expected_version": 4, "args": {"call_live": True}},
    )
    assert missing.status == 400


# ------------------------------------------------------------------------------ callbacks


async def test_the_callback_list_calls_back_and_records_the_outcome(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.callbacks.add(1, "+8613800138000", "abandoned", caller_name=XSS)
    env.callbacks.add(2, "+8613900139000", "after_hours")
    c = await _agent(clients)
    async with await c.get("/callbacks") as page:
        html = await page.text()
    assert page.status == 200
    assert "Hung up while waiting" in html and "Called after hours" in html
    assert XSS not in html and "&lt;script&gt;" in html
    called = await c.post_form("/callbacks/1/call", {})
    assert (called.status, called.headers["Location"]) == (303, "/callbacks?calling=1")
    assert env.calls.dials == [("E1001", "+8613800138000")]
    assert env.callbacks.rows[1].status == "in_progress"
    async with await c.get("/callbacks?calling=1") as page:
        html = await page.text()
    assert "Your phone rings" in html and 'action="/callbacks/1/finish"' in html
    # Someone else cannot start the same callback.
    other = await _agent(clients, "E1002")
    taken = await other.post_form("/callbacks/1/call", {})
    assert taken.status == 409 and "being worked by E1001" in await taken.text()
    bad = await c.post_form("/callbacks/1/finish", {"outcome": "teleported"})
    assert bad.status == 400
    done = await c.post_form(
        "/callbacks/1/finish", {"outcome": "reached", "incident_number": NUMBER}
    )
    assert (done.status, done.headers["Location"]) == (303, "/callbacks?done=1")
    assert env.callbacks.finished == [(1, "reached", "E1001", NUMBER)]


async def test_a_failed_click_to_call_leaves_the_callback_started_and_says_so(
    env: Env, clients: Callable[[], Client]
) -> None:
    env.callbacks.add(5, "+8613800138000")
    env.calls.fail = StateConflictError("the AMI link is down")
    c = await _agent(clients)
    resp = await c.post_form("/callbacks/5/call", {})
    assert resp.status == 200
    html = await resp.text()
    assert "could not be rung (the AMI link is down)" in html and "+8613800138000" in html
    assert env.callbacks.rows[5].status == "in_progress"


async def test_callbacks_need_csrf_and_a_desk_role(env: Env, clients: Callable[[], Client]) -> None:
    env.callbacks.add(1, "+8613800138000")
    c = await _agent(clients)
    assert (await c.post_form("/callbacks/1/call", {}, csrf="")).status == 403
    assert (await c.post_form("/callbacks/1/finish", {"outcome": "reached"}, csrf="")).status == 403
    ops = await _agent(clients, "O7001")
    async with await ops.get("/callbacks") as page:
        assert page.status == 403
    assert (await ops.post_form("/callbacks/1/call", {})).status == 403
    assert env.calls.dials == [] and env.callbacks.rows[1].status == "open"
