"""Startup and resync: `ctid run` as a real process, from its start to "ready" (database checked,
AMI logged in, resync applied, web listening), with a big history in the database and live calls on
the PBX; and, in the same runs, AMI login → resync applied.

The database (SQLite by default, or --db-url) is migrated and filled by bulk inserts with 100,000
calls and 20,000 incidents. The PBX simulator runs in this process with 50 live calls (4 talking
to the seats, the rest waiting in the queues: AGI was down when they arrived, so they took the
dialplan's fail-open queue). ctid's JSON log lines are read as they arrive, on CLOCK_MONOTONIC;
the CPU time ctid has used by then (user + system, all threads) is read from /proc/<pid>/stat,
steadier than the wall clock on a shared machine.
Budgets (DESIGN.md §6): start → ready ≤ 1.5 s; login → resync of 50 live calls ≤ 100 ms.

ctid runs with compiled bytecode, as an installed ctid does (pip compiles it): the child gets
PYTHONPYCACHEPREFIX=<tmp>/pycache (and no PYTHONDONTWRITEBYTECODE), and a first, untimed start
fills it (its figures are printed apart). --source-only keeps the caller's environment instead
(with PYTHONDONTWRITEBYTECODE=1, every start compiles ctid from source).

    python benchmarks/startup.py [--calls 100000] [--incidents 20000] [--live 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from sqlalchemy import insert

from ctid.asterisk.simulator import PbxSimulator
from ctid.config import parse_config
from ctid.db import create_engine, upgrade
from ctid.db.schema import Call, Incident

READY_BUDGET_S = 1.5
RESYNC_BUDGET_MS = 100.0
SEATS = [
    {
        "id": f"seat{i}",
        "name": f"Seat {i}",
        "tier": "ordinary" if i < 3 else "expert",
        "interface": f"PJSIP/seat{i}",
    }
    for i in range(1, 5)
]
MARKS = ("ami_logged_in", "calls_resynced", "ctid_started")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def each(runs: list[dict[str, float]], key: str, spec: str) -> str:
    return ", ".join(format(r[key], spec) for r in runs)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def config_toml(
    data_dir: Path,
    db_url: str,
    ami_port: int,
    agi_port: int,
    web_port: int,
    seat_list: list[dict[str, str]] = SEATS,
) -> str:
    seats = "".join(
        "\n[[seats]]\n" + "".join(f'{k} = "{v}"\n' for k, v in s.items()) for s in seat_list
    )
    return f"""[site]
data_dir = "{data_dir}"

[ami]
port = {ami_port}
username = "ctid"
secret = "bench-secret"

[agi]
listen_port = {agi_port}

[web]
listen_port = {web_port}
public_url = "http://127.0.0.1:{web_port}"

[database]
url = "{db_url}"

[smtp]
enabled = false

[hours]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
open = "00:00"
close = "23:59"

[lunch]
enabled = false
{seats}"""


async def fill(db_url: str, calls: int, incidents: int) -> float:
    """Migrate and bulk-insert the history; returns the seconds it took."""
    t0 = time.perf_counter()
    engine = create_engine(db_url)
    await upgrade(engine)
    rnd = random.Random(16)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    outcomes = ("answered", "answered", "answered", "abandoned", "short_abandon", "callback")
    statuses = ("new", "assigned", "in_progress", "resolved", "closed", "closed", "closed")
    async with engine.begin() as conn:
        rows: list[dict[str, Any]] = []
        for i in range(incidents):
            at = base + timedelta(minutes=30 * i)
            rows.append(
                {
                    "number": f"INC-{at:%Y%m%d}-{i % 48 + 1:04d}",  # 48 a day
                    "caller_number": f"1380013{i % 10000:04d}",
                    "caller_name": f"Caller {i % 10000}",
                    "channel": "phone",
                    "request_type": "fault",
                    "category": "software",
                    "impact": "low",
                    "urgency": "low",
                    "priority": "P4",
                    "status": rnd.choice(statuses),
                    "summary": f"benchmark incident {i}",
                    "owner_seat": f"seat{1 + i % 4}",
                    "flags": [],
                    "created_at": at,
                    "updated_at": at,
                }
            )
            if len(rows) == 5000:
                await conn.execute(insert(Incident), rows)
                rows = []
        if rows:
            await conn.execute(insert(Incident), rows)
        rows = []
        for i in range(calls):
            at = base + timedelta(minutes=6 * i)
            outcome = rnd.choice(outcomes)
            answered = outcome == "answered"
            rows.append(
                {
                    "call_id": f"{1_700_000_000 + i}.{i}",
                    "caller_number": f"1380013{i % 10000:04d}",
                    "caller_name": f"Caller {i % 10000}",
                    "queue": "ordinary",
                    "ivr_choice": "2",
                    "started_at": at,
                    "queued_at": at + timedelta(seconds=20),
                    "answered_at": at + timedelta(seconds=30) if answered else None,
                    "ended_at": at + timedelta(seconds=200),
                    "answered_by_seat": f"seat{1 + i % 4}" if answered else None,
                    "answer_ring": 2 if answered else None,
                    "within_rings": answered,
                    "outcome": outcome,
                    "talk_s": 170.0 if answered else None,
                    "capped": False,
                    "incident_id": 1 + i % incidents if answered and incidents else None,
                }
            )
            if len(rows) == 10000:
                await conn.execute(insert(Call), rows)
                rows = []
        if rows:
            await conn.execute(insert(Call), rows)
    await engine.dispose()
    return time.perf_counter() - t0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_run(cfg_path: Path, web_port: int, env: dict[str, str]) -> dict[str, float]:
    """Start `ctid run`, note when each mark's log line arrives, stop it once ready."""
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ctid.cli",
        "--log-format",
        "json",
        "run",
        "-c",
        str(cfg_path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cfg_path.parent,  # not the caller's directory: `-m` would import a ctid from there
    )
    assert proc.stderr is not None
    seen: dict[str, float] = {}
    resynced_calls = -1
    try:
        async with asyncio.timeout(60):
            while not all(m in seen for m in MARKS):
                line = await proc.stderr.readline()
                if not line:
                    raise RuntimeError(f"ctid exited (code {await proc.wait()}) before ready")
                now = time.monotonic()
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                name = rec.get("event")
                if name in MARKS and name not in seen:
                    seen[name] = now
                    if name == "calls_resynced":
                        resynced_calls = int(rec.get("calls", -1))
            # web listening: the first answer from the real server
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{web_port}/login") as resp,
            ):
                await resp.read()
            web = time.monotonic()
            cpu = cpu_seconds(proc.pid)
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
    ready = max(max(seen.values()), web)
    return {
        "ready_s": ready - t0,
        "cpu_s": cpu,
        "resync_ms": 1000 * (seen["calls_resynced"] - seen["ami_logged_in"]),
        "login_s": seen["ami_logged_in"] - t0,
        "resynced_calls": float(resynced_calls),
    }


