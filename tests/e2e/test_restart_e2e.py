"""ctid restarted mid-call, end to end: the PBX simulator keeps the call talking while the daemon
is stopped and a new Daemon starts on the same database; the call's real answer time, its cap
timer and the seat's desktop (over a real WebSocket) come back. Fake loop time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ctid.accounts.users import add_user, make_hasher
from ctid.app import Daemon
from ctid.asterisk.simulator import PbxSimulator
from ctid.config import Config
from ctid.core.clock import FakeClock
from ctid.core.ids import CallId, SeatId
from ctid.db import create_engine, upgrade
from tests.e2e.harness import MONDAY_10, Desk, desk_config, free_port, stopped
from tests.e2e.test_web_e2e import PASSWORD, Browser

pytestmark = pytest.mark.looptime(noop_cycles=20_000)

S1 = SeatId("seat1")


@asynccontextmanager
async def daemon_on(sim: PbxSimulator, cfg: Config, clock: FakeClock) -> AsyncIterator[Desk]:
    """One life of ctid: a new Daemon on the desk's database, stopped on exit."""
    stop = asyncio.Event()
    ready = asyncio.Event()
    async with Daemon(cfg, clock=clock, wall_clock_scheduler=False) as daemon:
        task = asyncio.create_task(daemon.serve(stop, ready))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            await asyncio.wait_for(daemon.ami.wait_logged_in(30), 60)
            await daemon.bus.drain()
            desk = Desk(cfg, daemon, sim, clock, asyncio.Event())
            daemon.bus.subscribe(desk.on_dispatch)
            yield desk
        finally:
            stop.set()
            await stopped(task)


@asynccontextmanager
async def pbx_and_db(tmp: Path) -> AsyncIterator[tuple[PbxSimulator, Config]]:
    agi_port = free_port()
    probe = desk_config(tmp, 5038, agi_port)
    sim = PbxSimulator.from_ctid_config(probe, agi_port=agi_port, epoch_base=MONDAY_10.timestamp())
    async with sim:
        cfg = desk_config(tmp, sim.ami_port, agi_port)
        engine = create_engine(cfg.database_url)
        await upgrade(engine)
        await engine.dispose()
        yield sim, cfg


class PbxWallClock(FakeClock):
    """The site's wall clock kept in step with the PBX's (as NTP keeps them in real life): it
    reads the simulator's epoch, which follows the fake loop time while ctid is down too."""

    def __init__(self, sim: PbxSimulator) -> None:
        super().__init__(MONDAY_10)
        self._sim = sim

    def now(self) -> datetime:
        return self.utcnow().astimezone(self.tz)

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self._sim.engine.pbx.epoch(), tz=UTC)


async def test_restart_mid_call_brings_back_answer_time_cap_and_the_seats_pop(
    tmp_path: Path,
) -> None:
    async with pbx_and_db(tmp_path) as (sim, cfg):
        clock = PbxWallClock(sim)
        async with daemon_on(sim, cfg, clock) as desk:
            cheap = make_hasher(time_cost=1, memory_cost_kib=8, parallelism=1)
            await add_user(desk.daemon.sessions, "E1001", "Li Lei", "agent", PASSWORD, hasher=cheap)
            sim.set_phone("seat2", answer_after_s=None)
            sim.set_phone("seat1", answer_after_s=3, talk_s=None)
            call = sim.place_call("13800138000", "Zhang San", digits="1", talk_s=None)
            await desk.wait_for(call.answered.is_set)
            cid = CallId(call.linkedid)
            await desk.wait_for(lambda: cid in desk.daemon.intake.incidents)
            number = desk.daemon.intake.incidents[cid]
            live = desk.daemon.calls.tracker.call(cid)
            assert live is not None and live.answered_at is not None
            answered_at = live.answered_at
        # ctid is down; the caller and seat1 talk on until 8 minutes after the answer.
        # (a step of the scenario on the fake loop clock, not a wait for a result)
        await asyncio.sleep(answered_at + 480 - sim.engine.pbx.epoch())
        assert not call.ended.is_set()

        async with daemon_on(sim, cfg, clock) as desk:
            tracker = desk.daemon.calls.tracker

            def recalled() -> bool:
                state = tracker.call(cid)
                return state is not None and state.answered_at == pytest.approx(
                    answered_at, abs=0.01
                )

            await desk.wait_for(recalled)
            state = tracker.call(cid)
            assert state is not None
            assert (state.phase, state.answered_by) == ("answered", S1)
            # the ring time is not known after a restart: none is invented
            assert [(a.seat, a.outcome, a.ring_s) for a in state.ring_attempts] == [
                (S1, "answered", None)
            ]
            assert tracker.seat(S1).activity == "on_call"

            # The seat's desktop: its talking pop with the call's incident, on a real socket.
            def pop_back() -> bool:
                snap = desk.daemon.hub.snapshot("seat1")
                return (
                    snap is not None
                    and snap.state == "talking"
                    and snap.incident_number == number
                    and snap.talk is not None
                    and snap.talk.started_at == pytest.approx(answered_at, abs=0.01)
                )

            await desk.wait_for(pop_back)
            agent = Browser(desk)
            try:
                await agent.login("E1001")
                ws_url = agent.base.replace("http://", "ws://", 1) + "/ws/seat"
                async with agent.http.ws_connect(ws_url, headers={"Origin": agent.base}) as ws:
                    first: dict[str, Any] = {}
                    while first.get("type") != "pop":  # after the socket's own hello
                        first = json.loads((await asyncio.wait_for(ws.receive(), 60)).data)
                assert (first["type"], first["state"], first["call_id"]) == ("pop", "talking", cid)
                assert first["number"] == "13800138000"
                assert first["incident"] == {"number": number}
                assert first["talk"]["started_at"] == pytest.approx(answered_at, abs=0.01)
                assert first["talk"]["cap_at"] == pytest.approx(answered_at + 600, abs=0.01)
            finally:
                await agent.close()

            # The cap counts from the real answer: 2 minutes after the restart, not 10.
            await desk.wait_for(call.ended.is_set, bound_s=400)
            row = await desk.call_row(cid)
            assert row["capped"] == 1
            assert row["outcome"] == "answered"
            assert row["answered_by_seat"] == "seat1"
            # answered_at is still the live answer stored before the restart
            talked = desk.rows(
                "SELECT (julianday(ended_at) - julianday(answered_at)) * 86400.0 AS talk_s "
                "FROM calls WHERE call_id = ?",
                cid,
            )[0]["talk_s"]
            assert talked == pytest.approx(600, abs=1.5)
            assert row["talk_s"] == pytest.approx(600, abs=1.5)
            hangups = [a for a in desk.actions("Hangup") if a["Channel"] == call.caller_channel]
            assert len(hangups) == 1
            # the incident opened before the restart is the call's only incident
            incidents = desk.incidents()
            assert [i["number"] for i in incidents] == [number]
            callbacks = await desk.wait_for_callbacks()
            assert [(c["reason"], c["call_id"]) for c in callbacks] == [("capped", cid)]


