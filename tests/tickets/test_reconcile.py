"""`ctid reconcile` on the recorded queue_log files: each gives its scenario's records, incident
and callback; a second run changes nothing; calls AMI already recorded are not written twice;
open records are completed; a PBX restart's reused Uniqueid does not merge two calls."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.cli import main
from ctid.config import Config
from ctid.core.clock import FakeClock
from ctid.db import create_engine
from ctid.db.schema import Call, Callback, Incident, QueueLogCall, QueueLogPosition, RingAttempt
from ctid.tickets.facts import CallFacts, CallRecordIn
from ctid.tickets.queue_log import read_calls
from ctid.tickets.queue_log_follow import QueueLogFollower, to_call_in
from ctid.tickets.reconcile import CallReconciler, QueueLogLedger
from ctid.tickets.writes import CallWriter
from tests.paths import TRANSCRIPTS

from .conftest import SECRET, T0

PJSIP = TRANSCRIPTS / "pjsip"

SEATS = "".join(
    f'[[seats]]\nid = "seat{n}"\nname = "Seat {n}"\ntier = "{tier}"\n'
    f'interface = "PJSIP/seat{n}"\nstaffed_by = "E{n}"\n\n'
    for n, tier in ((1, "ordinary"), (2, "ordinary"), (3, "expert"), (4, "expert"))
)


@pytest.fixture
def config_file(tmp_path: Path, sqlite_url: str) -> Path:
    path = tmp_path / "ctid.toml"
    path.write_text(
        f'[site]\ndata_dir = "{tmp_path.as_posix()}/data"\n\n'
        f'[database]\nurl = "{sqlite_url}"\n\n{SEATS}',
        encoding="utf-8",
    )
    main(["db", "upgrade", "-c", str(path)])
    return path


async def rows(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                select(
                    Call.call_id,
                    Call.outcome,
                    Call.answered_by_seat,
                    Call.talk_s,
                    Call.transferred_to,
                    Call.incident_id.is_not(None),
                ).order_by(Call.started_at)
            )
            return [tuple(r) for r in found]
    finally:
        await engine.dispose()


async def count(
    url: str, table: type[Callback] | type[Incident] | type[RingAttempt] | type[QueueLogCall]
) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    finally:
        await engine.dispose()


EXPECTED = {
    "pjsip_answered": [("1796492741.0", "answered", "seat1", 10.0, None, True)],
    "pjsip_agi_down": [("1796492945.0", "answered", "seat1", 11.0, None, True)],
    "pjsip_missing_prompt": [("1796492963.0", "answered", "seat1", 11.0, None, True)],
    "pjsip_abandon_in_queue": [("1796492934.0", "abandoned_in_queue", None, None, None, False)],
    "pjsip_ring_cut_client_first": [("1796492762.0", "answered", "seat2", 8.0, None, True)],
    "pjsip_ring_timeout_queue_first": [("1796492794.0", "answered", "seat2", 9.0, None, True)],
    "pjsip_spy_silent": [("1796492854.0", "answered", "seat1", 18.0, None, True)],
    "pjsip_spy_rtp": [("1796492880.0", "answered", "seat1", 18.0, None, True)],
    "pjsip_static_member_ops": [("1796492826.0", "answered", "seat1", 20.0, None, True)],
    # seat1's own leg: connected at :10, the caller re-entered the expert queue at :15.
    "pjsip_transfer_redirect": [("1796492906.0", "answered", "seat1", 5.0, "seat3", True)],
    "pjsip_pbx_restart": [
        ("1796492983.2", "lost_by_pbx", "seat2", None, None, True),
        ("1796492994.0", "answered", "seat1", 8.0, None, True),
    ],
    "pjsip_external_pause": [],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reconcile_each_recording_twice(
    name: str, config_file: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log = str(PJSIP / f"{name}.queue_log")
    assert main(["reconcile", "--queue-log", log, "-c", str(config_file)]) == 0
    first = capsys.readouterr().out
    expected = EXPECTED[name]
    assert [line for line in first.splitlines() if line.startswith("added ")] == [
        f"added {row[0]}" for row in expected
    ]
    assert asyncio.run(rows(sqlite_url)) == expected
    answered = sum(1 for row in expected if row[5])
    abandoned = sum(1 for row in expected if row[1] == "abandoned_in_queue")
    assert asyncio.run(count(sqlite_url, Incident)) == answered
    assert asyncio.run(count(sqlite_url, Callback)) == abandoned
    assert main(["reconcile", "--queue-log", log, "-c", str(config_file)]) == 0
    second = capsys.readouterr().out
    assert f"{log}: 0 added, 0 completed, 0 incidents, 0 callbacks" in second
    assert f"{len(expected)} already reconciled" in second
    assert asyncio.run(rows(sqlite_url)) == expected
    assert asyncio.run(count(sqlite_url, Incident)) == answered
    assert asyncio.run(count(sqlite_url, Callback)) == abandoned


def cfg_of(config_file: Path) -> Config:
    from ctid.config import load_config

    return load_config(str(config_file))


def utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


async def test_a_call_ami_recorded_is_matched_and_an_open_one_completed(
    config_file: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    cfg = cfg_of(config_file)
    clock = FakeClock(T0, "Asia/Shanghai")
    store = CallWriter.build(sessions, clock, cfg, link_secret=SECRET)
    # AMI saw the answered call whole, and its incident; it saw the spy call answered only
    # (ctid died while it talked): ended_at/outcome/talk_s NULL, with the IVR's choice.
    await store.record_call(
        CallRecordIn(
            call_id="1796492741.0",
            started_at=utc(1796492741),
            caller_number="13800138000",
            queued_at=utc(1796492743),
            answered_at=utc(1796492747),
            ended_at=utc(1796492757),
            answered_by_seat="seat1",
            outcome="answered",
            talk_s=10.0,
        )
    )
    live = await store.create_from_call(
        CallFacts(call_id="1796492741.0", answered_at=utc(1796492747), answered_by_seat="seat1")
    )
    await store.record_call(
        CallRecordIn(
            call_id="1796492854.0",
            started_at=utc(1796492854),
            caller_number="13800138000",
            ivr_choice="1",
            category="consultation",
            answered_at=utc(1796492858),
            answered_by_seat="seat1",
        )
    )
    reconciler = CallReconciler(store, QueueLogLedger(sessions, clock))
    calls = [
        to_call_in(c, cfg)
        for name in ("pjsip_answered", "pjsip_spy_silent")
        for c in read_calls(str(PJSIP / f"{name}.queue_log"), None).calls
    ]
    report = await reconciler.reconcile(calls)
    assert (report.added, report.completed, report.matched) == ([], ["1796492854.0"], 1)
    assert len(report.incidents) == 1  # the spy call's, recovered; the live one is kept
    async with sessions() as s:
        spy = await s.scalar(select(Call).where(Call.call_id == "1796492854.0"))
        assert spy is not None
        assert (spy.outcome, spy.talk_s, spy.ivr_choice, spy.category) == (
            "answered",
            18.0,
            "1",
            "consultation",
        )
        assert spy.ended_at == utc(1796492876)
        incidents = (await s.scalars(select(Incident).order_by(Incident.id))).all()
    assert incidents[0].number == live.number
    assert "recovered" not in incidents[0].flags and "recovered" in incidents[1].flags
    again = await reconciler.reconcile(calls)
    assert (again.added, again.completed, again.already) == ([], [], 2)


async def test_a_stored_call_with_a_reused_uniqueid_is_not_merged(
    config_file: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    cfg = cfg_of(config_file)
    clock = FakeClock(T0, "Asia/Shanghai")
    store = CallWriter.build(sessions, clock, cfg, link_secret=SECRET)
    # A call of a day before with the same Uniqueid (the PBX restarted and counted from .0).
    await store.record_call(
        CallRecordIn(
            call_id="1796492934.0",
            started_at=utc(1796492934 - 86400),
            outcome="answered",
            ended_at=utc(1796492934 - 86300),
        )
    )
    reconciler = CallReconciler(store, QueueLogLedger(sessions, clock))
    (call,) = read_calls(str(PJSIP / "pjsip_abandon_in_queue.queue_log"), None).calls
    report = await reconciler.reconcile([to_call_in(call, cfg)])
    assert report.added == ["1796492934.0@1796492935"]
    async with sessions() as s:
        found = await s.execute(select(Call.call_id, Call.outcome))
        outcomes = {row[0]: row[1] for row in found}
    assert outcomes == {
        "1796492934.0": "answered",
        "1796492934.0@1796492935": "abandoned_in_queue",
    }


async def test_the_follower_keeps_its_position_and_follows_the_file(
    config_file: Path, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    cfg = cfg_of(config_file)
    clock = FakeClock(T0, "Asia/Shanghai")
    store = CallWriter.build(sessions, clock, cfg, link_secret=SECRET)
    ledger = QueueLogLedger(sessions, clock)
    path = tmp_path / "queue_log"
    answered = (PJSIP / "pjsip_answered.queue_log").read_bytes()
    path.write_bytes(answered[:100])  # ENTERQUEUE and half of CONNECT
    follower = QueueLogFollower(cfg, ledger, CallReconciler(store, ledger), path=str(path))
    assert (await follower.reconcile_now()).added == []
    with path.open("ab") as fh:
        fh.write(answered[100:])
    assert (await follower.reconcile_now()).added == ["1796492741.0"]
    async with sessions() as s:
        pos = await s.get(QueueLogPosition, str(path))
        assert pos is not None and (pos.inode, pos.offset) == (
            path.stat().st_ino,
            path.stat().st_size,
        )
    # Rotated: a new file with another call.
    path.rename(tmp_path / "queue_log.1")
    path.write_bytes((PJSIP / "pjsip_abandon_in_queue.queue_log").read_bytes())
    assert (await follower.reconcile_now()).added == ["1796492934.0"]
    assert (await follower.reconcile_now()).added == []
    # Truncated in place (logrotate's copytruncate): same inode, shorter than the position.
    inode = path.stat().st_ino
    cut = (PJSIP / "pjsip_ring_cut_client_first.queue_log").read_bytes()
    head = cut.index(b"\n") + 1  # its ENTERQUEUE: shorter than the position
    with path.open("r+b") as fh:
        fh.truncate(0)
        fh.write(cut[:head])
    assert path.stat().st_ino == inode
    assert (await follower.reconcile_now()).added == []
    with path.open("ab") as fh:
        fh.write(cut[head:])
    assert (await follower.reconcile_now()).added == ["1796492762.0"]
    assert (await follower.reconcile_now()).added == []
    async with sessions() as s:
        pos = await s.get(QueueLogPosition, str(path))
        assert pos is not None and (pos.inode, pos.offset) == (inode, path.stat().st_size)


def generated_log(path: Path, calls: int, *, first: int = 1796400000) -> tuple[int, int]:
    """`calls` calls in the recorded line shapes, every 7th abandoned (a callback), the rest
    answered (an incident); returns (answered, abandoned)."""
    answered = abandoned = 0
    with path.open("w", encoding="utf-8") as fh:
        for n in range(calls):
            t = first + 30 * n
            cid = f"{t - 2}.{n}"
            caller = f"138{n:08d}"
            fh.write(f"{t}|{cid}|ordinary|NONE|ENTERQUEUE||{caller}|1\n")
            if n % 7 == 3:
                fh.write(f"{t + 9}|{cid}|ordinary|Seat 2|RINGCANCELED|9000\n")
                fh.write(f"{t + 9}|{cid}|ordinary|NONE|ABANDON|1|1|9\n")
                abandoned += 1
            else:
                fh.write(f"{t + 4}|{cid}|ordinary|Seat 1|CONNECT|4|{cid}1|4\n")
                fh.write(f"{t + 24}|{cid}|ordinary|Seat 1|COMPLETECALLER|4|20|1\n")
                answered += 1
    return answered, abandoned


async def totals(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as s:
        out = {}
        for name, table in (
            ("calls", Call),
            ("incidents", Incident),
            ("callbacks", Callback),
            ("rings", RingAttempt),
        ):
            out[name] = int(await s.scalar(select(func.count()).select_from(table)) or 0)
        linked = select(func.count()).select_from(Call).where(Call.incident_id.is_not(None))
        out["linked"] = int(await s.scalar(linked) or 0)
        return out


async def test_chunks_repeated_after_a_crash_write_nothing_twice(
    config_file: Path, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Chunk by chunk (one transaction each, the ledger marks inside): a run that stopped after
    some chunks, run again over the whole file, adds only the rest."""
    cfg = cfg_of(config_file)
    clock = FakeClock(T0, "Asia/Shanghai")
    store = CallWriter.build(sessions, clock, cfg, link_secret=SECRET)
    reconciler = CallReconciler(store, QueueLogLedger(sessions, clock))
    answered, abandoned = generated_log(tmp_path / "queue_log", 40)
    calls = [to_call_in(c, cfg) for c in read_calls(str(tmp_path / "queue_log"), None).calls]
    first = await reconciler.reconcile(calls[:17], chunk=5)  # the run that died after 17
    assert len(first.added) == 17
    report = await reconciler.reconcile(calls, chunk=6)
    assert (len(report.added), report.already) == (23, 17)
    assert len(report.incidents) + len(first.incidents) == answered
    assert len(report.callbacks) + len(first.callbacks) == abandoned
    assert await totals(sessions) == {
        "calls": 40,
        "incidents": answered,
        "callbacks": abandoned,
        "rings": 40,
        "linked": answered,
    }
    async with sessions() as s:
        flags = (await s.scalars(select(Incident.flags))).all()
        numbers = (await s.scalars(select(Incident.number))).all()
    assert all(f == ["recovered"] for f in flags)
    assert len(set(numbers)) == answered


