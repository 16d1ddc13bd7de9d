"""Seat state over the API, end to end on the simulator: who may see and change which seat,
ready / not-ready with a reason (the PBX sees both pauses), a pause only a supervisor ends, the
wrap-up after a call (extend once, end early) and the log every change leaves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ctid.accounts.users import add_user, make_hasher
from ctid.core.ids import SeatId
from tests.e2e.harness import Desk, running_desk
from tests.e2e.test_web_e2e import PASSWORD, browser, live_call_on_seat1, web_desk


@asynccontextmanager
async def wrapup_desk(tmp_path: Any) -> AsyncIterator[Desk]:
    """The desk with a 30 s wrap-up after each call and seat1's agent E1001."""
    async with running_desk(
        tmp_path, desk={"wrapup_s": {"ordinary": 30, "expert": 30}, "wrapup_extend_s": 30}
    ) as desk:
        cheap = make_hasher(time_cost=1, memory_cost_kib=8, parallelism=1)
        await add_user(desk.daemon.sessions, "E1001", "Li Lei", "agent", PASSWORD, hasher=cheap)
        yield desk


pytestmark = pytest.mark.looptime(noop_cycles=20_000)


def _state(desk: Desk, seat: str) -> Any:
    return desk.daemon.seat_desk.view(seat)


async def test_seats_read_by_role(tmp_path: Any) -> None:
    async with web_desk(tmp_path) as desk:
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "ready")
        async with browser(desk, "S100") as sup:
            async with sup.http.get(sup.base + "/api/seats") as resp:
                assert resp.status == 200
                seats = await resp.json()
            assert [s["seat"] for s in seats] == ["seat1", "seat2", "seat3", "seat4"]
            one = seats[0]
            assert one["state"] == "ready" and one["reason"] is None
            assert one["agent"] == {"employee_id": "E1001", "name": "Li Lei"}
            assert one["tier"] == "ordinary" and one["since"].endswith("Z")
            assert one["today"] == {"answered": 0, "missed": 0, "avg_talk_s": 0}
            assert isinstance(one["in_state_s"], int)
        async with browser(desk, "E1001") as agent:
            async with agent.http.get(agent.base + "/api/seats") as resp:
                mine = await resp.json()
            assert [s["seat"] for s in mine] == ["seat1"]
        async with browser(desk, "O1") as ops:
            async with ops.http.get(ops.base + "/api/seats") as resp:
                assert len(await resp.json()) == 4
            status, body = await ops.post_json("/api/seats/seat1/state", {"state": "ready"})
            assert status == 403 and "error" in body


async def test_agent_not_ready_and_back_the_pbx_follows(tmp_path: Any) -> None:
    async with web_desk(tmp_path) as desk, browser(desk, "E1001") as agent:
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "ready")
        status, body = await agent.post_json(
            "/api/seats/seat1/state", {"state": "paused", "reason": "meal"}
        )
        assert status == 200, body
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "paused")
        assert _state(desk, "seat1").reason == "meal"
        status, body = await agent.post_json("/api/seats/seat1/state", {"state": "ready"})
        assert status == 200, body
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "ready")
        pauses = [
            (a["Interface"], a["Paused"], a.get("Reason"))
            for a in desk.actions("QueuePause")
            if a["Interface"] == "PJSIP/seat1"
        ]
        assert ("PJSIP/seat1", "true", "meal") in pauses
        assert pauses[-1][:2] == ("PJSIP/seat1", "false")
        members = [m for q in desk.sim.config.queues for m in desk.sim.queue_members(q.name)]
        assert not any(m.interface == "PJSIP/seat1" and m.paused for m in members)

        # refusals, in words
        for path, body_, want in (
            ("/api/seats/seat2/state", {"state": "paused", "reason": "meal"}, 403),
            ("/api/seats/seat1/state", {"state": "paused", "reason": "rna"}, 400),
            ("/api/seats/seat1/state", {"state": "paused", "reason": "nap"}, 400),
            ("/api/seats/seat1/state", {"state": "asleep"}, 400),
            ("/api/seats/seat9/state", {"state": "ready"}, 404),
            ("/api/seats/seat1/wrapup", {"action": "end"}, 409),
            ("/api/seats/seat1/wrapup", {"action": "later"}, 400),
        ):
            status, body = await agent.post_json(path, body_)
            assert status == want, (path, body_, body)
            assert isinstance(body["error"], str) and body["error"]

        await desk.wait_rows("SELECT id FROM seat_states WHERE state = 'ready' AND by = 'E1001'")
        rows = desk.rows("SELECT state, reason, by FROM seat_states WHERE seat_id = 'seat1'")
        got = [(r["state"], r["reason"], r["by"]) for r in rows]
        assert ("paused", "meal", "E1001") in got
        assert got[-1] == ("ready", None, "E1001")
        audit = desk.rows("SELECT actor, detail FROM audit_log WHERE action = 'seat_state'")
        assert any(r["actor"] == "E1001" for r in audit)