async def test_a_restart_keeps_the_seats_counts_of_the_day(tmp_path: Path) -> None:
    # A call nobody answered (rings let run out), one answered and ended, one answered and still
    # talking: after a restart the seats' "today" is what it was, the talking call is not counted
    # twice when the resync finds it answered, and its talk is added when it ends.
    missed_sql = (
        "SELECT seat_id, count(*) AS n FROM ring_attempts"
        " WHERE outcome IN ('no_answer', 'cut') GROUP BY seat_id"
    )
    async with pbx_and_db(tmp_path) as (sim, cfg):
        clock = PbxWallClock(sim)
        async with daemon_on(sim, cfg, clock) as desk:
            sim.set_phone("seat1", answer_after_s=None)
            sim.set_phone("seat2", answer_after_s=None)
            unanswered = sim.place_call("13800138000", "Wang Wu", digits="1", hangup_after_s=20)
            await desk.wait_for(unanswered.ended.is_set)
            missed = {r["seat_id"]: r["n"] for r in await desk.wait_rows(missed_sql)}
            # seat2 out of the queue's way, so every ring of what follows is seat1's
            sim.set_phone("seat2", unavailable=True)
            sim.set_phone("seat1", answer_after_s=3, talk_s=None)
            ended = sim.place_call("13800138001", "Zhang San", digits="1", talk_s=30)
            await desk.wait_for(ended.ended.is_set)
            talking = sim.place_call("13800138002", "Li Si", digits="1", talk_s=None)
            await desk.wait_for(talking.answered.is_set)
            cid = CallId(talking.linkedid)
            await desk.wait_rows(
                "SELECT 1 FROM calls WHERE call_id = ? AND talk_s IS NOT NULL", ended.linkedid
            )
            await desk.wait_rows(
                "SELECT 1 FROM calls WHERE call_id = ? AND answered_at IS NOT NULL", cid
            )
            before = {sid: desk.daemon.seat_desk.view(sid).today for sid in ("seat1", "seat2")}
        assert sum(missed.values()) >= 1
        assert {sid: t.missed for sid, t in before.items() if t.missed} == missed
        assert before["seat1"].answered == 2
        assert before["seat1"].talk_s == pytest.approx(30, abs=1.5)

        async with daemon_on(sim, cfg, clock) as desk:
            tracker = desk.daemon.calls.tracker

            def found_talking() -> bool:
                state = tracker.call(cid)
                return state is not None and state.answered_by == S1

            await desk.wait_for(found_talking)
            await desk.daemon.bus.drain()
            after = {sid: desk.daemon.seat_desk.view(sid).today for sid in ("seat1", "seat2")}
            assert after == before
            # the caller hangs up: the call's talk (from before and after the restart) joins the day's
            talking.hangup()
            row = await desk.wait_rows(
                "SELECT talk_s FROM calls WHERE call_id = ? AND talk_s IS NOT NULL", cid
            )
            seat1 = desk.daemon.seat_desk
            await desk.wait_for(lambda: seat1.view("seat1").today.talk_s > before["seat1"].talk_s)
            today = seat1.view("seat1").today
            assert today.answered == 2
            assert today.talk_s == pytest.approx(
                before["seat1"].talk_s + row[0]["talk_s"], abs=0.01
            )
