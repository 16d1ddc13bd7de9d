"""The desk's incident drafts, one per call (`DeskDrafts`): kept as the agent types, so a new ring
never touches another call's form and a reload loses nothing; marked saved with the incident."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.core.actor import Actor
from ctid.core.clock import Clock
from ctid.core.errors import RequestRefusedError, StateConflictError, StoreError
from ctid.db.schema import DeskDraft

DRAFT_FIELDS = (
    "caller_id",
    "caller_name",
    "phone",
    "department",
    "office",
    "request_type",
    "category",
    "impact",
    "urgency",
    "summary",
    "description",
)
KEEP_SAVED = timedelta(hours=12)
"""A saved card stays listed this long (its incident number shown) after its save."""


@dataclass(frozen=True, slots=True)
class DraftView:
    call_id: str
    seat_id: str
    fields: Mapping[str, Any]
    number: str | None
    saved: bool
    updated_at: datetime


def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in DRAFT_FIELDS:
        value = fields.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise RequestRefusedError(f"{name} must be text")
        out[name] = value[:4000] if isinstance(value, str) else value
    return out


@dataclass
class DeskDrafts:
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock

    async def put(
        self, actor: Actor, seat_id: str, call_id: str, fields: Mapping[str, Any]
    ) -> DraftView:
        """Create or replace the draft of `call_id` (it belongs to the seat that first wrote it)."""
        clean = _clean(fields)
        now = self.clock.utcnow()
        try:
            async with self.sessions() as db, db.begin():
                row = await db.get(DeskDraft, call_id)
                if row is None:
                    row = DeskDraft(
                        call_id=call_id,
                        seat_id=seat_id,
                        employee_id=actor.employee_id,
                        fields=clean,
                        number=None,
                        saved=False,
                        updated_at=now,
                    )
                    db.add(row)
                else:
                    if row.seat_id != seat_id:
                        raise StateConflictError("this call's draft belongs to another seat")
                    row.fields = clean
                    row.updated_at = now
                return _view(row)
        except SQLAlchemyError as exc:
            raise StoreError(f"drafts: {exc}") from exc

    async def for_seat(self, seat_id: str) -> Sequence[DraftView]:
        """The seat's unsaved drafts and its recently saved ones, oldest first."""
        since = self.clock.utcnow() - KEEP_SAVED
        try:
            async with self.sessions() as db:
                rows = await db.scalars(
                    select(DeskDraft)
                    .where(DeskDraft.seat_id == seat_id, DeskDraft.updated_at >= since)
                    .order_by(DeskDraft.updated_at)
                )
                unsaved = await db.scalars(
                    select(DeskDraft).where(
                        DeskDraft.seat_id == seat_id,
                        DeskDraft.saved.is_(False),
                        DeskDraft.updated_at < since,
                    )
                )
                return [_view(r) for r in [*unsaved.all(), *rows.all()]]
        except SQLAlchemyError as exc:
            raise StoreError(f"drafts: {exc}") from exc

    async def saved(self, call_id: str, number: str) -> None:
        try:
            async with self.sessions() as db, db.begin():
                row = await db.get(DeskDraft, call_id)
                if row is not None:
                    row.saved = True
                    row.number = number
                    row.updated_at = self.clock.utcnow()
        except SQLAlchemyError as exc:
            raise StoreError(f"drafts: {exc}") from exc

    async def discard(self, seat_id: str, call_id: str) -> None:
        """Close a card the agent no longer needs (a saved one, or a missed call's)."""
        try:
            async with self.sessions() as db, db.begin():
                row = await db.get(DeskDraft, call_id)
                if row is not None and row.seat_id == seat_id:
                    row.saved = True
                    row.updated_at = self.clock.utcnow() - KEEP_SAVED - timedelta(seconds=1)
        except SQLAlchemyError as exc:
            raise StoreError(f"drafts: {exc}") from exc


def _view(row: DeskDraft) -> DraftView:
    return DraftView(
        call_id=row.call_id,
        seat_id=row.seat_id,
        fields=dict(row.fields or {}),
        number=row.number,
        saved=row.saved,
        updated_at=row.updated_at,
    )
