"""The durable write journal on real databases: killed with SIGKILL mid-stream and restarted,
every accepted write lands exactly once and in order; a replay of an entry the database already
has is skipped; writes wait out a database outage and survive a stop during it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from ctid.core.clock import FakeClock
from ctid.db import create_engine, session_factory, upgrade
from ctid.db.schema import AuditLog, Call, Callback, Incident
from ctid.journal import WriteJournal
from ctid.tickets.facts import CallFacts, CallRecordIn
from ctid.tickets.journal_ops import (
    RETRY_ON,
    call_facts_args,
    call_record_args,
    marker,
    registry,
)
from ctid.tickets.writes import CallWriter
from tests.paths import ROOT
from tests.private_pg import PG_BIN, PrivatePostgres

from .conftest import SECRET, desk_config

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def journal_for(
    path: Path, sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> WriteJournal:
    store = CallWriter.build(sessions, clock, desk_config(), link_secret=SECRET)
    return WriteJournal(
        path,
        registry(store, sessions, clock),
        marker(sessions),
        retry_on=RETRY_ON,
        retry_min_s=0.05,
        retry_max_s=0.2,
    )


async def audit_targets(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as s:
        rows = await s.scalars(
            select(AuditLog.target).where(AuditLog.action == "journal_kill").order_by(AuditLog.id)
        )
        return [str(t) for t in rows]


async def test_kill_9_mid_stream_then_restart_loses_nothing_and_doubles_nothing(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "journal.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("_journal_child.py")),
        str(path),
        db_url,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    accepted: list[int] = []
    try:
        async with asyncio.timeout(120):
            while len(accepted) < 60:
                line = await child.stdout.readline()
                assert line, "the child stopped before it was killed"
                if line.startswith(b"accepted "):  # (its log lines go to stdout too)
                    accepted.append(int(line.split()[1]))
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    engine = create_engine(db_url)
    try:
        sessions = session_factory(engine)
        journal = journal_for(path, sessions, FakeClock(T0))
        await journal.drain()
        assert journal.backlog == 0
        journal.close()
        targets = [int(t) for t in await audit_targets(sessions)]
    finally:
        await engine.dispose()
    counts = Counter(targets)
    assert all(n == 1 for n in counts.values()), "a write was applied twice"
    assert set(accepted) <= set(counts), "an accepted write was lost"
    assert targets == list(range(len(targets))), "applied out of order or with a gap"


async def test_an_entry_the_database_already_has_is_not_applied_again(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "journal.db"
    journal = journal_for(path, sessions, clock)
    record = CallRecordIn(
        call_id="1700000000.1",
        started_at=T0,
        caller_number="13800138000",
        queued_at=T0,
        answered_at=T0,
        ended_at=T0,
        answered_by_seat="seat1",
        outcome="answered",
        talk_s=12.5,
    )
    await journal.submit("record_call", call_record_args(record))
    facts = CallFacts(call_id="1700000000.1", answered_at=T0, answered_by_seat="seat1")
    await journal.submit("incident_from_call", call_facts_args(facts))
    await journal.submit("add_callback", {"number": "13800138000", "reason": "abandoned"})
    await journal.submit(
        "audit", {"actor": "test", "action": "journal_kill", "target": "0", "at": None}
    )
    await journal.drain()
    journal.close()
    # The crash between the database's commit and the journal's delete: the entries are back.
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO entries (seq, op, args, what) VALUES (?, ?, ?, ?)",
        [
            (3, "add_callback", '{"number":"13900139000","reason":"missed"}', "replayed"),
            (4, "audit", '{"actor":"t","action":"journal_kill","target":"0"}', "replayed"),
        ],
    )
    db.commit()
    db.close()
    with capture_logs() as logs:
        again = journal_for(path, sessions, clock)
        assert again.backlog == 2
        await again.drain()
    assert again.backlog == 0
    assert [e["seq"] for e in logs if e["event"] == "journal_entry_already_applied"] == [3, 4]
    async with sessions() as s:
        call = await s.scalar(select(Call))
        assert call is not None and (call.outcome, call.talk_s) == ("answered", 12.5)
        assert len((await s.scalars(select(Incident))).all()) == 1
        callbacks = (await s.scalars(select(Callback))).all()
        assert [c.caller_number for c in callbacks] == ["+8613800138000"]
    assert await audit_targets(sessions) == ["0"]


@pytest.mark.skipif(not PG_BIN, reason="no PostgreSQL server binaries (/usr/lib/postgresql)")
async def test_writes_wait_out_a_stopped_postgresql_and_a_stop_during_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Writes are accepted while the database is down and wait; stopping ctid then keeps them
    and says how many; once PostgreSQL is back they land, once, in order."""
    pg = PrivatePostgres()
    await asyncio.to_thread(pg.init)
    await asyncio.to_thread(pg.start)
    try:
        await upgrade(pg.url)
        clock = FakeClock(T0)
        path = tmp_path_factory.mktemp("journal") / "journal.db"
        engine = create_engine(pg.url)
        try:
            journal = journal_for(path, session_factory(engine), clock)
            await journal.submit("audit", {"actor": "t", "action": "journal_kill", "target": "0"})
            await journal.drain()
            assert journal.backlog == 0
            await asyncio.to_thread(pg.stop)
            for k in (1, 2, 3):
                await journal.submit(
                    "audit", {"actor": "t", "action": "journal_kill", "target": str(k)}
                )
            runner = asyncio.create_task(journal.run())  # retries against the stopped server
            await journal.drain()
            assert journal.backlog == 3
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            with capture_logs() as logs:
                journal.close()  # SIGTERM during the outage
            assert [(e["event"], e["waiting"]) for e in logs] == [
                ("journal_kept_for_next_start", 3)
            ]
        finally:
            await engine.dispose()
        await asyncio.to_thread(pg.start)
        engine = create_engine(pg.url)
        try:
            sessions = session_factory(engine)
            back = journal_for(path, sessions, clock)
            assert back.backlog == 3
            await back.drain()
            assert back.backlog == 0
            back.close()
            assert await audit_targets(sessions) == ["0", "1", "2", "3"]
        finally:
            await engine.dispose()
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            await asyncio.to_thread(pg.stop)
        shutil.rmtree(pg.base, ignore_errors=True)
