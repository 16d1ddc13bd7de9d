"""Time per seat state per day: spans from the log, split at local midnight, and from the table."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from ctid.db.engine import session_factory
from ctid.db.schema import SeatStateLog
from ctid.reports.seat_time import by_day, seat_time, seat_time_csv, spans

SH = ZoneInfo("Asia/Shanghai")


def _at(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=SH).astimezone(UTC)


def test_spans_split_at_local_midnight() -> None:
    rows = [
        ("seat1", "ready", _at(23, 23, 0)),
        ("seat1", "paused", _at(23, 23, 30)),
        ("seat2", "ready", _at(24, 8, 0)),
    ]
    days = by_day(spans(rows, _at(24, 0, 30)), SH, date(2026, 11, 23), date(2026, 11, 24))
    assert [(d.seat, d.day) for d in days] == [
        ("seat1", date(2026, 11, 23)),
        ("seat1", date(2026, 11, 24)),
    ]
    assert days[0].seconds["ready"] == 1800 and days[0].seconds["paused"] == 1800
    assert days[1].seconds["paused"] == 1800 and days[1].seconds["talking"] == 0
    text = seat_time_csv(days)
    assert text.splitlines()[0].startswith("seat,day,ready_s")
    assert "seat1,2026-11-24,0,0,0,0,1800,0" in text


async def test_seat_time_from_the_table(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    async with sessions() as db, db.begin():
        for state, at in (
            ("ready", _at(22, 9)),  # before the period: seat1 enters the 23rd ready
            ("talking", _at(23, 10)),
            ("wrapup", _at(23, 10, 5)),
            ("ready", _at(23, 10, 6)),
        ):
            db.add(SeatStateLog(seat_id="seat1", state=state, reason=None, at=at, by="ctid"))
    [day] = await seat_time(
        sessions, "Asia/Shanghai", date(2026, 11, 23), date(2026, 11, 23), _at(23, 12)
    )
    assert day.seconds["talking"] == 300 and day.seconds["wrapup"] == 60
    assert day.seconds["ready"] == (10 * 3600) + (12 * 3600 - (10 * 3600 + 6 * 60))
