"""The call facts ctid stores, end to end on the PBX simulator (which reproduces the Asterisk 22
PJSIP recordings): a transfer to the expert queue, the IVR's category, callbacks that keep every
reason and close when the caller gets through. Fake loop time."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pytest

from ctid.core.ids import CallId, SeatId
from ctid.reports.kpi import compute
from tests.e2e.harness import running_desk

pytestmark = pytest.mark.looptime(noop_cycles=20_000)

S1, S3 = SeatId("seat1"), SeatId("seat3")


async def test_transfer_to_the_expert_records_each_seats_leg_and_credits_the_expert(
    tmp_path: Path,
) -> None:
    async with running_desk(tmp_path) as desk:
        sim = desk.sim
        sim.set_phone("seat2", answer_after_s=None)
        sim.set_phone("seat4", answer_after_s=None)
        sim.set_phone("seat1", answer_after_s=2, talk_s=None)
        sim.set_phone("seat3", answer_after_s=3, talk_s=None)
        sim.set_rr_position("ordinary", 0)
        sim.set_rr_position("expert", 0)
        call = sim.place_call("13800138000", "Zhang San", digits="1", talk_s=None)
        await desk.wait_for(call.answered.is_set)
        cid = CallId(call.linkedid)
        tracker = desk.daemon.calls.tracker
        await desk.wait_for(lambda: tracker.seat(S1).activity == "on_call")
        await desk.wait_for(lambda: cid in desk.daemon.intake.incidents)
        live = tracker.call(cid)
        assert live is not None and live.answered_at is not None
        first_answer = live.answered_at
        # seat1 talks a while, then hands the caller to the expert queue (a Redirect).
        await asyncio.sleep(20)  # a step of the scenario: 20 s of conversation
        await desk.daemon.calls.transfer_to_queue(cid, "expert", S1)

        # seat1's own leg hangs up at once: its desktop leaves "talking" while the call goes on.
        def seat1_wrapped_up() -> bool:
            snap = desk.daemon.hub.snapshot("seat1")
            return snap is not None and snap.state == "wrapup"

        await desk.wait_for(seat1_wrapped_up)
        assert not call.ended.is_set()
        assert tracker.seat(S1).activity == "idle"
        await desk.wait_for(lambda: tracker.seat(S3).activity == "on_call")
        snap3 = desk.daemon.hub.snapshot("seat3")
        assert snap3 is not None and snap3.state == "talking" and snap3.call_id == cid
        assert snap3.talk is not None
        # the caller's 10 minutes count from seat1's answer, on the expert's screen too
        assert snap3.talk.cap_at == pytest.approx(first_answer + 600, abs=0.01)
        assert snap3.talk.started_at > first_answer + 20
        await asyncio.sleep(30)  # the expert talks 30 s
        call.hangup()
        await desk.wait_for(call.ended.is_set)

        row = await desk.call_row(cid)
        assert (row["outcome"], row["answered_by_seat"], row["transferred_to"]) == (
            "answered",
            "seat1",
            "seat3",
        )
        attempts = [a for a in desk.attempts(cid) if a["outcome"] == "answered"]
        assert [a["seat_id"] for a in attempts] == ["seat1", "seat3"]
        first, expert = attempts
        assert first["talk_s"] == pytest.approx(20, abs=1.0)
        assert expert["talk_s"] == pytest.approx(30, abs=1.0)
        assert row["talk_s"] == pytest.approx(first["talk_s"] + expert["talk_s"] + 3, abs=1.5)
        # one incident for the call, however many seats took it
        assert len(desk.incidents()) == 1

        day = date(2026, 11, 23)
        report = await compute(desk.daemon.sessions, desk.cfg, day, day, "seat")
        rows = {r.key: r for r in report.rows}
        assert (rows["seat1"].answered_all, rows["seat3"].answered_all) == (1, 1)
        assert rows["seat1"].aht_s == pytest.approx(first["talk_s"], abs=0.01)
        assert rows["seat3"].aht_s == pytest.approx(expert["talk_s"], abs=0.01)
        assert report.total.answered_all == 1
        assert report.total.aht_s == pytest.approx(row["talk_s"], abs=0.01)


async def test_the_ivr_category_is_stored_on_the_call_and_the_incident(tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        desk.sim.set_phone("seat1", answer_after_s=2, talk_s=5)
        desk.sim.set_phone("seat2", answer_after_s=2, talk_s=5)
        call = desk.sim.place_call("13800138000", "Zhang San", digits="1")
        await desk.wait_for(call.ended.is_set)
        assert call.ivr_vars.get("CTID_CATEGORY") == "consultation"
        row = await desk.call_row(call.linkedid)
        assert row["category"] == "consultation"
        (incident,) = desk.incidents()
        assert incident["request_type"] == "consultation"
        (created,) = desk.rows(
            "SELECT detail FROM incident_history WHERE incident_id = ? AND action = 'create'",
            incident["id"],
        )
        assert json.loads(created["detail"])["ivr_category"] == "consultation"


async def test_a_callback_keeps_every_reason_and_closes_when_the_caller_gets_through(
    tmp_path: Path,
) -> None:
    async with running_desk(tmp_path, talk_cap={"talk_cap_s": 60, "warn_at_s": [50]}) as desk:
        sim = desk.sim
        # 1. answered and capped by ctid: a callback with reason "capped"
        sim.set_phone("seat1", answer_after_s=2, talk_s=None)
        sim.set_phone("seat2", answer_after_s=2, talk_s=None)
        capped = sim.place_call("13800138000", "Zhang San", digits="1", talk_s=None)
        await desk.wait_for(capped.ended.is_set)
        assert (await desk.call_row(capped.linkedid))["capped"] == 1
        (callback,) = await desk.wait_for_callbacks()
        assert (callback["reason"], callback["status"]) == ("capped", "open")

        # 2. the same number abandons in the queue: the same callback, both reasons kept
        sim.set_phone("seat1", answer_after_s=None)
        sim.set_phone("seat2", answer_after_s=None)
        abandoned = sim.place_call("13800138000", "Zhang San", digits="1", hangup_after_s=12)
        await desk.wait_for(abandoned.ended.is_set)
        await desk.wait_for(
            lambda: (
                len(
                    desk.rows("SELECT id FROM callback_calls WHERE callback_id = ?", callback["id"])
                )
                == 2
            )
        )
        links = desk.rows(
            "SELECT reason, call_id FROM callback_calls WHERE callback_id = ? ORDER BY id",
            callback["id"],
        )
        assert [(r["reason"], r["call_id"]) for r in links] == [
            ("capped", capped.linkedid),
            ("abandoned", abandoned.linkedid),
        ]
        assert len(desk.rows("SELECT id FROM callbacks")) == 1
        reasons = await desk.daemon.callbacks.callback_reasons(callback["id"])
        assert reasons == [("capped", capped.linkedid), ("abandoned", abandoned.linkedid)]

        # 3. the caller gets through on a later call: the callback closes by itself, audited
        sim.set_phone("seat1", answer_after_s=2, talk_s=5)
        sim.set_phone("seat2", answer_after_s=2, talk_s=5)
        through = sim.place_call("13800138000", "Zhang San", digits="1")
        await desk.wait_for(through.ended.is_set)
        await desk.call_row(through.linkedid)

        def closed() -> bool:
            (cb,) = desk.rows("SELECT status, outcome FROM callbacks")
            return (cb["status"], cb["outcome"]) == ("done", "caller_got_through")

        await desk.wait_for(closed)
        (audit,) = desk.rows(
            "SELECT actor, target, detail FROM audit_log WHERE action = 'callback_closed'"
        )
        assert (audit["actor"], audit["target"]) == ("system", f"callback {callback['id']}")
        assert through.linkedid in audit["detail"]
