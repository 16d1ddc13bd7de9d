"""`SqlSpyStore`: the `ctid.calls.spy_types.SpyStore` port over SQLAlchemy — one `spy_sessions` row per
session and an `audit_log` entry for each step, written in the same transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.calls.spy_types import SpyAudit, SpyRow
from ctid.core.errors import StoreError
from ctid.db.schema import AuditLog
from ctid.db.schema import SpySession as SpySessionRow


def _entry(audit: SpyAudit, **more: Any) -> AuditLog:
    return AuditLog(
        at=audit.at,
        actor=audit.actor[:64] or "unknown",
        action=audit.action,
        target=audit.target,
        detail={**audit.detail, **more},
    )


class SqlSpyStore:
    """Implements `SpyStore`. Every failure of the database surfaces as `StoreError`."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @asynccontextmanager
    async def _unit(self, what: str) -> AsyncIterator[AsyncSession]:
        try:
            async with self._sessions() as db, db.begin():
                yield db
        except SQLAlchemyError as exc:
            raise StoreError(f"spy store: {what}: {exc}") from exc

    async def add(self, row: SpyRow, audit: SpyAudit) -> int:
        async with self._unit("add session") as db:
            session = SpySessionRow(
                supervisor=row.supervisor,
                seat_id=row.seat_id,
                call_id=row.call_id,
                mode=row.mode,
                requested_at=row.requested_at,
            )
            db.add(session)
            await db.flush()
            db.add(_entry(audit, session=session.id))
            return session.id

    async def _update(self, what: str, session_id: int, **values: Any) -> None:
        async with self._unit(what) as db:
            await db.execute(
                update(SpySessionRow).where(SpySessionRow.id == session_id).values(**values)
            )

    async def set_action(self, session_id: int, action_id: str) -> None:
        await self._update("set action id", session_id, action_id=action_id[:64])

    async def set_spy_channel(self, session_id: int, spy_channel: str) -> None:
        await self._update("set spy channel", session_id, spy_channel=spy_channel[:128])

    async def set_started(
        self, session_id: int, at: datetime, spy_channel: str, audit: SpyAudit
    ) -> None:
        async with self._unit("set started") as db:
            await db.execute(
                update(SpySessionRow)
                .where(SpySessionRow.id == session_id)
                .values(started_at=at, stopped_at=None, spy_channel=spy_channel[:128])
            )
            db.add(_entry(audit))

    async def set_stopped(self, session_id: int, at: datetime, audit: SpyAudit) -> None:
        async with self._unit("set stopped") as db:
            await db.execute(
                update(SpySessionRow).where(SpySessionRow.id == session_id).values(stopped_at=at)
            )
            db.add(_entry(audit))

    async def audit(self, entry: SpyAudit) -> None:
        async with self._unit("audit") as db:
            db.add(_entry(entry))
