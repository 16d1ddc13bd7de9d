"""Caller profiles: a caller with every call and incident (open ones first), open-incident counts
for the callers list, the earlier calls of a number nobody in the directory has, and merging two
callers (audited). Editing a caller's details is `CallerDirectory.update` (audited there)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.clock import Clock
from ctid.db.schema import AuditLog, Call, Callback, Caller, CallerPhone, Incident
from ctid.tickets._db import caller_views, incident_view, write_unit
from ctid.tickets.directory import MAX_NOTES, MAX_PHONES, phone_plan
from ctid.tickets.errors import InvalidInputError, TicketNotFoundError
from ctid.tickets.phones import normalize_phone
from ctid.tickets.text import clip
from ctid.tickets.views import CallerView, IncidentView
from ctid.tickets.vocabulary import OPEN_STATUSES

log = structlog.get_logger(__name__)

_FILLABLE = ("employee_id", "department", "office_location", "email")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallLine:
    """One call as a caller's history shows it."""

    call_id: str
    started_at: datetime
    caller_number: str | None
    caller_name: str | None
    ivr_choice: str | None
    outcome: str | None
    answered_by_seat: str | None
    talk_s: float | None
    incident_number: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerProfile:
    caller: CallerView
    incidents: tuple[IncidentView, ...]
    """Open ones first (newest first), then the rest, newest first. Withdrawn duplicates are
    left out."""
    calls: tuple[CallLine, ...]
    """Newest first."""
    open_incidents: int


