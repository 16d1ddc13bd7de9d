"""`SqlSeatLog`: the `ctid.calls.seat_desk.SeatLog` port over SQLAlchemy — one `seat_states` row
and one `audit_log` entry per seat change, in the same transaction; names of the staff."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.calls.seat_desk import SeatChange
from ctid.core.errors import StoreError
from ctid.db.schema import AuditLog, SeatStateLog, User

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
