"""`ctid demo`: the whole desk on one machine with nothing else installed (PBX simulator and daemon
on loopback, SQLite in a temporary directory, demo users and callers, realistic traffic, a mail
catcher); `--smoke` is a short run that proves the installed package works."""

# The traffic has IVR choices, answers at various rings, misses, abandons and a call that hits the
# cap; the mail catcher has a mailbox page.

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import secrets
import signal
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import func, select

from ctid.accounts.users import add_user
from ctid.app.daemon import Daemon
from ctid.app.demo_mail import MailCatcher
from ctid.asterisk.simulator import PbxSimulator
from ctid.config import Config, parse_config
from ctid.core.clock import SystemClock
from ctid.core.frames import PopFrame
from ctid.db import create_engine, upgrade
from ctid.db.engine import session_factory
from ctid.db.schema import Incident
from ctid.log import configure_logging
from ctid.reports import kpi
from ctid.reports.render import report_output
from ctid.tickets.directory import CallerDirectory
from ctid.web.demo_mailbox import MailboxPage

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


SECOND_LINE_GROUPS = {
    "network": "network-team@demo.test",
    "desktop": "desktop-support@demo.test",
    "applications": "app-support@demo.test",
}
"""Second-line groups the demo dispatches to; their mail lands in the demo's mailbox page."""


def demo_raw(
    data_dir: Path,
    *,
    web_port: int,
    agi_port: int,
    ami_port: int,
    smtp_port: int | None = None,
) -> dict[str, Any]:
    """The demo's config as a TOML document (what `--write-config` writes)."""
    seats = [
        {"id": f"seat{n}", "name": f"Seat {n}", "tier": tier, "interface": f"PJSIP/seat{n}"}
        | {"staffed_by": emp}
        for n, tier, emp in (
            (1, "ordinary", "E1001"),
            (2, "ordinary", "E1002"),
            (3, "expert", "E2001"),
            (4, "expert", "E2002"),
        )
    ]
    smtp: dict[str, Any] = {"enabled": False}
    if smtp_port is not None:
        smtp = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": smtp_port,
            "tls": "none",
            "from_address": "servicedesk@demo.test",
            "retry_base_s": 2.0,
        }
    return {
        "site": {"name": "ctid demo desk", "data_dir": str(data_dir)},
        "ami": {"port": ami_port, "username": "ctid", "secret": "ctid-demo"},
        "agi": {"listen_port": agi_port},
        "web": {"listen_port": web_port, "public_url": f"http://127.0.0.1:{web_port}"},
        "smtp": smtp,
        "seats": seats,
        "supervisors": [
            {
                "employee_id": "S9001",
                "name": "Shift Leader",
                "phone": "PJSIP/sup1",
                "email": "shift.leader@demo.test",
            }
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
        # The call script scaled to the one-minute cap (its budgets must fit inside it), and a
        # short wrap-up so the demo traffic keeps coming.
        "desk": {
            "wrapup_s": {"ordinary": 10, "expert": 10},
            "wrapup_extend_s": 20,
            "sop": [
                {"key": "greet", "label": "Greet", "budget_s": 5},
                {"key": "confirm_caller", "label": "Confirm caller", "budget_s": 10},
                {"key": "diagnose", "label": "Diagnose", "budget_s": 20},
                {"key": "guided_fix", "label": "Guided fix", "budget_s": 15},
                {"key": "dispatch", "label": "Dispatch", "budget_s": 10},
            ],
        },
        # A survey a minute after closing, so the whole incident path fits in a demo.
        "incidents": {"second_line_groups": dict(SECOND_LINE_GROUPS), "followup_after_close_s": 60},
    }


def demo_config(
    data_dir: Path,
    *,
    web_port: int,
    agi_port: int,
    ami_port: int,
    smtp_port: int | None = None,
) -> Config:
    raw = demo_raw(
        data_dir, web_port=web_port, agi_port=agi_port, ami_port=ami_port, smtp_port=smtp_port
    )
    return parse_config(raw)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def to_toml(doc: dict[str, Any], prefix: str = "") -> str:
    """A TOML document for a config dict: scalars, then tables, then arrays of tables."""
    lines: list[str] = []
    tables: list[str] = []

    def is_table_list(v: object) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(i, dict) for i in v)

    for key, value in doc.items():
        if isinstance(value, dict) or is_table_list(value):
            continue
        lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in doc.items():
        name = f"{prefix}{_toml_key(key)}"
        if isinstance(value, dict):
            tables.append(f"\n[{name}]\n" + to_toml(value, name + "."))
        elif is_table_list(value):
            for item in value:
                tables.append(f"\n[[{name}]]\n" + to_toml(item, name + "."))
    return "\n".join(lines) + ("\n" if lines else "") + "".join(tables)


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