class CallerProfiles:
    """Read models over callers, calls and incidents, and the caller merge."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, cfg: Config
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._plan = phone_plan(cfg.site)

    async def profile(
        self, caller_id: int, *, incidents_limit: int = 100, calls_limit: int = 50
    ) -> CallerProfile | None:
        async with self._sessions() as s:
            row = await s.get(Caller, caller_id)
            if row is None:
                return None
            caller = (await caller_views(s, [row]))[0]
            is_open = Incident.status.in_(sorted(OPEN_STATUSES))
            incidents = await s.execute(
                select(Incident)
                .where(Incident.caller_id == caller_id, Incident.merged_into_id.is_(None))
                .order_by(
                    case((is_open, 0), else_=1),
                    Incident.created_at.desc(),
                    Incident.id.desc(),
                )
                .limit(max(1, min(incidents_limit, 1000)))
            )
            views = tuple(incident_view(r) for r in incidents.scalars())
            calls = await self._calls(s, Call.caller_id == caller_id, calls_limit)
            counts = await _open_counts(s, [caller_id])
        return CallerProfile(
            caller=caller,
            incidents=views,
            calls=tuple(calls),
            open_incidents=counts.get(caller_id, 0),
        )

    async def open_incident_counts(self, caller_ids: Iterable[int]) -> dict[int, int]:
        """caller id → number of open incidents (not resolved, closed or withdrawn); callers
        with none are absent."""
        ids = sorted(set(caller_ids))
        if not ids:
            return {}
        async with self._sessions() as s:
            return await _open_counts(s, ids)

    async def calls_from_number(
        self, number: str, *, before: datetime | None = None, limit: int = 20
    ) -> list[CallLine]:
        """Earlier calls from `number` however it is written (for a number the directory does not
        know), newest first; `before` leaves out the call being shown."""
        norm = normalize_phone(number, self._plan)
        stored = norm.number if norm else clip(number, 64)
        if stored is None:
            return []
        cond = Call.caller_number == stored
        if before is not None:
            cond = cond & (Call.started_at < before)
        async with self._sessions() as s:
            return await self._calls(s, cond, limit)

    @staticmethod
    async def _calls(s: AsyncSession, cond: Any, limit: int) -> list[CallLine]:
        rows = await s.execute(
            select(Call, Incident.number)
            .outerjoin(Incident, Incident.id == Call.incident_id)
            .where(cond)
            .order_by(Call.started_at.desc(), Call.id.desc())
            .limit(max(1, min(limit, 500)))
        )
        return [
            CallLine(
                call_id=c.call_id,
                started_at=c.started_at,
                caller_number=c.caller_number,
                caller_name=c.caller_name,
                ivr_choice=c.ivr_choice,
                outcome=c.outcome,
                answered_by_seat=c.answered_by_seat,
                talk_s=c.talk_s,
                incident_number=number,
            )
            for c, number in rows
        ]

    async def merge(self, keep_id: int, drop_id: int, actor: str) -> CallerView:
        """Merge caller `drop_id` into `keep_id`: its phones, calls, incidents and callbacks move
        over, empty details of the kept caller are filled from it (notes are appended, VIP if
        either was), and it is deleted; the audit row keeps everything it had."""
        if keep_id == drop_id:
            raise InvalidInputError("cannot merge a caller into itself")
        who = clip(actor, 64)
        if who is None:
            raise InvalidInputError("actor is required")
        now = self._clock.utcnow()
        async with write_unit(self._sessions) as s:
            keep = await s.get(Caller, keep_id)
            drop = await s.get(Caller, drop_id)
            if keep is None or drop is None:
                raise TicketNotFoundError(f"no caller {keep_id if keep is None else drop_id}")
            drop_view = (await caller_views(s, [drop]))[0]
            have = set(
                (
                    await s.execute(
                        select(CallerPhone.number_normalized).where(
                            CallerPhone.caller_id == keep_id
                        )
                    )
                ).scalars()
            )
            moving = [p for p in drop_view.phones if p.number not in have]
            if len(have) + len(moving) > MAX_PHONES:
                raise InvalidInputError(
                    f"the merged caller would have more than {MAX_PHONES} phones"
                )
            filled: dict[str, Any] = {}
            for key in _FILLABLE:
                if getattr(keep, key) is None and getattr(drop, key) is not None:
                    filled[key] = getattr(drop, key)
                    setattr(keep, key, getattr(drop, key))
            if drop.notes:
                keep.notes = (f"{keep.notes}\n{drop.notes}" if keep.notes else drop.notes)[
                    :MAX_NOTES
                ]
            keep.vip = bool(keep.vip or drop.vip)
            keep.updated_at = now
            moved: dict[str, int] = {}
            for model in (Call, Incident, Callback):
                result = await s.execute(
                    update(model)
                    .where(model.caller_id == drop_id)
                    .values(caller_id=keep_id)
                    .execution_options(synchronize_session=False)
                )
                moved[model.__tablename__] = int(getattr(result, "rowcount", 0) or 0)
            await s.execute(
                update(CallerPhone)
                .where(
                    CallerPhone.caller_id == drop_id,
                    CallerPhone.number_normalized.in_([p.number for p in moving]),
                )
                .values(caller_id=keep_id)
                .execution_options(synchronize_session=False)
            )
            await s.delete(drop)
            s.add(
                AuditLog(
                    at=now,
                    actor=who,
                    action="callers_merged",
                    target=f"caller:{keep_id}",
                    detail={
                        "merged": {
                            "id": drop_view.id,
                            "name": drop_view.name,
                            "employee_id": drop_view.employee_id,
                            "department": drop_view.department,
                            "office_location": drop_view.office_location,
                            "email": drop_view.email,
                            "vip": drop_view.vip,
                            "notes": drop_view.notes,
                            "phones": [p.number for p in drop_view.phones],
                        },
                        "filled": filled,
                        "moved": moved,
                    },
                )
            )
            await s.flush()
            view = (await caller_views(s, [keep]))[0]
        log.info("callers_merged", keep=keep_id, drop=drop_id, actor=who, moved=moved)
        return view


async def _open_counts(s: AsyncSession, ids: list[int]) -> dict[int, int]:
    rows = await s.execute(
        select(Incident.caller_id, func.count())
        .where(
            Incident.caller_id.in_(ids),
            Incident.status.in_(sorted(OPEN_STATUSES)),
            Incident.merged_into_id.is_(None),
        )
        .group_by(Incident.caller_id)
    )
    return {int(cid): int(n) for cid, n in rows if cid is not None}
