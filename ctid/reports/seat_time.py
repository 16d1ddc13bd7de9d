"""Time per seat state per seat per day, from the `seat_states` log (each row holds until the
seat's next row; a span that crosses midnight is split at midnight in the site's zone), and its CSV."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.db.schema import SeatStateLog

STATES = ("ready", "ringing", "talking", "wrapup", "paused", "logged_out")


@dataclass(frozen=True, slots=True)
class SeatDay:
    seat: str
    day: date
    seconds: dict[str, float]
    """State → seconds that day (every state in `STATES`, 0 when none)."""


@dataclass(frozen=True, slots=True)
class Span:
    seat: str
    state: str
    start: datetime
    end: datetime


def spans(rows: Sequence[tuple[str, str, datetime]], until: datetime) -> list[Span]:
    """(seat, state, at) rows in time order → spans; the last of each seat runs to `until`."""
    out: list[Span] = []
    last: dict[str, tuple[str, datetime]] = {}
    for seat, state, at in rows:
        if seat in last:
            prev_state, prev_at = last[seat]
            if at > prev_at:
                out.append(Span(seat, prev_state, prev_at, at))
        last[seat] = (state, at)
    for seat, (state, at) in last.items():
        if until > at:
            out.append(Span(seat, state, at, until))
    return out


def by_day(items: Sequence[Span], tz: tzinfo, start: date, end: date) -> list[SeatDay]:
    """Seconds per state per seat per local day in [start, end]."""
    acc: dict[tuple[str, date], dict[str, float]] = defaultdict(lambda: dict.fromkeys(STATES, 0.0))
    for span in items:
        a = span.start.astimezone(tz)
        b = span.end.astimezone(tz)
        while a < b:
            midnight = datetime.combine(a.date() + timedelta(days=1), datetime.min.time(), tz)
            piece_end = min(b, midnight)
            if start <= a.date() <= end:
                bucket = acc[(span.seat, a.date())]
                bucket[span.state] = bucket.get(span.state, 0.0) + (piece_end - a).total_seconds()
            a = piece_end
    return [SeatDay(seat, day, secs) for (seat, day), secs in sorted(acc.items())]


async def seat_time(
    sessions: async_sessionmaker[AsyncSession],
    timezone: str,
    start: date,
    end: date,
    now: datetime,
) -> list[SeatDay]:
    """Time per state per seat per day from `start` to `end` (inclusive), site days."""
    tz = ZoneInfo(timezone)
    lo = datetime.combine(start, datetime.min.time(), tz).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
    async with sessions() as db:
        # The row before the period says what state each seat entered it in.
        before = await db.execute(
            select(SeatStateLog.seat_id, SeatStateLog.state, SeatStateLog.at)
            .where(SeatStateLog.at < lo)
            .order_by(SeatStateLog.at.desc(), SeatStateLog.id.desc())
        )
        first: dict[str, tuple[str, str, datetime]] = {}
        for seat, state, _at in before.all():
            first.setdefault(seat, (seat, state, lo))
        inside = await db.execute(
            select(SeatStateLog.seat_id, SeatStateLog.state, SeatStateLog.at)
            .where(SeatStateLog.at >= lo, SeatStateLog.at < hi)
            .order_by(SeatStateLog.at, SeatStateLog.id)
        )
        rows = [*first.values(), *((s, st, at) for s, st, at in inside.all())]
    return by_day(spans(rows, min(hi, now)), tz, start, end)


def seat_time_csv(days: Sequence[SeatDay], headers: Sequence[str] | None = None) -> str:
    """One line per seat and day, seconds per state (headers may be translated)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(headers or ["seat", "day", *(f"{s}_s" for s in STATES)])
    for d in days:
        w.writerow([d.seat, d.day.isoformat(), *(round(d.seconds.get(s, 0.0)) for s in STATES)])
    return buf.getvalue()
