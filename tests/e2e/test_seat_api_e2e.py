"""Seat state over the API, end to end on the simulator: who may see and change which seat,
ready / not-ready with a reason (the PBX sees both pauses), a pause only a supervisor ends, the
wrap-up after a call (extend once, end early) and the log every change leaves."""

from __future__ import annotations

from typing import Any

import pytest

from ctid.core.ids import SeatId
from tests.e2e.harness import Desk
from tests.e2e.test_web_e2e import browser, live_call_on_seat1, web_desk

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
    async with web_desk(tmp_path) as desk, browser(desk, "E1001") as agent:
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
    async with web_desk(tmp_path) as desk:
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
