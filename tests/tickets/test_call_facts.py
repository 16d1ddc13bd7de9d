"""CallFactStore against SQLite and PostgreSQL: call rows and ring attempts, idempotent writes."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.db.schema import Call, RingAttempt
from ctid.tickets.call_facts import CallFactStore
from ctid.tickets.facts import CallFacts, CallRecordIn, RingAttemptIn
from ctid.tickets.incidents import IncidentStore

from .conftest import T0

LINK = re.compile(r"https://desk\.example\.com(/[^\s?]+)(\?decision=\w+)?")


async def count(sessions: async_sessionmaker[AsyncSession], model: type[object]) -> int:
    async with sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


def facts(call_id: str = "1763775000.1", **kw: object) -> CallFacts:
    base: dict[str, object] = {
        "call_id": call_id,
        "answered_at": T0,
        "answered_by_seat": "seat1",
        "caller_number": "13800138000",
        "caller_name": "ZHANG SAN",
        "ivr_digit": "2",
    }
    base.update(kw)
    return CallFacts(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- call facts


async def test_record_call_is_idempotent_and_keeps_the_incident_link(
    store: IncidentStore, call_facts: CallFactStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    inc = await store.create_from_call(facts("5.1"))
    rec = CallRecordIn(
        call_id="5.1",
        started_at=T0 - timedelta(seconds=20),
        caller_number="13800138000",
        queue="shared",
        ivr_choice="2",
        answered_at=T0,
        ended_at=T0 + timedelta(minutes=4),
        answered_by_seat="seat1",
        answer_ring=2,
        within_rings=True,
        outcome="answered",
        talk_s=240.0,
        ring_attempts=(
            RingAttemptIn(
                seat_id="seat2",
                started_at=T0 - timedelta(seconds=15),
                ended_at=T0 - timedelta(seconds=5),
                outcome="no_answer",
                ring_s=10.0,
            ),
            RingAttemptIn(
                seat_id="seat1", started_at=T0 - timedelta(seconds=5), ended_at=T0, ring_s=5.0
            ),
        ),
    )
    await call_facts.record_call(rec)
    await call_facts.record_call(rec)
    assert await count(sessions, Call) == 1
    assert await count(sessions, RingAttempt) == 2
    async with sessions() as s:
        call = await s.scalar(select(Call))
        assert call is not None
        assert (call.incident_id, call.talk_s, call.answer_ring, call.caller_number) == (
            inc.id,
            240.0,
            2,
            "+8613800138000",
        )
    await call_facts.record_call(CallRecordIn(call_id="6.1", started_at=T0, outcome="abandoned"))
    assert await count(sessions, Call) == 2
    assert await store.incident_for_call("6.1") is None
    # The call row may come first (the tracker wrote it): the incident links to it.
    late = await store.create_from_call(facts("6.1"))
    linked = await store.incident_for_call("6.1")
    assert linked is not None and linked.number == late.number
    assert await count(sessions, Call) == 2
