"""`ctid demo` runs on PJSIP-style channels (PJSIP/seatN members, callers on the trunk as
PJSIP/<number>-0000000N), as on a real install: its traffic goes through the whole desk."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from ctid.app.demo import traffic
from tests.e2e.harness import running_desk


@pytest.mark.looptime(noop_cycles=20_000)
async def test_demo_traffic_on_pjsip_channels(tmp_path: Path) -> None:
    pjsip = {"callers_on_trunk": True, "trunk_endpoint": ""}
    async with running_desk(tmp_path, sim_overrides=pjsip) as desk:
        gen = asyncio.create_task(traffic(desk.sim, random.Random(7), calls=6))
        await asyncio.wait_for(gen, 600)
        ended = "SELECT outcome FROM calls WHERE ended_at IS NOT NULL"
        await desk.wait_for(lambda: len(desk.rows(ended)) == 6, bound_s=900)
        outcomes = [r["outcome"] for r in desk.rows(ended)]
        assert "answered" in outcomes
        assert len(desk.incidents()) == outcomes.count("answered")
        # every channel was a PJSIP one: trunk callers and PJSIP seats, no Local pair at all
        pbx = desk.sim.engine.pbx
        assert pbx.local_seq == 0 and pbx.pjsip_seq >= 12
        numbers = "SELECT caller_number FROM calls"
        assert all(r["caller_number"] for r in desk.rows(numbers))
