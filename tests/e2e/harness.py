"""End-to-end harness: ctid's daemon and the PBX simulator on loopback, a migrated SQLite
database, a fake civil clock (a Monday 10:00 in Shanghai unless a test moves it), fake loop time."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ctid.app import Daemon
from ctid.asterisk.simulator import PbxSimulator
from ctid.config import Config, parse_config
from ctid.core.clock import FakeClock
from ctid.db import create_engine, upgrade

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)

SEATS = [
    {
        "id": "seat1",
        "name": "Seat 1",
        "tier": "ordinary",
        "interface": "PJSIP/seat1",
        "staffed_by": "E1001",
    },
    {
        "id": "seat2",
        "name": "Seat 2",
        "tier": "ordinary",
        "interface": "PJSIP/seat2",
        "staffed_by": "E1002",
    },
    {
        "id": "seat3",
        "name": "Seat 3",
        "tier": "expert",
        "interface": "PJSIP/seat3",
        "staffed_by": "E2001",
    },
    {
        "id": "seat4",
        "name": "Seat 4",
        "tier": "expert",
        "interface": "PJSIP/seat4",
        "staffed_by": "E2002",
    },
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def desk_config(tmp: Path, ami_port: int, agi_port: int, **sections: Any) -> Config:
    raw: dict[str, Any] = {
        "site": {"data_dir": str(tmp / "var")},
        "ami": {"port": ami_port, "username": "ctid", "secret": "ctidlab", "ping_interval_s": 10},
        "agi": {"listen_port": agi_port},
        "smtp": {"enabled": False},
        "web": {"listen_port": 0, "public_url": "http://127.0.0.1:0"},
        "seats": SEATS,
        # No wrap-up unless a test asks for it: most tests place the next call at once.
        "desk": {"wrapup_s": {"ordinary": 0, "expert": 0}},
        "lunch": {
            "groups": [
                {"name": "A", "seats": ["seat1", "seat3"]},
                {"name": "B", "seats": ["seat2", "seat4"]},
            ],
        },
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_config(raw)


@dataclass
class Desk:
    cfg: Config
    daemon: Daemon
    sim: PbxSimulator
    clock: FakeClock

    changed: asyncio.Event

    def on_dispatch(self, _item: object) -> None:
        """Subscribed to ctid's bus after the call service: every handled event wakes waiters."""
        self.changed.set()

    async def wait_for(self, what: Callable[[], Any], bound_s: float = 300) -> Any:
        """Wait until `what()` is truthy, re-checking after every event ctid handles (and on the
        simulator's own progress); the bound (fake loop time) keeps a broken test from hanging."""
        async with asyncio.timeout(bound_s):
            while not (result := what()):
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 1.0)
            return result

    def rows(self, sql: str, *params: object) -> list[sqlite3.Row]:
        """Read the daemon's SQLite file directly. A plain synchronous read: under fake loop time
        a read through a thread would let the loop clock jump while it waits."""
        path = self.cfg.database_url.removeprefix("sqlite+aiosqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.row_factory = sqlite3.Row
            return list(db.execute(sql, params).fetchall())

    async def wait_rows(self, sql: str, *params: object, bound_s: float = 300) -> list[sqlite3.Row]:
        return list(await self.wait_for(lambda: self.rows(sql, *params), bound_s))

    async def call_row(self, call_id: str) -> sqlite3.Row:
        """The call's record once it has ended (the incident links a row at answer time)."""
        rows = await self.wait_rows(
            "SELECT * FROM calls WHERE call_id = ? AND ended_at IS NOT NULL", call_id
        )
        return rows[0]

    def attempts(self, call_id: str) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM ring_attempts WHERE call_id = ? ORDER BY id", call_id)

    def incidents(self) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM incidents ORDER BY id")

    async def wait_for_callbacks(self) -> list[sqlite3.Row]:
        return await self.wait_rows("SELECT * FROM callbacks ORDER BY id")

    def actions(self, name: str) -> list[dict[str, str]]:
        return [dict(frame) for action, frame in self.sim.actions_received if action == name]


async def stopped(task: asyncio.Task[None], real_s: float = 120.0) -> None:
    """Wait for the daemon's `serve` to end, bounded in *real* seconds. Under looptime the fake
    clock jumps from timer to timer while aiosqlite's thread still works in real time, so a bound
    on the loop's clock (600 fake seconds pass in a blink) fails a slow but healthy shutdown."""
    deadline = time.monotonic() + real_s
    while not task.done():
        await asyncio.wait({task}, timeout=1.0)
        if not task.done() and time.monotonic() > deadline:
            task.cancel()
            raise TimeoutError(f"the daemon did not stop within {real_s:g} s")
    task.result()


@asynccontextmanager
async def running_desk(
    tmp: Path,
    *,
    start: datetime = MONDAY_10,
    pbx_ring_timeout_s: int = 30,
    sim_overrides: dict[str, Any] | None = None,
    survey: bool = False,
    **sections: Any,
) -> AsyncIterator[Desk]:
    """`pbx_ring_timeout_s`: how long the simulated queues ring a seat by themselves — longer
    than ctid's three-ring deadline by default, so the deadline is ctid's doing. `survey`: the
    PBX runs contrib's keypad survey after the queue (Queue option `c`, then AGI …/survey)."""
    agi_port = free_port()
    probe = desk_config(tmp, 5038, agi_port, **sections)
    overrides: dict[str, Any] = {"epoch_base": start.timestamp(), **(sim_overrides or {})}
    if survey:
        overrides["survey_agi_url"] = f"agi://127.0.0.1:{agi_port}/survey"
    sim = PbxSimulator.from_ctid_config(probe, agi_port=agi_port, **overrides)
    sim.config = replace(
        sim.config,
        queues=tuple(replace(q, timeout_s=pbx_ring_timeout_s) for q in sim.config.queues),
    )
    async with sim:
        cfg = desk_config(tmp, sim.ami_port, agi_port, **sections)
        engine = create_engine(cfg.database_url)
        await upgrade(engine)
        await engine.dispose()
        clock = FakeClock(start)
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