async def main_async(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ctid-startup-"))
    db_url = args.db_url or f"sqlite+aiosqlite:///{tmp / 'ctid.db'}"
    fill_s = await fill(db_url, args.calls, args.incidents)
    print(
        f"database: {db_url.split(':', 1)[0]}; {args.calls:,} calls and {args.incidents:,} "
        f"incidents inserted in {fill_s:.1f} s"
    )
    agi_port, web_port = _free_port(), _free_port()
    raw = {"seats": SEATS, "ami": {"username": "ctid", "secret": "bench-secret"}}
    probe = parse_config({**raw, "agi": {"listen_port": agi_port}})
    sim = PbxSimulator.from_ctid_config(probe, agi_port=agi_port, epoch_base=time.time())
    async with sim:
        for seat in SEATS:
            sim.set_phone(seat["id"], answer_after_s=0.05)  # then talks until the caller leaves
        live = [
            sim.place_call(f"1390013{i:04d}", "Live", digits=None, hangup_after_s=3600)
            for i in range(args.live)
        ]
        # Every caller in a queue (AGI is down, so the dialplan's fail-open route puts them there).
        async with asyncio.timeout(60):
            for call in live:
                await call.queued.wait()
        await asyncio.sleep(1.0)  # the seats' answers settle
        cfg_path = tmp / "ctid.toml"
        cfg_path.write_text(config_toml(tmp, db_url, sim.ami_port, agi_port, web_port))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        first: dict[str, float] | None = None
        if not args.source_only:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
            first = await one_run(cfg_path, web_port, env)
        runs = [await one_run(cfg_path, web_port, env) for _ in range(args.runs)]
        live_channels = len(sim.channels())
        talking = sum(1 for c in live if c.answered.is_set())
    ready = statistics.median(r["ready_s"] for r in runs)
    resync = statistics.median(r["resync_ms"] for r in runs)
    if first is not None:
        print(
            f"first start (compiling the bytecode, untimed): ready at {first['ready_s']:.2f} s, "
            f"{first['cpu_s']:.2f} s CPU"
        )
    print(
        f"live on the PBX: {args.live} calls ({talking} talking, {live_channels} channels); "
        "ctid's resync found "
        f"{', '.join(str(int(r['resynced_calls'])) for r in runs)} calls; runs: {args.runs}"
    )
    print(
        f"process start → ready: median {ready:.2f} s "
        f"({each(runs, 'ready_s', '.2f')}); AMI logged in at "
        f"{statistics.median(r['login_s'] for r in runs):.2f} s  "
        f"(budget ≤ {READY_BUDGET_S:g} s: {verdict(ready <= READY_BUDGET_S)})"
    )
    print(
        f"ctid's CPU time at ready: median {statistics.median(r['cpu_s'] for r in runs):.2f} s "
        f"({each(runs, 'cpu_s', '.2f')}); bytecode: "
        f"{'as the environment has it' if args.source_only else 'compiled'}"
    )
    print(
        f"AMI login → resync applied ({args.live} live calls): median {resync:.1f} ms "
        f"({each(runs, 'resync_ms', '.1f')})  "
        f"(budget ≤ {RESYNC_BUDGET_MS:g} ms: {verdict(resync <= RESYNC_BUDGET_MS)})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--incidents", type=int, default=20_000)
    ap.add_argument("--live", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db-url", help="a database to fill (default: a fresh SQLite file)")
    ap.add_argument(
        "--source-only",
        action="store_true",
        help="no bytecode cache of its own: ctid starts as the environment has it",
    )
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
