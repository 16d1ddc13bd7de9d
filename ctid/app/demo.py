"""`ctid demo`: the whole desk on one machine with nothing else installed — the PBX simulator and
the daemon on loopback, SQLite in a temporary directory, demo users and callers, and realistic
traffic (IVR choices, answers at various rings, misses, abandons, a call that hits the cap)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import signal
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ctid.accounts.users import add_user
from ctid.app.daemon import Daemon
from ctid.asterisk.simulator import PbxSimulator
from ctid.config import Config, parse_config
from ctid.core.clock import SystemClock
from ctid.db import create_engine, upgrade
from ctid.db.engine import session_factory
from ctid.tickets.directory import CallerDirectory

log = structlog.get_logger(__name__)

DEMO_CALLERS = """name,employee_id,department,office_location,phones,vip,email
张三丰,E3001,财务部,北京总部 5F,13800138000,是,zhang.sanfeng@example.com
李娜,E3002,人力资源部,上海分公司 12F,+86 139 0000 1111,否,li.na@example.com
王伟,E3003,销售部,广州分公司 3F,010-62345678,否,wang.wei@example.com
Emily Clark,E3004,Legal,Beijing HQ 8F,+86 137 0000 2222,no,emily.clark@example.com
David Chen,E3005,IT Infrastructure,Shanghai DC,13600003333,yes,david.chen@example.com
赵敏,E3006,采购部,深圳分公司 7F,13500004444,否,zhao.min@example.com
"""

UNKNOWN_NUMBERS = ("13300005555", "18900006666")


@dataclass(frozen=True)
class DemoUser:
    employee_id: str
    name: str
    role: str
    password: str


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


def demo_config(data_dir: Path, *, web_port: int, agi_port: int, ami_port: int) -> Config:
    seats = [
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
    return parse_config(
        {
            "site": {"name": "ctid demo desk", "data_dir": str(data_dir)},
            "ami": {"port": ami_port, "username": "ctid", "secret": "ctid-demo"},
            "agi": {"listen_port": agi_port},
            "web": {"listen_port": web_port, "public_url": f"http://127.0.0.1:{web_port}"},
            "smtp": {"enabled": False},
            "seats": seats,
            "supervisors": [
                {"employee_id": "S9001", "name": "Shift Leader", "phone": "PJSIP/sup1"}
            ],
            # Open around the clock so the demo has traffic whenever it is started.
            "hours": {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "open": "00:00",
                "close": "23:59",
            },
            "lunch": {
                "start": "12:00",
                "end": "13:30",
                "groups": [
                    {"name": "A", "seats": ["seat1", "seat3"]},
                    {"name": "B", "seats": ["seat2", "seat4"]},
                ],
            },
            # A one-minute cap, so the demo shows the warnings and the cap quickly.
            "talk_cap": {"talk_cap_s": 60, "warn_at_s": [40, 50], "action": "hangup"},
        }
    )


def demo_users() -> list[DemoUser]:
    def pw() -> str:
        return secrets.token_urlsafe(9)

    return [
        DemoUser("E1001", "王芳 (Seat 1)", "agent", pw()),
        DemoUser("E1002", "Tom Li (Seat 2)", "agent", pw()),
        DemoUser("E2001", "刘洋 (Seat 3, expert)", "agent", pw()),
        DemoUser("E2002", "Anna Wu (Seat 4, expert)", "agent", pw()),
        DemoUser("S9001", "Shift Leader", "supervisor", pw()),
        DemoUser("OPS01", "Ops", "ops", pw()),
    ]


async def prepare(cfg: Config, users: Sequence[DemoUser]) -> None:
    engine = create_engine(cfg.database_url)
    try:
        await upgrade(engine)
        sessions = session_factory(engine)
        for u in users:
            await add_user(sessions, u.employee_id, u.name, u.role, u.password, actor="demo")
        directory = CallerDirectory(sessions, SystemClock(cfg.site.timezone), cfg)
        await directory.import_csv(DEMO_CALLERS, actor="demo")
    finally:
        await engine.dispose()


async def traffic(sim: PbxSimulator, rng: random.Random, *, calls: int | None = None) -> None:
    """Place calls forever (or `calls` of them): most answered within three rings, some answered
    late, some missed by a seat, some abandoned, now and then one that runs into the cap."""
    numbers = [
        "13800138000",
        "13900001111",
        "01062345678",
        "13700002222",
        "13600003333",
        "13500004444",
        *UNKNOWN_NUMBERS,
    ]
    names = ["张三丰", "李娜", "王伟", "Emily Clark", "David Chen", "赵敏", "", "<unknown>"]
    placed = 0
    while calls is None or placed < calls:
        for seat in ("seat1", "seat2", "seat3", "seat4"):
            roll = rng.random()
            if roll < 0.12:
                sim.set_phone(seat, answer_after_s=None)  # lets it ring: a miss
            elif roll < 0.25:
                sim.set_phone(seat, answer_after_s=rng.uniform(11, 14), talk_s=rng.uniform(20, 50))
            else:
                sim.set_phone(seat, answer_after_s=rng.uniform(2, 9), talk_s=rng.uniform(15, 55))
        i = rng.randrange(len(numbers))
        kind = rng.random()
        digits: Any = rng.choice(["1", "1", "2", "2", "2", "0", "9"])
        if kind < 0.1:
            sim.place_call(numbers[i], names[i], digits, hangup_after_s=rng.uniform(8, 20))
        elif kind < 0.15:
            sim.set_phone("seat1", answer_after_s=2, talk_s=None)  # talks past the cap
            sim.place_call(numbers[i], names[i], "1")
        else:
            sim.place_call(numbers[i], names[i], digits, talk_s=rng.uniform(15, 50))
        placed += 1
        await asyncio.sleep(rng.uniform(8, 20))


async def run_demo(*, web_port: int = 8080, seed: int | None = None, keep: bool = False) -> None:
    with contextlib.ExitStack() as files:
        data_dir = Path(tempfile.mkdtemp(prefix="ctid-demo-"))
        if not keep:
            files.callback(_remove_tree, data_dir)
        agi_port = _free_port(4573)
        web = _free_port(web_port)
        probe = demo_config(data_dir, web_port=web, agi_port=agi_port, ami_port=5038)
        users = demo_users()
        await prepare(probe, users)
        # The simulated PBX's Timestamp clock starts at the real time, like a real Asterisk.
        now = SystemClock(probe.site.timezone).utcnow().timestamp()
        sim = PbxSimulator.from_ctid_config(probe, agi_port=agi_port, epoch_base=now)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        async with sim:
            cfg = demo_config(data_dir, web_port=web, agi_port=agi_port, ami_port=sim.ami_port)
            async with Daemon(cfg) as daemon, asyncio.TaskGroup() as tg:
                ready = asyncio.Event()
                tg.create_task(daemon.serve(stop, ready))
                await ready.wait()
                _print_welcome(cfg, users, data_dir, keep)
                gen = tg.create_task(traffic(sim, random.Random(seed)))
                await stop.wait()
                gen.cancel()


def _print_welcome(cfg: Config, users: Sequence[DemoUser], data_dir: Path, keep: bool) -> None:
    url = cfg.web.public_url
    lines = [
        "",
        "ctid demo is running: a simulated Asterisk PBX and the daemon, on loopback.",
        f"  open {url}/login",
        "",
        "  employee ID   password          role        ",
    ]
    for u in users:
        lines.append(f"  {u.employee_id:<13} {u.password:<17} {u.role:<11} {u.name}")
    lines += [
        "",
        f"  agent desktop {url}/desk   wallboard {url}/supervisor",
        f"  data (SQLite) {data_dir}{'' if keep else '  (removed on exit; --keep keeps it)'}",
        "  Calls arrive every 8-20 s. Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
