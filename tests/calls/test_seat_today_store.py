"""`SqlSeatLog.today`: what the database holds of the seats' day, on SQLite and PostgreSQL — the
answers (first answer and a transfer's), the talk of ended calls, the rings let run out, and
nothing from the day before or after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ctid.calls.seat_log_store import SqlSeatLog
from ctid.db import create_engine, session_factory
from ctid.db.schema import Call, RingAttempt

LO = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # Monday 00:00 in Shanghai
HI = LO + timedelta(days=1)


def call(call_id: str, at: datetime, seat: str | None, talk_s: float | None, **kw: object) -> Call:
    return Call(
        call_id=call_id,
        started_at=at,
        answered_at=at + timedelta(seconds=5) if seat else None,
        answered_by_seat=seat,
        ended_at=at + timedelta(seconds=5 + (talk_s or 0)) if talk_s is not None else None,
        talk_s=talk_s,
        outcome="answered" if talk_s is not None else None,
        **kw,
    )


def ring(call_id: str, seat: str, at: datetime, outcome: str) -> RingAttempt:
    return RingAttempt(call_id=call_id, seat_id=seat, started_at=at, outcome=outcome)


async def test_the_seats_day_as_stored(migrated_db_url: str) -> None:
    engine = create_engine(migrated_db_url)
    try:
        sessions = session_factory(engine)
        morning = LO + timedelta(hours=2)
        async with sessions() as db, db.begin():
            db.add_all(
                [
                    call("a", morning, "seat1", 60.0),
                    call("b", morning + timedelta(minutes=5), "seat1", None),  # still talking
                    call(
                        "c", morning + timedelta(minutes=9), "seat3", 40.0, transferred_to="seat4"
                    ),
                    call("d", LO - timedelta(minutes=10), "seat1", 99.0),  # the day before
                    call("e", HI + timedelta(minutes=1), "seat2", 99.0),  # the day after
                    call("f", morning + timedelta(minutes=20), None, None),  # nobody answered
                ]
            )
            await db.flush()
            db.add_all(
                [
                    ring("a", "seat2", morning, "cut"),
                    ring("a", "seat1", morning + timedelta(seconds=15), "answered"),
                    ring("c", "seat3", morning + timedelta(minutes=9), "answered"),
                    ring("c", "seat4", morning + timedelta(minutes=10), "answered"),
                    ring("f", "seat2", morning + timedelta(minutes=20), "no_answer"),
                    ring("f", "seat1", morning + timedelta(minutes=21), "caller_left"),
                    ring("d", "seat2", LO - timedelta(minutes=10), "cut"),
                ]
            )
        stored = await SqlSeatLog(sessions).today(LO, HI)
        assert stored.answered == {("a", "seat1"), ("b", "seat1"), ("c", "seat3"), ("c", "seat4")}
        assert dict(stored.talk_s) == {"seat1": 60.0, "seat3": 40.0}
        assert dict(stored.missed) == {"seat2": 2}

        # A call that started before midnight and ended after it: its talk is the new day's
        # (the desk adds a call's talk when it ends), its answer the day before's.
        async with sessions() as db, db.begin():
            db.add(call("g", LO - timedelta(seconds=30), "seat2", 120.0))
        stored = await SqlSeatLog(sessions).today(LO, HI)
        assert dict(stored.talk_s) == {"seat1": 60.0, "seat2": 120.0, "seat3": 40.0}
        assert ("g", "seat2") not in stored.answered
    finally:
        await engine.dispose()