async def test_a_chunk_the_bulk_path_refuses_is_done_one_call_at_a_time(
    config_file: Path, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    cfg = cfg_of(config_file)
    clock = FakeClock(T0, "Asia/Shanghai")
    store = CallWriter.build(sessions, clock, cfg, link_secret=SECRET)
    reconciler = CallReconciler(store, QueueLogLedger(sessions, clock))
    generated_log(tmp_path / "queue_log", 6)
    calls = [to_call_in(c, cfg) for c in read_calls(str(tmp_path / "queue_log"), None).calls]
    # One call with a time that has no zone (a bad value): the chunk's transaction refuses it.
    bad = calls[1]
    assert bad.answered_at is not None
    calls[1] = replace(bad, answered_at=bad.answered_at.replace(tzinfo=None))
    report = await reconciler.reconcile(calls)
    assert report.failed == 1
    assert sorted(report.added) == sorted(c.callid for i, c in enumerate(calls) if i != 1)
    assert (await totals(sessions))["calls"] == 5
    again = await reconciler.reconcile(calls)
    assert (again.added, again.already, again.failed) == ([], 5, 1)


def test_ctid_reconcile_killed_mid_file_then_run_again_records_each_call_once(
    config_file: Path, sqlite_url: str, tmp_path: Path
) -> None:
    """`kill -9` of `ctid reconcile` while it writes a long log, then the same command again:
    every call once, its incident or callback once."""
    log = tmp_path / "queue_log"
    answered, abandoned = generated_log(log, 6000)
    engine_url = sqlite_url
    cmd = [sys.executable, "-m", "ctid.cli", "reconcile", "--queue-log", str(log)]
    cmd += ["-c", str(config_file)]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Wait (bounded) for the first chunk to commit, then kill it mid-file.
        for _ in range(3000):
            if asyncio.run(count(engine_url, QueueLogCall)) > 0:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.2)
        child.kill()
    finally:
        child.wait()
    marked = asyncio.run(count(engine_url, QueueLogCall))
    assert marked > 0
    assert subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    assert asyncio.run(count(engine_url, QueueLogCall)) == 6000
    assert asyncio.run(count(engine_url, Incident)) == answered
    assert asyncio.run(count(engine_url, Callback)) == abandoned
    assert len(asyncio.run(rows(engine_url))) == 6000
