"""`SqlSeatLog`: the `ctid.calls.seat_desk.SeatLog` port over SQLAlchemy — one `seat_states` row
and one `audit_log` entry per seat change, in the same transaction; names of the staff."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.calls.seat_desk import MISSED_RINGS, SeatChange, TodaySoFar
from ctid.core.errors import StoreError
from ctid.db.schema import AuditLog, Call, RingAttempt, SeatStateLog, User

_LOG_ROW = insert(SeatStateLog)
_AUDIT_ROW = insert(AuditLog)


class SqlSeatLog:
    """Implements `SeatLog`. Every failure of the database surfaces as `StoreError`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, change: SeatChange) -> None:
        at = datetime.fromtimestamp(change.at, UTC)
        by = change.by[:64]
        try:
            # Two prepared Core inserts on the session's connection, not the ORM: a seat changes
            # state several times per call, and the ORM's flush cost the loop ~1.5 ms each time.
            async with self._sessions() as db, db.begin():
                conn = await db.connection()
                await conn.execute(
                    _LOG_ROW,
                    {
                        "seat_id": change.seat,
                        "state": change.state.value,
                        "reason": change.reason,
                        "at": at,
                        "by": by,
                    },
                )
                await conn.execute(
                    _AUDIT_ROW,
                    {
                        "at": at,
                        "actor": by,
                        "action": "seat_state",
                        "target": change.seat,
                        "detail": {"state": change.state.value, "reason": change.reason},
                    },
                )
        except SQLAlchemyError as exc:
            raise StoreError(f"seat log: {exc}") from exc

    async def names(self, employee_ids: Sequence[str]) -> Mapping[str, str]:
        try:
            async with self._sessions() as db:
                rows = await db.execute(
                    select(User.employee_id, User.name).where(User.employee_id.in_(employee_ids))
                )
                return {emp: name for emp, name in rows.all()}
        except SQLAlchemyError as exc:
            raise StoreError(f"seat log: names: {exc}") from exc

    async def today(self, lo: datetime, hi: datetime) -> TodaySoFar:
        """What the database holds of the seats' day [`lo`, `hi`): the calls each seat answered
        (the first answer is the call's row, a transfer's is its answered ring), the talk of the
        calls that ended, credited to the seat that answered first, and the rings let run out —
        the same facts the seat desk counts live."""
        # Every call of the day started at most a day before it ends: the bound lets the
        # database use its index on `started_at` instead of reading every call ever stored.
        since = lo - timedelta(days=1)
        answered: set[tuple[str, str]] = set()
        talk: dict[str, float] = {}
        missed: dict[str, int] = {}
        try:
            async with self._sessions() as db:
                first = select(Call.call_id, Call.answered_by_seat).where(
                    Call.started_at >= since,
                    Call.answered_at >= lo,
                    Call.answered_at < hi,
                    Call.answered_by_seat.is_not(None),
                )
                for call_id, seat in await db.execute(first):
                    if seat:
                        answered.add((call_id, seat))
                legs = (
                    select(RingAttempt.call_id, RingAttempt.seat_id)
                    .join(Call, Call.call_id == RingAttempt.call_id)
                    .where(
                        Call.started_at >= since,
                        RingAttempt.started_at >= lo,
                        RingAttempt.started_at < hi,
                        RingAttempt.outcome == "answered",
                    )
                )
                for call_id, seat in await db.execute(legs):
                    answered.add((call_id, seat))
                talked = (
                    select(Call.answered_by_seat, func.sum(Call.talk_s))
                    .where(
                        Call.started_at >= since,
                        Call.ended_at >= lo,
                        Call.ended_at < hi,
                        Call.answered_by_seat.is_not(None),
                        Call.talk_s.is_not(None),
                    )
                    .group_by(Call.answered_by_seat)
                )
                for seat, seconds in await db.execute(talked):
                    if seat:
                        talk[seat] = float(seconds or 0.0)
                rings = (
                    select(RingAttempt.seat_id, func.count())
                    .join(Call, Call.call_id == RingAttempt.call_id)
                    .where(
                        Call.started_at >= since,
                        RingAttempt.started_at >= lo,
                        RingAttempt.started_at < hi,
                        RingAttempt.outcome.in_(MISSED_RINGS),
                    )
                    .group_by(RingAttempt.seat_id)
                )
                for seat, n in await db.execute(rings):
                    missed[seat] = int(n)
        except SQLAlchemyError as exc:
            raise StoreError(f"seat log: today: {exc}") from exc
        return TodaySoFar(frozenset(answered), talk, missed)
