"""`ctid reconcile` on the recorded queue_log files: each gives its scenario's records, incident
and callback; a second run changes nothing; calls AMI already recorded are not written twice;
open records are completed; a PBX restart's reused Uniqueid does not merge two calls."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.app.queue_log import QueueLogReconcile, to_call_in
from ctid.calls.queue_log import read_calls
from ctid.cli import main
from ctid.config import Config
from ctid.core.clock import FakeClock
from ctid.db import create_engine
from ctid.db.schema import Call, Callback, Incident, QueueLogPosition, RingAttempt
from ctid.tickets.facts import CallFacts, CallRecordIn
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


async def count(url: str, table: type[Callback] | type[Incident] | type[RingAttempt]) -> int:
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
    follower = QueueLogReconcile(cfg, ledger, CallReconciler(store, ledger), path=str(path))
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
