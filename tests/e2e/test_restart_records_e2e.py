"""Nothing lost, nothing twice: the daemon as its own process (`python -m ctid.cli run`) on the
PBX simulator over real sockets, stopped (`kill -9`, SIGTERM, SIGTERM while PostgreSQL is down)
with one call talking, one ringing and one in the IVR; the PBX ends all three while ctid is
gone; after the restart, with the simulator's queue_log and the write journal, every call has
exactly one complete record, the answered one its incident, the abandoned ones their callbacks,
and `ctid report` counts the day's three offered calls.

Real time (ctid is another process): every wait is on a condition, with a generous bound."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from ctid.app.demo import to_toml
from ctid.asterisk.simulator import PbxSimulator
from ctid.asterisk.simulator.model import SimCall
from ctid.config import parse_config
from ctid.core.clock import SystemClock
from ctid.db import create_engine, upgrade
from tests.e2e.harness import SEATS, free_port
from tests.paths import ROOT
from tests.private_pg import PG_BIN, PrivatePostgres

BOUND_S = 180.0
"""Generous: a loaded 2-core machine may take long to start a process or fsync a file."""

SHANGHAI = ZoneInfo("Asia/Shanghai")


def raw_config(tmp: Path, ami_port: int, agi_port: int, db_url: str, log: Path) -> dict[str, Any]:
    return {
        "site": {"data_dir": str(tmp / "var"), "timezone": "Asia/Shanghai"},
        "database": {"url": db_url},
        "ami": {"port": ami_port, "username": "ctid", "secret": "ctidlab", "ping_interval_s": 10},
        "agi": {"listen_port": agi_port},
        "asterisk": {"queue_log": str(log), "queue_log_poll_s": 1.0},
        "smtp": {"enabled": False},
        "web": {"listen_port": 0, "public_url": "http://127.0.0.1:0"},
        "seats": SEATS,
        # Open around the clock, no lunch: the test runs whenever the machine does.
        "hours": {
            "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "open": "00:00",
            "close": "23:59",
        },
        "lunch": {"enabled": False},
        # The IVR caller stays silent: ctid waits for a key long enough to be stopped meanwhile.
        "ivr": {"digit_timeout_s": 45.0, "silence_replays": 5, "no_input_max_s": 300.0},
    }


class Ctid:
    """`python -m ctid.cli run -c CONFIG` as a child process; its log goes to a file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ctid.cli", "run", "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )

    async def stop(self, sig: signal.Signals) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(asyncio.to_thread(self.proc.wait), BOUND_S)
        self.proc = None
        return code

    def kill_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def until(what: Callable[[], Any], bound_s: float = BOUND_S, every_s: float = 0.2) -> Any:
    """Wait until `what()` is truthy (re-checked every `every_s`), at most `bound_s`."""
    async with asyncio.timeout(bound_s):
        # Polled: the condition is another process's doing (its database rows, its AMI login).
        while not (result := what()):  # noqa: ASYNC110
            await asyncio.sleep(every_s)
        return result


async def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


async def until_rows(url: str, sql: str, want: Callable[[list[tuple[Any, ...]]], bool]) -> None:
    async with asyncio.timeout(BOUND_S):
        # Polled: ctid, another process, writes them.
        while not want(await query(url, sql)):  # noqa: ASYNC110
            await asyncio.sleep(0.5)


def logins(sim: PbxSimulator) -> int:
    """ctid's resyncs so far: it asks for the queues' status after every login."""
    return sum(1 for action, _ in sim.actions_received if action == "QueueStatus")


def in_ivr(sim: PbxSimulator, call: SimCall) -> bool:
    """The caller is in ctid's IVR, which is waiting for a key (a GET DATA in progress)."""
    for c in sim.engine.pbx.calls:
        if c.public is call and c.in_agi and c.agi is not None:
            return bool(getattr(c.agi, "in_command", False))
    return False


