"""The incident records' JSON API on the running daemon and the PBX simulator (fake loop time):
attaching a ringing or a talking call to the caller's open incident (and refusing another caller's),
knowledge articles by role and found by a Chinese word, notes, citing, caller edits (audited) and
merges (supervisor only), the incident's timeline and clocks, and the incident reports with CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctid.accounts.users import add_user, make_hasher
from ctid.asterisk.simulator import SimCall
from ctid.core.ids import SeatId
from tests.e2e.harness import Desk
from tests.e2e.test_web_e2e import PASSWORD, browser, web_desk

pytestmark = pytest.mark.looptime(noop_cycles=20_000)

CALLERS = (
    "name,employee_id,department,office_location,phones,vip,email\n"
    "张三丰,E5001,财务部,北京总部 5F,+86 138-0013-8000,否,zsf@example.com\n"
    "李四,E5002,人事部,上海分部 3F,+86 139-0013-9000,否,ls@example.com\n"
    "张三丰(重复),,,,+86 137-0013-7000,否,\n"
)


async def _users(desk: Desk) -> None:
    cheap = make_hasher(time_cost=1, memory_cost_kib=8, parallelism=1)
    # E2001 staffs seat3, an expert seat (tests/e2e/harness.py SEATS)
    await add_user(desk.daemon.sessions, "E2001", "Expert Zhou", "agent", PASSWORD, hasher=cheap)
    await desk.daemon.directory.import_csv(CALLERS, actor="test")


async def _answered_call(desk: Desk, number: str, *, answer_after_s: float = 2) -> SimCall:
    """A call from `number` that seat1 answers; returns once ctid knows its incident."""
    desk.sim.set_phone("seat2", answer_after_s=None)
    desk.sim.set_phone("seat3", answer_after_s=None)
    desk.sim.set_phone("seat4", answer_after_s=None)
    desk.sim.set_phone("seat1", answer_after_s=answer_after_s, talk_s=None)
    desk.sim.set_rr_position("ordinary", 0)
    call = desk.sim.place_call(number, "Caller", digits="1", talk_s=None)
    await desk.wait_for(call.answered.is_set)
    assert call.seat == "seat1"
    tracker = desk.daemon.calls.tracker
    await desk.wait_for(lambda: tracker.seat(SeatId("seat1")).activity == "on_call")
    return call


async def _end(desk: Desk, call: SimCall) -> None:
    call.hangup()
    await desk.wait_for(call.ended.is_set)
    await desk.call_row(call.linkedid)


def _open(desk: Desk) -> list[str]:
    return [r["number"] for r in desk.incidents() if r["status"] not in ("resolved", "closed")]


async def test_attach_a_ringing_and_a_talking_call_to_the_open_incident(tmp_path: Path) -> None:
    async with web_desk(tmp_path) as desk:
        await _users(desk)
        intake = desk.daemon.intake
        first = await _answered_call(desk, "13800138000")
        await desk.wait_for(lambda: first.linkedid in intake.incidents)
        inc_a = intake.incidents[first.linkedid]
        await _end(desk, first)
        other = await _answered_call(desk, "13900139000")
        await desk.wait_for(lambda: other.linkedid in intake.incidents)
        inc_other = intake.incidents[other.linkedid]
        await _end(desk, other)
        assert sorted(_open(desk)) == sorted([inc_a, inc_other])

        async with browser(desk, "E1001") as agent, browser(desk, "O1") as ops:
            # 1. While it rings: attach, so no incident is opened for the call at all.
            desk.sim.set_phone("seat1", answer_after_s=8, talk_s=None)
            ringing = desk.sim.place_call("13800138000", "Caller", digits="1", talk_s=None)
            tracker = desk.daemon.calls.tracker
            await desk.wait_for(lambda: tracker.seat(SeatId("seat1")).activity == "ringing")
            assert not ringing.answered.is_set()
            status, body = await ops.post_json(
                f"/api/calls/{ringing.linkedid}/attach", {"incident": inc_a}
            )
            assert status == 403, body
            status, body = await agent.post_json(
                f"/api/calls/{ringing.linkedid}/attach", {"incident": inc_a}
            )
            assert status == 200, body
            assert body == {
                "call_id": ringing.linkedid,
                "incident": inc_a,
                "withdrawn": None,
                "already": False,
            }
            await desk.wait_for(ringing.answered.is_set)
            await desk.wait_for(lambda: intake.incidents.get(ringing.linkedid) == inc_a)
            # the talking call is now about another caller's incident: refused, in words
            status, body = await agent.post_json(
                f"/api/calls/{ringing.linkedid}/attach", {"incident": inc_other}
            )
            assert status == 400 and "another caller" in body["error"], body
            status, body = await agent.post_json(
                f"/api/calls/{ringing.linkedid}/attach", {"incident": "<script>"}
            )
            assert status == 400 and "incident number" in body["error"]
            await _end(desk, ringing)
            assert sorted(_open(desk)) == sorted([inc_a, inc_other])

            # 2. After the answer: the incident opened for the call is withdrawn into INC-A.
            talking = await _answered_call(desk, "13800138000")
            await desk.wait_for(lambda: talking.linkedid in intake.incidents)
            auto = intake.incidents[talking.linkedid]
            assert auto != inc_a
            status, body = await agent.post_json(
                f"/api/calls/{talking.linkedid}/attach", {"incident": inc_a}
            )
            assert status == 200, body
            assert body["incident"] == inc_a and body["withdrawn"] == auto
            await _end(desk, talking)
            assert sorted(_open(desk)) == sorted([inc_a, inc_other])
            row = desk.rows("SELECT status, flags FROM incidents WHERE number = ?", auto)[0]
            assert row["status"] == "closed" and "merged" in json.loads(row["flags"])
            # a closed incident takes no more calls
            status, body = await agent.post_json(
                f"/api/calls/{talking.linkedid}/attach", {"incident": auto}
            )
            assert status == 409, body

            # INC-A's timeline shows the three calls, the contact count says so
            async with agent.http.get(agent.base + f"/api/incidents/{inc_a}") as resp:
                assert resp.status == 200
                detail = await resp.json()
            calls = {e["detail"].get("call_id") for e in detail["timeline"] if e["kind"] == "call"}
            assert {first.linkedid, ringing.linkedid, talking.linkedid} <= calls


async def _article(who: Any, **kw: Any) -> tuple[int, Any]:
    article = {
        "title": "打印机卡纸的处理",
        "symptoms": "打印机提示卡纸,无法打印",
        "steps": "1. 关闭电源 2. 打开后盖取出纸张 3. 重新开机",
        "category": "hardware",
        "language": "zh",
        "tags": ["打印机"],
        **kw,
    }
    status, body = await who.post_json("/api/kb", article)
    return status, body


async def test_knowledge_notes_cite_callers_and_reports(tmp_path: Path) -> None:
    async with web_desk(tmp_path) as desk:
        await _users(desk)
        intake = desk.daemon.intake
        call = await _answered_call(desk, "13800138000")
        await desk.wait_for(lambda: call.linkedid in intake.incidents)
        number = intake.incidents[call.linkedid]

        async with (
            browser(desk, "E1001") as agent,
            browser(desk, "E2001") as expert,
            browser(desk, "S100") as sup,
            browser(desk, "O1") as ops,
        ):
            # --- knowledge base: who may write
            status, body = await _article(agent)
            assert status == 403 and "expert" in body["error"], body
            status, body = await _article(ops)
            assert status == 403, body
            status, by_expert = await _article(expert)
            assert status == 201, by_expert
            assert by_expert["created_by"] == "E2001" and by_expert["version"] == 1
            status, by_sup = await _article(
                sup,
                title="VPN cannot connect",
                symptoms="VPN client says the certificate expired",
                steps="Renew the certificate from the portal",
                category="network",
                language="en",
                tags=[],
            )
            assert status == 201, by_sup
            status, body = await _article(expert, title="")
            assert status == 400 and "title" in body["error"], body

            async with agent.http.get(agent.base + "/api/kb", params={"q": "卡纸"}) as resp:
                assert resp.status == 200
                found = await resp.json()
            assert [a["id"] for a in found["articles"]] == [by_expert["id"]]
            async with agent.http.get(agent.base + "/api/kb", params={"q": "certificate"}) as r:
                assert [a["id"] for a in (await r.json())["articles"]] == [by_sup["id"]]

            # --- notes: internal and to the caller (mailed)
            status, note = await agent.post_json(
                f"/api/incidents/{number}/notes", {"kind": "internal", "body": "已远程查看日志"}
            )
            assert status == 201, note
            assert note["kind"] == "internal" and note["author"] == "E1001"
            assert note["mailed"] is False
            status, note2 = await agent.post_json(
                f"/api/incidents/{number}/notes", {"kind": "caller", "body": "工程师下午到场"}
            )
            assert status == 201 and note2["mailed"] is True, note2
            status, body = await agent.post_json(
                f"/api/incidents/{number}/notes", {"kind": "gossip", "body": "x"}
            )
            assert status == 400
            status, body = await ops.post_json(
                f"/api/incidents/{number}/notes", {"kind": "internal", "body": "x"}
            )
            assert status == 403
            mails = desk.rows("SELECT to_addr, body_text FROM mail_outbox")
            assert [m["to_addr"] for m in mails if "工程师下午到场" in m["body_text"]] == [
                "zsf@example.com"
            ]

            # --- cite an article
            status, body = await agent.post_json(
                f"/api/incidents/{number}/cite", {"article_id": by_expert["id"]}
            )
            assert status == 200, body
            status, body = await agent.post_json(
                f"/api/incidents/{number}/cite", {"article_id": 9999}
            )
            assert status == 404, body

            # --- the incident: timeline, clocks, next actions
            async with agent.http.get(agent.base + f"/api/incidents/{number}") as resp:
                assert resp.status == 200
                detail = await resp.json()
            kinds = [(e["kind"], e["text"]) for e in detail["timeline"]]
            assert ("note", "已远程查看日志") in [(k, t) for k, t in kinds]
            assert ("note", "工程师下午到场") in [(k, t) for k, t in kinds]
            assert any(k == "call" for k, _ in kinds)
            assert any(e["what"] == "cite_article" for e in detail["timeline"]), kinds
            assert set(detail["clocks"]) == {"response", "resolution"}
            # no priority yet: the resolution clock has no target
            assert detail["clocks"]["resolution"]["budget_s"] is None
            assert detail["next_actions"][0] == "classify"
            assert "close" not in detail["next_actions"]

            # --- callers: edit (audited) and merge (supervisor only)
            ids = {
                r["name"]: r["id"] for r in desk.rows("SELECT id, name FROM callers ORDER BY id")
            }
            zsf, dup = ids["张三丰"], ids["张三丰(重复)"]
            status, body = await agent.post_json(
                f"/api/callers/{zsf}", {"office_location": "北京总部 6F"}
            )
            assert status == 200 and body["office_location"] == "北京总部 6F", body
            audit = desk.rows("SELECT actor, detail FROM audit_log WHERE target LIKE ?", f"%{zsf}%")
            assert any(a["actor"] == "E1001" and "北京总部 6F" in a["detail"] for a in audit)
            status, body = await agent.post_json(f"/api/callers/{zsf}", {})
            assert status == 400
            status, body = await agent.post_json("/api/callers/merge", {"keep": zsf, "drop": dup})
            assert status == 403
            status, body = await sup.post_json("/api/callers/merge", {"keep": zsf, "drop": dup})
            assert status == 200, body
            assert "+8613700137000" in [p.replace(" ", "").replace("-", "") for p in body["phones"]]
            assert not desk.rows("SELECT id FROM callers WHERE id = ?", dup)
            async with agent.http.get(agent.base + f"/api/callers/{zsf}") as resp:
                profile = await resp.json()
            assert profile["open_incidents"] == 1
            assert [i["number"] for i in profile["incidents"]] == [number]
            assert call.linkedid in [c["call_id"] for c in profile["calls"]]

            # --- incident reports: supervisors and ops, CSV with a BOM
            await _end(desk, call)
            day = desk.clock.now().date().isoformat()
            status, page = await agent.get(f"/reports/incidents?from={day}&to={day}")
            assert status == 403
            status, page = await sup.get(f"/reports/incidents?from={day}&to={day}")
            assert status == 200 and 'id="report-types"' in page
            async with ops.http.get(
                ops.base + "/reports/incidents.csv",
                params={"table": "uncovered", "from": day, "to": day},
            ) as resp:
                assert resp.status == 200
                data = await resp.read()
            assert data.startswith(b"\xef\xbb\xbf")
            uncovered = data[3:].decode("utf-8").split()
            # hardware and network have articles now
            assert uncovered[0] == "category" and "hardware" not in uncovered
            assert "software" in uncovered
            async with ops.http.get(
                ops.base + "/reports/incidents.csv", params={"table": "nonsense"}
            ) as resp:
                assert resp.status == 400
