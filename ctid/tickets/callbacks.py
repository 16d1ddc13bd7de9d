"""The callback list in the database (`CallbackStore`): promises to call a number back, one open
per number, worked by an agent until reached, failed or out of attempts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import structlog
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.clock import Clock
from ctid.core.errors import TransitionError
from ctid.db.schema import AuditLog, Callback, CallbackCall, CallerPhone, Incident
from ctid.tickets._db import callback_view, caller_ids_for, write_unit
from ctid.tickets.directory import phone_plan
from ctid.tickets.errors import InvalidInputError, TicketNotFoundError, VersionConflictError
from ctid.tickets.numbers import IncidentNumbers
from ctid.tickets.phones import normalize_phone
from ctid.tickets.text import clip, one_line
from ctid.tickets.views import (
    CallbackView,
)
from ctid.tickets.vocabulary import (
    CALLBACK_ACTIVE,
    CALLBACK_GOT_THROUGH,
    CALLBACK_OUTCOMES,
    CALLBACK_REASONS,
)

log = structlog.get_logger(__name__)


class CallbackStore:
    """Callbacks in the database. One transaction per method call."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        cfg: Config,
        *,
        max_callback_attempts: int = 3,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._plan = phone_plan(cfg.site)
        self._numbers = IncidentNumbers(cfg.incidents.number_prefix)
        self._max_callback_attempts = max_callback_attempts

    async def add_callback(
        self, number: str, reason: str, call_id: str | None = None
    ) -> CallbackView:
        """Promise to call `number` back. One open callback per number: asking again returns
        the one already on the list."""
        if reason not in CALLBACK_REASONS:
            raise InvalidInputError(f"reason must be one of {', '.join(CALLBACK_REASONS)}")
        norm = normalize_phone(number, self._plan)
        if norm is None:
            raise InvalidInputError(f"{one_line(number)[:40]!r} is not a phone number to call back")
        now = self._clock.utcnow()
        async with write_unit(self._sessions, lock=f"callback:{norm.number}") as s:
            existing = await s.scalar(
                select(Callback)
                .where(
                    Callback.caller_number == norm.number,
                    Callback.status.in_(CALLBACK_ACTIVE),
                )
                .order_by(Callback.id)
                .limit(1)
            )
            if existing is not None:
                log.info("callback_deduplicated", callback_id=existing.id, reason=reason)
                return callback_view(existing)
            ids = await caller_ids_for(s, norm.number)
            row = Callback(
                caller_number=norm.number,
                caller_id=ids[0] if len(ids) == 1 else None,
                reason=reason,
                call_id=clip(call_id, 64),
                requested_at=now,
                status="open",
                attempts=0,
                updated_at=now,
            )
            s.add(row)
            await s.flush()
            view = callback_view(row)
        log.info("callback_added", callback_id=view.id, reason=reason, call_id=view.call_id)
        return view

    async def add_callbacks(
        self, s: AsyncSession, wanted: Sequence[tuple[str, str, str | None]]
    ) -> list[CallbackView | None]:
        """`add_callback_for` for many (number, reason, call id) inside the caller's
        transaction, in a few statements. A number that is not one to call back gives None
        (logged)."""
        norms: list[str | None] = []
        for number, reason, call_id in wanted:
            if reason not in CALLBACK_REASONS:
                raise InvalidInputError(f"reason must be one of {', '.join(CALLBACK_REASONS)}")
            phone = normalize_phone(number, self._plan)
            if phone is None:
                log.warning("callback_not_recorded", call_id=call_id, error="not a phone number")
            norms.append(None if phone is None else phone.number)
        numbers = sorted({n for n in norms if n is not None})
        if not numbers:
            return [None] * len(norms)
        open_now: dict[str, Callback] = {}
        for row in await s.scalars(
            select(Callback)
            .where(Callback.caller_number.in_(numbers), Callback.status.in_(CALLBACK_ACTIVE))
            .order_by(Callback.id)
        ):
            open_now.setdefault(row.caller_number, row)
        owners: dict[str, set[int]] = {}
        for number, cid in await s.execute(
            select(CallerPhone.number_normalized, CallerPhone.caller_id).where(
                CallerPhone.number_normalized.in_(numbers)
            )
        ):
            owners.setdefault(number, set()).add(int(cid))
        now = self._clock.utcnow()
        new: dict[str, dict[str, object]] = {}
        for (_, reason, call_id), norm in zip(wanted, norms, strict=True):
            if norm is None or norm in open_now or norm in new:
                continue
            ids = owners.get(norm, set())
            new[norm] = {
                "caller_number": norm,
                "caller_id": min(ids) if len(ids) == 1 else None,
                "reason": reason,
                "call_id": clip(call_id, 64),
                "requested_at": now,
                "status": "open",
                "attempts": 0,
                "updated_at": now,
            }
        if new:
            # Core inserts (executemany): the ORM would insert row by row to read ids back.
            await s.execute(
                insert(Callback).execution_options(render_nulls=True), list(new.values())
            )
            for row in await s.scalars(
                select(Callback).where(
                    Callback.caller_number.in_(list(new)), Callback.status == "open"
                )
            ):
                open_now[row.caller_number] = row
        # Every reason and call that fed a callback is kept (as `add_callback_for` does).
        fed = {
            (open_now[norm].id, reason, clip(call_id, 64))
            for (_, reason, call_id), norm in zip(wanted, norms, strict=True)
            if norm is not None
        }
        known = set(
            (
                await s.execute(
                    select(
                        CallbackCall.callback_id, CallbackCall.reason, CallbackCall.call_id
                    ).where(CallbackCall.callback_id.in_(sorted({cb for cb, _, _ in fed})))
                )
            ).tuples()
        )
        rows = [
            {"callback_id": cb, "reason": reason, "call_id": call, "added_at": now}
            for cb, reason, call in sorted(fed - known, key=str)
        ]
        if rows:
            await s.execute(insert(CallbackCall).execution_options(render_nulls=True), rows)
        return [None if norm is None else callback_view(open_now[norm]) for norm in norms]

    async def list_callbacks(
        self, status: str | Iterable[str] | None = CALLBACK_ACTIVE, limit: int = 200
    ) -> list[CallbackView]:
        """Callbacks in `status` (default: open and in progress; None: all), oldest first."""
        query = select(Callback)
        if isinstance(status, str):
            query = query.where(Callback.status == status)
        elif status is not None:
            query = query.where(Callback.status.in_(list(status)))
        query = query.order_by(Callback.requested_at, Callback.id).limit(max(1, min(limit, 1000)))
        async with self._sessions() as s:
            return [callback_view(c) for c in (await s.execute(query)).scalars()]

    async def start_callback(self, callback_id: int, worked_by: str) -> CallbackView:
        """An agent starts calling back: open → in_progress, one more attempt."""
        who = clip(worked_by, 32)
        if who is None:
            raise InvalidInputError("worked_by is required")
        async with write_unit(self._sessions) as s:
            row = await s.get(Callback, callback_id)
            if row is None:
                raise TicketNotFoundError(f"no callback {callback_id}")
            if row.status == "in_progress":
                raise VersionConflictError(
                    f"callback {callback_id} is being worked by {row.worked_by}"
                )
            if row.status != "open":
                raise TransitionError(f"cannot start callback {callback_id}: it is {row.status}")
            row.status = "in_progress"
            row.attempts += 1
            row.worked_by = who
            row.updated_at = self._clock.utcnow()
            await s.flush()
            return callback_view(row)

    async def finish_callback(
        self,
        callback_id: int,
        outcome: str,
        *,
        worked_by: str | None = None,
        incident_number: str | None = None,
    ) -> CallbackView:
        """Record how the call-back went: reached/not_needed → done, wrong_number → failed,
        no_answer → open again (failed after `max_callback_attempts`)."""
        nxt = CALLBACK_OUTCOMES.get(outcome)
        if nxt is None:
            raise InvalidInputError(f"outcome must be one of {', '.join(CALLBACK_OUTCOMES)}")
        async with write_unit(self._sessions) as s:
            row = await s.get(Callback, callback_id)
            if row is None:
                raise TicketNotFoundError(f"no callback {callback_id}")
            if row.status not in CALLBACK_ACTIVE:
                raise TransitionError(f"cannot finish callback {callback_id}: it is {row.status}")
            if nxt == "open" and row.attempts >= self._max_callback_attempts:
                nxt = "failed"
            if incident_number is not None:
                parsed = self._numbers.parse(incident_number)
                inc_id = await s.scalar(select(Incident.id).where(Incident.number == parsed))
                if inc_id is None:
                    raise TicketNotFoundError(f"no incident {one_line(incident_number)[:40]!r}")
                row.incident_id = inc_id
            row.status = nxt
            row.outcome = outcome
            if worked_by:
                row.worked_by = clip(worked_by, 32)
            row.updated_at = self._clock.utcnow()
            await s.flush()
            return callback_view(row)

    async def add_callback_for(
        self, number: str, reason: str, call_id: str | None = None
    ) -> CallbackView:
        """`add_callback`, and the reason and call are kept with the callback even when the
        number already had an open one (a capped call after an abandoned one keeps both).
        Calling it again with the same reason and call adds nothing."""
        view = await self.add_callback(number, reason, call_id)
        call = clip(call_id, 64)
        async with write_unit(self._sessions, lock=f"callback:{view.caller_number}") as s:
            known = await s.scalar(
                select(CallbackCall.id).where(
                    CallbackCall.callback_id == view.id,
                    CallbackCall.reason == reason,
                    CallbackCall.call_id.is_(None)
                    if call is None
                    else CallbackCall.call_id == call,
                )
            )
            if known is None:
                s.add(
                    CallbackCall(
                        callback_id=view.id,
                        reason=reason,
                        call_id=call,
                        added_at=self._clock.utcnow(),
                    )
                )
        return view

    async def callback_reasons(self, callback_id: int) -> list[tuple[str, str | None]]:
        """Every (reason, call id) that fed a callback, oldest first."""
        query = (
            select(CallbackCall.reason, CallbackCall.call_id)
            .where(CallbackCall.callback_id == callback_id)
            .order_by(CallbackCall.added_at, CallbackCall.id)
        )
        async with self._sessions() as s:
            return [(reason, call) for reason, call in await s.execute(query)]

    async def close_callbacks_got_through(self, number: str, call_id: str) -> list[int]:
        """The caller got through on call `call_id`: the number's open callbacks are done
        (outcome `caller_got_through`), each with an audit line. One being worked by an agent
        right now is left to that agent. Returns the ids closed."""
        norm = normalize_phone(number, self._plan)
        if norm is None:
            return []
        now = self._clock.utcnow()
        closed: list[int] = []
        async with write_unit(self._sessions, lock=f"callback:{norm.number}") as s:
            rows = (
                await s.scalars(
                    select(Callback).where(
                        Callback.caller_number == norm.number, Callback.status == "open"
                    )
                )
            ).all()
            for row in rows:
                row.status = "done"
                row.outcome = CALLBACK_GOT_THROUGH
                row.updated_at = now
                closed.append(row.id)
                s.add(
                    AuditLog(
                        at=now,
                        actor="system",
                        action="callback_closed",
                        target=f"callback {row.id}",
                        detail={
                            "outcome": CALLBACK_GOT_THROUGH,
                            "call_id": clip(call_id, 64),
                            "number": norm.number,
                        },
                    )
                )
        for cid in closed:
            log.info("callback_closed_got_through", callback_id=cid, call_id=call_id)
        return closed
