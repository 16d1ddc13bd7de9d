"""CallbackStore against SQLite and PostgreSQL: one open callback per number, retries, outcomes."""

from __future__ import annotations

import asyncio

import pytest

from ctid.core.errors import TransitionError
from ctid.tickets.callbacks import CallbackStore
from ctid.tickets.errors import (
    InvalidInputError,
    VersionConflictError,
)
from ctid.tickets.incidents import IncidentStore

# --------------------------------------------------------------------------- callbacks


async def test_one_open_callback_per_number(store: IncidentStore, callbacks: CallbackStore) -> None:
    cb = await callbacks.add_callback("13800138000", "abandoned", "9.1")
    same = await callbacks.add_callback("+86 138-0013-8000", "after_hours", "9.2")
    assert same.id == cb.id and same.reason == "abandoned"
    assert [c.id for c in await callbacks.list_callbacks()] == [cb.id]
    started = await callbacks.start_callback(cb.id, "E100")
    assert (started.status, started.attempts, started.worked_by) == ("in_progress", 1, "E100")
    with pytest.raises(VersionConflictError, match="being worked by E100"):
        await callbacks.start_callback(cb.id, "E200")
    assert (await callbacks.add_callback("008613800138000", "missed")).id == cb.id
    inc = await store.create(actor="E100", summary="called back")
    done = await callbacks.finish_callback(cb.id, "reached", incident_number=inc.number)
    assert (done.status, done.outcome, done.incident_id) == ("done", "reached", inc.id)
    fresh = await callbacks.add_callback("13800138000", "capped")
    assert fresh.id != cb.id
    with pytest.raises(InvalidInputError):
        await callbacks.add_callback("13800138000", "bored")
    with pytest.raises(InvalidInputError):
        await callbacks.add_callback("<script>", "missed")


async def test_concurrent_callbacks_deduplicate(callbacks: CallbackStore) -> None:
    views = await asyncio.gather(
        *(callbacks.add_callback(n, "abandoned") for n in ["13900139000", "+8613900139000"] * 3)
    )
    assert len({v.id for v in views}) == 1


async def test_callback_retries_then_fails(callbacks: CallbackStore) -> None:
    cb = await callbacks.add_callback("13900139000", "missed")
    for attempt in (1, 2):
        await callbacks.start_callback(cb.id, "E100")
        again = await callbacks.finish_callback(cb.id, "no_answer")
        assert (again.status, again.attempts) == ("open", attempt)
    await callbacks.start_callback(cb.id, "E100")
    last = await callbacks.finish_callback(cb.id, "no_answer")
    assert (last.status, last.attempts) == ("failed", 3)
    with pytest.raises(TransitionError):
        await callbacks.start_callback(cb.id, "E100")
    assert await callbacks.list_callbacks("failed") == [last]