@dataclass(frozen=True)
class DemoOptions:
    web_port: int = 8080
    seed: int | None = None
    keep: bool = False
    smoke: bool = False
    verbose: bool = False
    write_config: Path | None = None
    log_level: str = "info"


async def run_demo(options: DemoOptions | None = None) -> int:
    """`ctid demo`: runs until SIGINT/SIGTERM (0), or with `smoke` until the smoke run is done
    (0 only if a pop, an incident and a report came out, else 1)."""
    opts = options or DemoOptions()
    keep = opts.keep or opts.write_config is not None
    data_dir = Path(tempfile.mkdtemp(prefix="ctid-demo-"))
    log_path = data_dir / "demo.log"
    with contextlib.ExitStack() as files:
        if not keep:
            files.callback(_remove_tree, data_dir)
        if not opts.verbose:
            # The banner (and the smoke verdict) must stay readable: logs go to a file.
            log_file = files.enter_context(log_path.open("a", encoding="utf-8", buffering=1))
            configure_logging(opts.log_level, "json", stream=log_file)
        return await _run(opts, data_dir, log_path, keep)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack never swallows here


async def _run(opts: DemoOptions, data_dir: Path, log_path: Path, keep: bool) -> int:
    agi_port = _free_port(4573)
    web = _free_port(opts.web_port)
    probe = demo_config(data_dir, web_port=web, agi_port=agi_port, ami_port=5038)
    users = demo_users()
    await prepare(probe, users)
    # The simulated PBX's Timestamp clock starts at the real time, like a real Asterisk.
    now = SystemClock(probe.site.timezone).utcnow().timestamp()
    # PJSIP-style channels as on a real install: PJSIP/seatN members, callers arriving on the
    # trunk as PJSIP/<their number>-0000000N
    sim = PbxSimulator.from_ctid_config(
        probe, agi_port=agi_port, epoch_base=now, callers_on_trunk=True, trunk_endpoint=""
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with sim, MailCatcher() as catcher, MailboxPage(catcher.snapshot) as mailbox:
        raw = demo_raw(
            data_dir,
            web_port=web,
            agi_port=agi_port,
            ami_port=sim.ami_port,
            smtp_port=catcher.port,
        )
        cfg = parse_config(raw)
        if opts.write_config is not None:
            opts.write_config.write_text(
                "# written by `ctid demo --write-config`: the config the demo runs with\n"
                + to_toml(raw),
                encoding="utf-8",
            )
        async with Daemon(cfg) as daemon, asyncio.TaskGroup() as tg:
            ready = asyncio.Event()
            tg.create_task(daemon.serve(stop, ready))
            await ready.wait()
            if opts.smoke:
                try:
                    problems = await smoke(daemon, sim, cfg)
                finally:
                    stop.set()
                for line in problems:
                    print(f"ctid demo --smoke: {line}", file=sys.stderr)
                if problems and not opts.verbose:
                    print(f"ctid demo --smoke: the log is in {log_path}", file=sys.stderr)
                return 1 if problems else 0
            _print_welcome(cfg, users, data_dir, keep, mailbox.url, log_path, opts)
            gen = tg.create_task(traffic(sim, random.Random(opts.seed)))
            await stop.wait()
            gen.cancel()
    return 0


SMOKE_BOUND_S = 120.0
"""How long the smoke run waits for each thing it checks (a loaded CI machine is slow)."""


async def _until(check: Callable[[], Awaitable[bool]], bound_s: float = SMOKE_BOUND_S) -> bool:
    """Wait for `check()` to hold, looking every 0.2 s, for at most `bound_s`."""
    # The database has no change notification to wait on, so it is looked at, with a bound.
    try:
        async with asyncio.timeout(bound_s):
            while True:
                if await check():
                    return True
                await asyncio.sleep(0.2)
    except TimeoutError:
        return False


async def smoke(daemon: Daemon, sim: PbxSimulator, cfg: Config) -> list[str]:
    """Two quick answered calls through the whole desk; what did not come out, one line each."""
    problems: list[str] = []
    subs = [daemon.hub.subscribe(s.id) for s in cfg.seats]
    for seat in cfg.seats:
        sim.set_phone(seat.id, answer_after_s=1.0, talk_s=2.0)
    sim.place_call("13800138000", "张三丰", "1", talk_s=2.0)
    sim.place_call("13600003333", "David Chen", "2", talk_s=2.0)
    pops: list[dict[str, Any]] = []

    async def next_pop(sub: Any) -> None:
        while (text := await sub.get()) is not None:
            frame = json.loads(text)
            if frame.get("type") == PopFrame.TYPE:
                pops.append(frame)
                return

    waiters = [asyncio.create_task(next_pop(s)) for s in subs]
    try:
        await asyncio.wait(waiters, timeout=SMOKE_BOUND_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        for s in subs:
            s.close()
    if not pops:
        problems.append("no screen-pop reached a seat")

    async def incident_count() -> int:
        async with daemon.sessions() as db:
            return int(await db.scalar(select(func.count()).select_from(Incident)) or 0)

    async def has_incident() -> bool:
        return await incident_count() > 0

    if not await _until(has_incident):
        problems.append("no incident was opened for an answered call")
    today = daemon.clock.now().date()
    report_text = ""

    async def report_ready() -> bool:
        nonlocal report_text
        report = await kpi.compute(daemon.sessions, cfg, today, today, "total")
        report_text = report_output(report, as_csv=False)
        return report.total.offered >= 1 and report.total.answered >= 1

    if not await _until(report_ready):
        problems.append("the KPI report shows no answered call")
    base = str(daemon.web.public_url).rstrip("/")
    for path in ("/login", "/static/app.css", "/static/desk.js", "/metrics"):
        status = await asyncio.to_thread(_http_status, base + path)
        if status != 200:
            problems.append(f"GET {path} answered {status} (is the file in the package?)")
    if not problems:
        print(report_text)
        print(f"smoke ok: {len(pops)} pop(s), {await incident_count()} incident(s), report above")
    return problems


def _http_status(url: str) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError as exc:
        return str(exc)


def _print_welcome(
    cfg: Config,
    users: Sequence[DemoUser],
    data_dir: Path,
    keep: bool,
    mailbox_url: str,
    log_path: Path,
    opts: DemoOptions,
) -> None:
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
    groups = ", ".join(SECOND_LINE_GROUPS)
    lines += [
        "",
        f"  agent desktop {url}/desk   wallboard {url}/supervisor",
        f"  metrics       {url}/metrics  (Prometheus; dashboard: contrib/grafana/ctid.json)",
        f"  mailbox       {mailbox_url}  (every mail ctid sends: dispatch to {groups},",
        "                accept/reject links, resolution notices, surveys)",
        f"  data (SQLite) {data_dir}{'' if keep else '  (removed on exit; --keep keeps it)'}",
    ]
    if opts.write_config is not None:
        lines.append(
            f"  config        {opts.write_config}  (try: ctid users list -c {opts.write_config})"
        )
    lines.append(
        "  logs          on this terminal"
        if opts.verbose
        else f"  logs          {log_path}  (--verbose shows them here)"
    )
    lines += ["  Calls arrive every 8-20 s. Stop with Ctrl-C.", ""]
    print("\n".join(lines), flush=True)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
