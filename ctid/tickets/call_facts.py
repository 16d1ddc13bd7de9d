"""The call facts in the database (`CallFactStore`): one `calls` row per call and its
`ring_attempts`, written when the call ends and replaced if written again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.db.schema import Call, RingAttempt
from ctid.tickets._db import Identity, aware, identify_caller, identify_callers, write_unit
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
            _fill(row, rec, (number, caller_id, name))
            await s.flush()
            await s.execute(delete(RingAttempt).where(RingAttempt.call_id == call_id))
            s.add_all(RingAttempt(**r) for r in ring_rows(call_id, rec))

    async def record_calls(
        self,
        s: AsyncSession,
        recs: Sequence[CallRecordIn],
        incident_ids: Mapping[str, int] | None = None,
    ) -> None:
        """`record_call` for many calls (distinct ids) inside the caller's transaction, in a few
        statements; `incident_ids` links calls to the incidents just made for them."""
        for rec in recs:
            if clip(rec.call_id, 64) is None:
                raise InvalidInputError("call_id is required")
            for dt in (rec.started_at, rec.queued_at, rec.answered_at, rec.ended_at):
                if dt is not None:
                    aware(dt)
        ids = [str(clip(rec.call_id, 64)) for rec in recs]
        existing = {
            row.call_id: row for row in await s.scalars(select(Call).where(Call.call_id.in_(ids)))
        }
        who = await identify_callers(
            s, self._plan, ((r.caller_number, r.caller_name) for r in recs)
        )
        links = incident_ids or {}
        new: list[dict[str, Any]] = []
        for call_id, rec, identity in zip(ids, recs, who, strict=True):
            row = existing.get(call_id)
            if row is None:
                # Core inserts (executemany): the ORM would insert row by row to read ids back.
                values = {"caller_id": None, **_values(rec, identity)}
                values.update(call_id=call_id, incident_id=links.get(call_id))
                new.append(values)
                continue
            _fill(row, rec, identity)
            if call_id in links:
                row.incident_id = links[call_id]
        if new:
            await s.execute(insert(Call).execution_options(render_nulls=True), new)
        await s.flush()
        if existing:
            await s.execute(delete(RingAttempt).where(RingAttempt.call_id.in_(list(existing))))
        rings = [r for call_id, rec in zip(ids, recs, strict=True) for r in ring_rows(call_id, rec)]
        if rings:
            await s.execute(insert(RingAttempt).execution_options(render_nulls=True), rings)


def _fill(row: Call, rec: CallRecordIn, identity: Identity) -> None:
    """A call's facts onto its row (the incident link and a known caller are kept)."""
    for name, value in _values(rec, identity).items():
        setattr(row, name, value)


def _values(rec: CallRecordIn, identity: Identity) -> dict[str, Any]:
    """The columns a call record sets (a caller not identified now keeps the one stored)."""
    number, caller_id, name = identity
    values: dict[str, Any] = {
        "caller_number": number,
        "caller_name": name,
        "queue": clip(rec.queue, 64),
        "ivr_choice": clip(rec.ivr_choice, 32),
        "category": clip(rec.category, 32),
        "started_at": rec.started_at,
        "queued_at": rec.queued_at,
        "answered_at": rec.answered_at,
        "ended_at": rec.ended_at,
        "answered_by_seat": clip(rec.answered_by_seat, 64),
        "answer_ring": rec.answer_ring,
        "within_rings": rec.within_rings,
        "outcome": clip(rec.outcome, 32),
        "talk_s": rec.talk_s,
        "capped": rec.capped,
        "transferred_to": clip(rec.transferred_to, 64),
    }
    if caller_id is not None:
        values["caller_id"] = caller_id
    return values


def ring_rows(call_id: str, rec: CallRecordIn) -> list[dict[str, Any]]:
    """The `ring_attempts` rows of a call (a ring with no seat is left out)."""
    out: list[dict[str, Any]] = []
    for ring in rec.ring_attempts:
        seat = clip(ring.seat_id, 64)
        if seat is None:
            continue
        out.append(
            {
                "call_id": call_id,
                "seat_id": seat,
                "started_at": aware(ring.started_at),
                "ended_at": aware(ring.ended_at) if ring.ended_at else None,
                "outcome": clip(ring.outcome, 32),
                "ring_s": ring.ring_s,
                "talk_s": ring.talk_s,
            }
        )
    return out
