"""The store's call facts for the intake: every reason and call of a callback, callbacks closed
when the caller got through (audited), the stored answer of a call, the category of an IVR call."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.db.schema import AuditLog, RingAttempt
from ctid.tickets.call_facts import CallFactStore
from ctid.tickets.callbacks import CallbackStore
from ctid.tickets.facts import CallFacts, CallRecordIn, RingAttemptIn
from ctid.tickets.incidents import IncidentStore

from .conftest import T0


async def test_a_callback_keeps_each_reason_and_call_once(callbacks: CallbackStore) -> None:
    first = await callbacks.add_callback_for("13800138000", "capped", "7.1")
    again = await callbacks.add_callback_for("+86 138-0013-8000", "capped", "7.1")  # a replay
    later = await callbacks.add_callback_for("13800138000", "abandoned", "7.2")
    assert first.id == again.id == later.id
    assert first.reason == later.reason == "capped"  # the callback's first reason stays
    assert await callbacks.callback_reasons(first.id) == [("capped", "7.1"), ("abandoned", "7.2")]
    ivr = await callbacks.add_callback_for("13800138000", "after_hours")
    assert ivr.id == first.id
    assert (await callbacks.callback_reasons(first.id))[-1] == ("after_hours", None)


async def test_an_answered_call_closes_the_numbers_open_callbacks_with_an_audit_line(
    callbacks: CallbackStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    open_cb = await callbacks.add_callback_for("13800138000", "abandoned", "8.1")
    worked = await callbacks.add_callback_for("13900139000", "missed", "8.2")
    await callbacks.start_callback(worked.id, "E100")
    assert await callbacks.close_callbacks_got_through("+8613800138000", "8.9") == [open_cb.id]
    assert await callbacks.close_callbacks_got_through("13800138000", "8.9") == []  # once
    # one an agent is working on is left to that agent
    assert await callbacks.close_callbacks_got_through("13900139000", "8.10") == []
    assert await callbacks.close_callbacks_got_through("<not a number>", "8.11") == []
    by_id = {c.id: c for c in await callbacks.list_callbacks(None)}
    assert (by_id[open_cb.id].status, by_id[open_cb.id].outcome) == ("done", "caller_got_through")
    assert by_id[worked.id].status == "in_progress"
    async with sessions() as s:
        audits = (
            await s.scalars(select(AuditLog).where(AuditLog.action == "callback_closed"))
        ).all()
    assert [(a.actor, a.target) for a in audits] == [("system", f"callback {open_cb.id}")]
    assert audits[0].detail["call_id"] == "8.9"
    assert audits[0].detail["outcome"] == "caller_got_through"


async def test_the_stored_answer_and_each_seats_talk_time(
    store: IncidentStore, call_facts: CallFactStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert await store.stored_answer("9.1") is None
    await store.create_from_call(
        CallFacts(
            call_id="9.1",
            answered_at=T0,
            answered_by_seat="seat1",
            caller_number="13800138000",
            category="consultation",
        )
    )
    assert await store.stored_answer("9.1") == (T0, "seat1")
    await call_facts.record_call(
        CallRecordIn(
            call_id="9.1",
            started_at=T0 - timedelta(seconds=10),
            answered_at=T0,
            ended_at=T0 + timedelta(seconds=60),
            answered_by_seat="seat1",
            outcome="answered",
            talk_s=57.0,
            category="consultation",
            transferred_to="seat3",
            ring_attempts=(
                RingAttemptIn(
                    seat_id="seat1",
                    started_at=T0 - timedelta(seconds=2),
                    ended_at=T0,
                    outcome="answered",
                    ring_s=2.0,
                    talk_s=20.0,
                ),
                RingAttemptIn(
                    seat_id="seat3",
                    started_at=T0 + timedelta(seconds=20),
                    ended_at=T0 + timedelta(seconds=23),
                    outcome="answered",
                    ring_s=3.0,
                    talk_s=37.0,
                ),
            ),
        )
    )
    async with sessions() as s:
        rings = (await s.execute(select(RingAttempt.seat_id, RingAttempt.talk_s))).all()
    assert sorted(rings) == [("seat1", 20.0), ("seat3", 37.0)]
    incident = await store.incident_for_call("9.1")
    assert incident is not None and incident.request_type == "consultation"