@asynccontextmanager
async def desk(tmp: Path, db_url: str) -> AsyncIterator[tuple[PbxSimulator, Ctid, Path]]:
    log = tmp / "queue_log"
    agi_port = free_port()
    probe = parse_config(raw_config(tmp, 5038, agi_port, db_url, log))
    # The PBX's clock is today's, so the records fall on the day `ctid report` is asked about.
    now = SystemClock("Asia/Shanghai").now().timestamp()
    sim = PbxSimulator.from_ctid_config(
        probe, agi_port=agi_port, queue_log_path=log, epoch_base=now
    )
    async with sim:
        config = tmp / "ctid.toml"
        config.write_text(
            to_toml(raw_config(tmp, sim.ami_port, agi_port, db_url, log)), encoding="utf-8"
        )
        await upgrade(db_url)
        ctid = Ctid(config, tmp / "ctid.log")
        try:
            yield sim, ctid, config
        finally:
            ctid.kill_quietly()


async def start_and_wait_for_login(sim: PbxSimulator, ctid: Ctid) -> None:
    before = logins(sim)
    ctid.start()
    await until(lambda: logins(sim) > before)


async def three_calls(sim: PbxSimulator) -> tuple[SimCall, SimCall, SimCall]:
    """One in the IVR (silent), one talking on seat1, one ringing seat2 (which never answers)."""
    sim.set_phone("seat1", answer_after_s=1)
    sim.set_phone("seat2", answer_after_s=None)
    sim.set_rr_position("ordinary", 0)
    ivr = sim.place_call("13800138003", "Caller IVR", digits=[None] * 10, trunk=True)
    await until(lambda: in_ivr(sim, ivr))
    talking = sim.place_call("13800138001", "Caller Talking", digits="1", trunk=True)
    await asyncio.wait_for(talking.answered.wait(), BOUND_S)
    assert talking.seat == "seat1"
    ringing = sim.place_call("13800138002", "Caller Ringing", digits="1", trunk=True)
    await asyncio.wait_for(ringing.ringing.wait(), BOUND_S)
    return ivr, talking, ringing


async def end_all_three(ivr: SimCall, talking: SimCall, ringing: SimCall) -> None:
    """While ctid is gone: the IVR caller falls through to the queue (the dialplan's fail-open
    default) and hangs up there; the ringing caller gives up; the talking caller hangs up."""
    await asyncio.wait_for(ivr.queued.wait(), BOUND_S)
    for call in (ivr, ringing, talking):
        call.hangup()
    for call in (ivr, ringing, talking):
        await asyncio.wait_for(call.ended.wait(), BOUND_S)
    assert (talking.outcome, ringing.outcome, ivr.outcome) == ("answered", "abandoned", "abandoned")