async def test_missed_calls_pause_only_the_supervisor_ends(tmp_path: Any) -> None:
    async with web_desk(tmp_path) as desk:
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "ready")
        await desk.daemon.pbx.queue_pause("PJSIP/seat1", True, "rna")
        await desk.wait_for(lambda: _state(desk, "seat1").reason == "rna")
        async with browser(desk, "E1001") as agent:
            status, body = await agent.post_json("/api/seats/seat1/state", {"state": "ready"})
            assert status == 409 and "shift leader" in body["error"]
        async with browser(desk, "S100") as sup:
            async with sup.http.get(sup.base + "/api/seats") as resp:
                seat1 = (await resp.json())[0]
            assert seat1["state"] == "paused" and seat1["reason"] == "rna"
            assert seat1["reason_words"]
            status, body = await sup.post_json("/api/seats/seat1/state", {"state": "ready"})
            assert status == 200, body
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "ready")
        rows = await desk.wait_rows(
            "SELECT by, reason FROM seat_states WHERE seat_id = 'seat1' AND state = 'ready'"
            " AND by = 'S100'"
        )
        assert rows[0]["reason"] is None
        [rna] = desk.rows("SELECT by FROM seat_states WHERE reason = 'rna'")
        assert rna["by"] == "ctid"


async def test_wrapup_after_a_call_extend_once_then_end(tmp_path: Any) -> None:
    async with wrapup_desk(tmp_path) as desk, browser(desk, "E1001") as agent:
        call = await live_call_on_seat1(desk)
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "talking")
        call.hangup()
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "wrapup")
        await desk.wait_for(
            lambda: desk.daemon.calls.tracker.seat(SeatId("seat1")).pause_reason == "wrapup"
        )
        view = _state(desk, "seat1")
        assert view.wrapup_ends_at is not None and view.today.answered == 1
        status, body = await agent.post_json("/api/seats/seat1/wrapup", {"action": "extend"})
        assert status == 200, body
        assert body["wrapup_ends_at"] and body["wrapup_extended"] is True
        status, body = await agent.post_json("/api/seats/seat1/wrapup", {"action": "extend"})
        assert status == 409 and "once" in body["error"]
        status, body = await agent.post_json("/api/seats/seat1/wrapup", {"action": "end"})
        assert status == 200, body
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "ready")
        unpause = [a for a in desk.actions("QueuePause") if a["Interface"] == "PJSIP/seat1"]
        assert [(a["Paused"], a.get("Reason")) for a in unpause][-2:] == [
            ("true", "wrapup"),
            ("false", "wrapup"),
        ]


async def test_wrapup_ends_by_itself(tmp_path: Any) -> None:
    async with wrapup_desk(tmp_path) as desk:
        call = await live_call_on_seat1(desk)
        call.hangup()
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "wrapup")
        await desk.wait_for(lambda: _state(desk, "seat1").state.value == "ready")
        await desk.wait_rows("SELECT id FROM seat_states WHERE state = 'wrapup'")
        rows = await desk.wait_for(
            lambda: (
                (
                    r := desk.rows(
                        "SELECT state FROM seat_states WHERE seat_id = 'seat1' ORDER BY id"
                    )
                )
                and r[-1]["state"] == "ready"
                and r
            )
        )
        states = [r["state"] for r in rows]
        assert states[-3:] == ["talking", "wrapup", "ready"]


