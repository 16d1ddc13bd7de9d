"""`ctid demo`'s pieces: its config, its users and callers, and its traffic generator driving the
real daemon against the simulator (on fake loop time)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import pytest

from ctid.app.demo import DEMO_CALLERS, demo_config, demo_users, prepare, traffic
from tests.e2e.harness import running_desk


async def test_demo_prepares_users_and_callers(tmp_path: Path) -> None:
    cfg = demo_config(tmp_path / "var", web_port=18080, agi_port=14573, ami_port=15038)
    users = demo_users()
    assert {u.role for u in users} == {"agent", "supervisor", "ops"}
    assert len({u.password for u in users}) == len(users)
    await prepare(cfg, users)
    db = sqlite3.connect(tmp_path / "var" / "ctid.db")
    try:
        staff = {r[0] for r in db.execute("SELECT employee_id FROM users")}
        callers = {r[0] for r in db.execute("SELECT name FROM callers")}
    finally:
        db.close()
    assert staff == {u.employee_id for u in users}
    assert "张三丰" in callers
    assert "Emily Clark" in callers
    assert len(callers) == len(DEMO_CALLERS.strip().splitlines()) - 1


@pytest.mark.looptime(noop_cycles=20_000)
async def test_demo_traffic_runs_through_the_desk(tmp_path: Path) -> None:
    async with running_desk(tmp_path) as desk:
        gen = asyncio.create_task(traffic(desk.sim, random.Random(7), calls=6))
        await asyncio.wait_for(gen, 600)
        ended = "SELECT outcome FROM calls WHERE ended_at IS NOT NULL"
        await desk.wait_for(lambda: len(desk.rows(ended)) == 6, bound_s=900)
        outcomes = [r["outcome"] for r in desk.rows(ended)]
        assert "answered" in outcomes
        assert len(desk.incidents()) == outcomes.count("answered")
