"""Satisfaction by keypad end to end: the simulated PBX runs contrib's dialplan with Queue option
`c`, so when the agent hangs up the caller goes on to FastAGI `…/survey`; ctid asks, stores the
score on the call's incident (source `keypad`) and the KPIs count it; a hangup skips it; a capped
call is not asked."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from ctid.asterisk.simulator import SimCall
from ctid.reports.kpi import compute
from tests.e2e.harness import Desk, running_desk

pytestmark = pytest.mark.looptime(noop_cycles=20_000)


def in_survey(desk: Desk, call: SimCall) -> bool:
    """The caller's channel is in the survey's FastAGI session (after the queue)."""
    return any(
        c.public is call and c.in_agi and c.phase == "dialplan" and c.public.answered.is_set()
        for c in desk.sim.engine.pbx.calls
    )


def incident_of(desk: Desk, call: SimCall) -> dict[str, object]:
    [row] = desk.rows(
        "SELECT i.* FROM incidents i JOIN calls c ON c.incident_id = i.id WHERE c.call_id = ?",
        call.linkedid,
    )
    return dict(row)


async def test_a_keyed_score_lands_on_the_incident_and_in_the_kpis(tmp_path: Path) -> None:
    async with running_desk(tmp_path, survey=True) as desk:
        desk.sim.set_phone("seat1", answer_after_s=1, talk_s=5)
        desk.sim.set_phone("seat2", answer_after_s=None)
        desk.sim.set_rr_position("ordinary", 0)
        call = desk.sim.place_call("13800138000", "Zhang San", digits=["1", "4"])
        await desk.wait_for(call.ended.is_set)
        assert call.seat == "seat1" and call.outcome == "answered"
        survey = desk.daemon.survey
        await desk.wait_for(lambda: survey.outcomes["scored"] == 1)
        incident = incident_of(desk, call)
        assert incident["satisfaction"] == 4
        [rated] = desk.rows(
            "SELECT * FROM incident_history WHERE incident_id = ? AND action = 'rate'",
            incident["id"],
        )
        assert rated["actor"] == "caller"
        assert json.loads(rated["detail"]) == {"score": 4, "source": "keypad"}

        today = desk.clock.now().date()
        month = date(today.year, today.month, 1)
        by_seat = await compute(desk.daemon.sessions, desk.cfg, month, today, by="seat")
        [row] = [r for r in by_seat.rows if r.key == "seat1"]
        assert (row.satisfaction_avg, row.satisfaction_count) == (4.0, 1)


async def test_a_caller_who_hangs_up_is_not_asked_and_nothing_is_stored(tmp_path: Path) -> None:
    async with running_desk(tmp_path, survey=True) as desk:
        desk.sim.set_phone("seat1", answer_after_s=1, talk_s=5)
        desk.sim.set_phone("seat2", answer_after_s=None)
        desk.sim.set_rr_position("ordinary", 0)
        call = desk.sim.place_call("13800138000", "Zhang San", digits=["1", None])
        await desk.wait_for(lambda: in_survey(desk, call))
        call.hangup()
        await desk.wait_for(call.ended.is_set)
        survey = desk.daemon.survey
        await desk.wait_for(lambda: survey.outcomes["hung_up"] == 1)
        assert incident_of(desk, call)["satisfaction"] is None
        assert survey.outcomes["scored"] == 0


async def test_a_capped_call_is_not_asked(tmp_path: Path) -> None:
    cap = {"talk_cap_s": 60, "warn_at_s": [], "action": "notify"}
    async with running_desk(tmp_path, survey=True, talk_cap=cap) as desk:
        desk.sim.set_phone("seat1", answer_after_s=1, talk_s=70)
        desk.sim.set_phone("seat2", answer_after_s=None)
        desk.sim.set_rr_position("ordinary", 0)
        call = desk.sim.place_call("13800138000", "Zhang San", digits=["1", "5"])
        await desk.wait_for(call.ended.is_set, bound_s=900)
        survey = desk.daemon.survey
        await desk.wait_for(lambda: survey.outcomes["capped"] == 1)
        incident = incident_of(desk, call)
        assert "capped" in json.loads(str(incident["flags"]))
        assert incident["satisfaction"] is None
        assert survey.outcomes["scored"] == 0
