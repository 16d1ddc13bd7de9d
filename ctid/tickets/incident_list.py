"""The open-incident list a page at a time: only the list's columns (no ORM entities), newest
first, keyset-paged on (created_at, id) with an incident number as the cursor."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import fields
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.db.schema import Incident
from ctid.tickets.views import IncidentPage, IncidentRow
from ctid.tickets.vocabulary import OPEN_STATUSES

PAGE_ROWS = 50
MAX_PAGE_ROWS = 200

_COLUMNS = tuple(getattr(Incident, f.name) for f in fields(IncidentRow))
"""The list's columns in `IncidentRow`'s field order (rows are built positionally)."""


class IncidentList:
    """Reads pages of the open-incident list (one short transaction per page).
    `parse_number` turns what was typed into a stored number (`IncidentNumbers.parse`)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        parse_number: Callable[[str], str | None],
    ) -> None:
        self._sessions = sessions
        self._parse = parse_number

    async def page(
        self,
        *,
        owner_seat: str | None = None,
        owner_group: str | None = None,
        owner_employee: str | None = None,
        statuses: Iterable[str] | None = None,
        before: str | None = None,
        after: str | None = None,
        limit: int = PAGE_ROWS,
    ) -> IncidentPage:
        """Incidents not resolved or closed (or in `statuses`) matching every given owner
        filter, newest first: the newest `limit`, or those just older than the incident
        `before` / just newer than `after`. A cursor that is unknown, or whose side of the
        list has run out (fewer than `limit` newer rows, no older row), gives the newest page."""
        if before is not None and after is not None:
            raise ValueError("give before or after, not both")
        limit = max(1, min(limit, MAX_PAGE_ROWS))
        wanted = sorted(set(statuses) if statuses is not None else OPEN_STATUSES)
        query = select(*_COLUMNS).where(Incident.status.in_(wanted))
        if owner_seat is not None:
            query = query.where(Incident.owner_seat == owner_seat)
        if owner_group is not None:
            query = query.where(Incident.owner_group == owner_group)
        if owner_employee is not None:
            query = query.where(Incident.owner_employee == owner_employee)
        key = tuple_(Incident.created_at, Incident.id)
        newest_first = (Incident.created_at.desc(), Incident.id.desc())
        async with self._sessions() as s:
            anchor = await self._position(s, before or after)
            if anchor is not None and before is not None:
                rows = await _rows(s, query.where(key < anchor).order_by(*newest_first), limit)
                if rows:
                    return _page(rows, limit, newer=rows[0].number)
            elif anchor is not None:
                oldest_first = (Incident.created_at.asc(), Incident.id.asc())
                rows = await _rows(s, query.where(key > anchor).order_by(*oldest_first), limit)
                if len(rows) > limit:
                    shown = rows[:limit][::-1]
                    return IncidentPage(
                        rows=tuple(shown), newer=shown[0].number, older=shown[-1].number
                    )
            return _page(await _rows(s, query.order_by(*newest_first), limit), limit, newer=None)

    async def _position(self, s: AsyncSession, entered: str | None) -> tuple[object, ...] | None:
        """The cursor incident's (created_at, id); compared as a plain tuple so SQLAlchemy binds
        each value with its column's type."""
        if entered is None:
            return None
        number = self._parse(entered)
        if number is None:
            return None
        found = (
            await s.execute(
                select(Incident.created_at, Incident.id).where(Incident.number == number)
            )
        ).first()
        if found is None:
            return None
        return tuple(found)


async def _rows(s: AsyncSession, query: Select[*tuple[Any, ...]], limit: int) -> list[IncidentRow]:
    """Up to `limit + 1` rows (the extra one says whether there is more)."""
    result = await s.execute(query.limit(limit + 1))
    return [IncidentRow(*r) for r in result]


def _page(rows: list[IncidentRow], limit: int, *, newer: str | None) -> IncidentPage:
    shown = rows[:limit]
    older = shown[-1].number if len(rows) > limit else None
    return IncidentPage(rows=tuple(shown), newer=newer, older=older)