async def test_call_control_from_the_api(tmp_path: Any) -> None:
    async with web_desk(tmp_path) as desk:
        call = await live_call_on_seat1(desk)
        cid = call.linkedid
        async with browser(desk, "O1") as ops:
            status, body = await ops.post_json(f"/api/calls/{cid}/hangup", {})
            assert status == 403, body
        async with browser(desk, "E1001") as agent:
            for path, data, want in (
                ("/api/calls/nope.1/hangup", {}, 409),
                (f"/api/calls/{cid}/transfer", {"to": "nowhere"}, 400),
                (f"/api/calls/{cid}/transfer", {"to": "seat", "seat": "seat9"}, 400),
                (f"/api/calls/{cid}/transfer", {"to": "seat", "seat": "seat1"}, 400),
            ):
                status, body = await agent.post_json(path, data)
                assert status == want, (path, data, body)
                assert body["error"]
            # a paused seat cannot take a transfer: refused in words, the call stays
            await desk.daemon.pbx.queue_pause("PJSIP/seat2", True, "meal")
            await desk.wait_for(lambda: desk.daemon.calls.tracker.seat(SeatId("seat2")).paused)
            status, body = await agent.post_json(
                f"/api/calls/{cid}/transfer", {"to": "seat", "seat": "seat2"}
            )
            assert status == 409 and "seat2" in body["error"], body
            assert desk.actions("Redirect") == []
            status, body = await agent.post_json(f"/api/calls/{cid}/hangup", {})
            assert status == 200 and body["hung_up"] is True, body
            await desk.wait_for(call.ended.is_set)
            status, body = await agent.post_json(f"/api/calls/{cid}/hangup", {})
            assert status == 409, body


async def test_drafts_are_per_call_and_per_seat(tmp_path: Any) -> None:
    async with web_desk(tmp_path) as desk:
        async with browser(desk, "E1001") as agent:
            fields = {"summary": "VPN drops", "caller_name": "张三"}
            async with agent.http.put(
                agent.base + "/api/desk/drafts/call-1",
                json={"seat": "seat1", "fields": fields},
                headers={"Origin": agent.base, "X-CSRF-Token": agent.csrf},
            ) as resp:
                assert resp.status == 200, await resp.text()
            async with agent.http.put(
                agent.base + "/api/desk/drafts/call-2",
                json={"seat": "seat2", "fields": fields},
                headers={"Origin": agent.base, "X-CSRF-Token": agent.csrf},
            ) as resp:
                assert resp.status == 403
            async with agent.http.put(
                agent.base + "/api/desk/drafts/call-3",
                json={"seat": "seat1", "fields": {"summary": ["x"]}},
                headers={"Origin": agent.base, "X-CSRF-Token": agent.csrf},
            ) as resp:
                assert resp.status == 400
            async with agent.http.get(agent.base + "/api/desk/drafts") as resp:
                drafts = await resp.json()
            assert [(d["call_id"], d["fields"], d["saved"]) for d in drafts] == [
                ("call-1", fields, False)
            ]
        async with browser(desk, "S100") as sup:
            async with sup.http.get(sup.base + "/api/desk/drafts?seat=seat1") as resp:
                assert [d["call_id"] for d in await resp.json()] == ["call-1"]
            async with sup.http.delete(
                sup.base + "/api/desk/drafts/call-1?seat=seat1",
                headers={"Origin": sup.base, "X-CSRF-Token": sup.csrf},
            ) as resp:
                assert resp.status == 200
            async with sup.http.get(sup.base + "/api/desk/drafts?seat=seat1") as resp:
                assert await resp.json() == []


async def test_take_the_next_callback(tmp_path: Any) -> None:
    async with web_desk(tmp_path) as desk, browser(desk, "E1001") as agent:
        status, body = await agent.post_json("/api/callbacks/next", {})
        assert status == 409 and "no callback" in body["error"]
        for seat in ("seat1", "seat2"):
            desk.sim.set_phone(seat, answer_after_s=None)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="1", hangup_after_s=10)
        await desk.wait_for(call.ended.is_set)
        [callback] = await desk.wait_for_callbacks()
        status, body = await agent.post_json("/api/callbacks/next", {})
        assert status == 201, body
        assert body["callback_id"] == callback["id"] and "13800138000" in body["number"]
        [row] = desk.rows("SELECT status, worked_by FROM callbacks")
        assert (row["status"], row["worked_by"]) == ("in_progress", "E1001")
        status, body = await agent.post_json("/api/callbacks/next", {})
        assert status == 409