async def check_records(
    db_url: str, config: Path, ivr: SimCall, talking: SimCall, ringing: SimCall
) -> None:
    ids = {talking.linkedid: "talking", ringing.linkedid: "ringing", ivr.linkedid: "ivr"}
    assert all(ids) and len(ids) == 3
    await until_rows(
        db_url,
        "SELECT count(*) FROM queue_log_calls",
        lambda rows: rows[0][0] == 3,
    )
    calls = await query(
        db_url,
        "SELECT call_id, outcome, answered_by_seat, talk_s, ended_at, incident_id FROM calls",
    )
    assert sorted(ids[c[0]] for c in calls) == ["ivr", "ringing", "talking"]
    by_call = {ids[c[0]]: c for c in calls}
    talk = by_call["talking"]
    assert talk[1:3] == ("answered", "seat1")
    assert talk[3] is not None and talk[4] is not None and talk[5] is not None
    for name in ("ringing", "ivr"):
        row = by_call[name]
        assert row[1] == "abandoned_in_queue" and row[4] is not None and row[5] is None
    incidents = await query(db_url, "SELECT id, owner_seat FROM incidents")
    assert incidents == [(talk[5], "seat1")]
    callbacks = await query(db_url, "SELECT call_id, reason, status FROM callbacks")
    assert sorted((ids[c[0]], c[1], c[2]) for c in callbacks) == [
        ("ivr", "abandoned", "open"),
        ("ringing", "abandoned", "open"),
    ]
    ring_rows = await query(db_url, "SELECT call_id, count(*) FROM ring_attempts GROUP BY call_id")
    assert all(n >= 1 for _, n in ring_rows)
    day = datetime.fromtimestamp(talking_epoch(ids, calls), tz=UTC).astimezone(SHANGHAI).date()
    report = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "ctid.cli",
            "report",
            "--csv",
            "-c",
            str(config),
            "--from",
            str(day),
            "--to",
            str(day),
        ],
        capture_output=True,
        text=True,
        timeout=BOUND_S,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert report.returncode == 0, report.stderr
    (line,) = list(csv.DictReader(io.StringIO(report.stdout.lstrip("\ufeff"))))
    assert (line["offered"], line["answered"], line["abandoned"], line["incidents"]) == (
        "3",
        "1",
        "2",
        "1",
    )


def talking_epoch(ids: dict[str, str], calls: list[tuple[Any, ...]]) -> float:
    ended = next(c[4] for c in calls if ids[c[0]] == "talking")
    when = ended if isinstance(ended, datetime) else datetime.fromisoformat(str(ended))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def journal_waiting(log: Path) -> list[int]:
    """The `waiting` counts of ctid's `journal_kept_for_next_start` log lines (JSON lines)."""
    out = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("event") == "journal_kept_for_next_start":
                out.append(int(entry["waiting"]))
    return out


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_stopped_with_three_live_calls_every_call_is_recorded_once(
    how: signal.Signals, tmp_path: Path
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'ctid.db'}"
    async with desk(tmp_path, db_url) as (sim, ctid, config):
        await start_and_wait_for_login(sim, ctid)
        ivr, talking, ringing = await three_calls(sim)
        code = await ctid.stop(how)
        assert code == (-signal.SIGKILL if how == signal.SIGKILL else 0)
        await end_all_three(ivr, talking, ringing)
        await start_and_wait_for_login(sim, ctid)
        await check_records(db_url, config, ivr, talking, ringing)
        assert await ctid.stop(signal.SIGTERM) == 0
        # Started again: nothing more is written.
        before = await query(db_url, "SELECT count(*) FROM calls")
        await start_and_wait_for_login(sim, ctid)
        await check_records(db_url, config, ivr, talking, ringing)
        assert await ctid.stop(signal.SIGTERM) == 0
        assert await query(db_url, "SELECT count(*) FROM calls") == before


@pytest.mark.skipif(not PG_BIN, reason="no PostgreSQL server binaries (/usr/lib/postgresql)")
async def test_stopped_during_a_postgresql_outage_loses_nothing_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    pg = PrivatePostgres()
    await asyncio.to_thread(pg.init)
    await asyncio.to_thread(pg.start)
    try:
        async with desk(tmp_path, pg.url) as (sim, ctid, config):
            await start_and_wait_for_login(sim, ctid)
            await asyncio.to_thread(pg.stop)
            ivr, talking, ringing = await three_calls(sim)
            assert await ctid.stop(signal.SIGTERM) == 0
            # The talking call's incident was accepted, and kept on disk for the next start.
            waiting = journal_waiting(ctid.log)
            assert waiting and waiting[-1] >= 1
            await end_all_three(ivr, talking, ringing)
            await asyncio.to_thread(pg.start)
            await start_and_wait_for_login(sim, ctid)
            await check_records(pg.url, config, ivr, talking, ringing)
            assert await ctid.stop(signal.SIGTERM) == 0
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            await asyncio.to_thread(pg.stop)
        shutil.rmtree(pg.base, ignore_errors=True)
