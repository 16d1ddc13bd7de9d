"""The call facts in the database (`CallFactStore`): one `calls` row per call and its
`ring_attempts`, written when the call ends and replaced if written again."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.db.schema import Call, RingAttempt
from ctid.tickets._db import aware, identify_caller, write_unit
from ctid.tickets.directory import phone_plan
from ctid.tickets.errors import InvalidInputError
from ctid.tickets.facts import CallRecordIn
from ctid.tickets.text import clip


class CallFactStore:
    """Call facts in the database. One transaction per method call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cfg: Config) -> None:
        self._sessions = sessions
        self._plan = phone_plan(cfg.site)

    async def record_call(self, rec: CallRecordIn) -> None:
        """Store a call's facts and its ring attempts; writing the same call again replaces them
        (the incident link made by `create_from_call` is kept)."""
        call_id = clip(rec.call_id, 64)
        if call_id is None:
            raise InvalidInputError("call_id is required")
        for dt in (rec.started_at, rec.queued_at, rec.answered_at, rec.ended_at):
            if dt is not None:
                aware(dt)
        async with write_unit(self._sessions, lock=f"call:{call_id}") as s:
            number, caller_id, name = await identify_caller(
                s, self._plan, rec.caller_number, rec.caller_name
            )
            row = await s.scalar(select(Call).where(Call.call_id == call_id))
            if row is None:
                row = Call(call_id=call_id)
                s.add(row)
            row.caller_number = number
            row.caller_name = name
            row.caller_id = caller_id if caller_id is not None else row.caller_id
            row.queue = clip(rec.queue, 64)
            row.ivr_choice = clip(rec.ivr_choice, 32)
            row.category = clip(rec.category, 32)
            row.started_at = rec.started_at
            row.queued_at = rec.queued_at
            row.answered_at = rec.answered_at
            row.ended_at = rec.ended_at
            row.answered_by_seat = clip(rec.answered_by_seat, 64)
            row.answer_ring = rec.answer_ring
            row.within_rings = rec.within_rings
            row.outcome = clip(rec.outcome, 32)
            row.talk_s = rec.talk_s
            row.capped = rec.capped
            row.transferred_to = clip(rec.transferred_to, 64)
            await s.flush()
            await s.execute(delete(RingAttempt).where(RingAttempt.call_id == call_id))
            for ring in rec.ring_attempts:
                seat = clip(ring.seat_id, 64)
                if seat is None:
                    continue
                s.add(
                    RingAttempt(
                        call_id=call_id,
                        seat_id=seat,
                        started_at=aware(ring.started_at),
                        ended_at=aware(ring.ended_at) if ring.ended_at else None,
                        outcome=clip(ring.outcome, 32),
                        ring_s=ring.ring_s,
                        talk_s=ring.talk_s,
                    )
                )
