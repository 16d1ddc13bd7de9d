"""Caller profiles on SQLite and PostgreSQL: every incident (open first) and call, correct
open-incident counts, the earlier calls of an unknown number, and merging two callers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.clock import FakeClock
from ctid.db.schema import AuditLog, CallerPhone
from ctid.tickets.call_facts import CallFactStore
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.errors import InvalidInputError, TicketNotFoundError
from ctid.tickets.facts import CallFacts, CallRecordIn
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.profiles import CallerProfiles
from ctid.tickets.timeline import IncidentTimeline

from .conftest import T0


@pytest.fixture
def profiles(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, cfg: Config
) -> CallerProfiles:
    return CallerProfiles(sessions, clock, cfg)


async def call(store: IncidentStore, clock: FakeClock, call_id: str, number: str) -> str:
    inc = await store.create_from_call(
        CallFacts(
            call_id=call_id,
            answered_at=clock.utcnow(),
            answered_by_seat="seat1",
            caller_number=number,
        )
    )
    clock.advance(60)
    return inc.number


async def test_profile_lists_open_incidents_first_and_counts_them(
    store: IncidentStore,
    directory: CallerDirectory,
    profiles: CallerProfiles,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
    cfg: Config,
) -> None:
    wang = await directory.create(name="王伟", actor="ops", phones=["13800138000"])
    li = await directory.create(name="李娜", actor="ops", phones=["13900139000"])
    a = await call(store, clock, "c.1", "13800138000")
    b = await call(store, clock, "c.2", "13800138000")
    c = await call(store, clock, "c.3", "13800138000")
    d = await call(store, clock, "c.4", "13800138000")
    await call(store, clock, "c.5", "13900139000")
    for n in (a,):
        await store.apply(n, "classify", "E1", request_type="fault", category="network")
        await store.apply(n, "prioritize", "E1", impact="low", urgency="low")
        await store.apply(n, "resolve", "E1", resolution="ok")
    # d was a repeat call about c: withdrawn into it, and no longer counted.
    await IncidentTimeline(sessions, clock, cfg).attach_call("c.4", c, "E1")
    counts = await profiles.open_incident_counts([wang.id, li.id, 999])
    assert counts == {wang.id: 2, li.id: 1}
    prof = await profiles.profile(wang.id)
    assert prof is not None and prof.open_incidents == 2
    assert [i.number for i in prof.incidents] == [c, b, a]
    assert d not in [i.number for i in prof.incidents]
    assert [(x.call_id, x.incident_number) for x in prof.calls] == [
        ("c.4", c),
        ("c.3", c),
        ("c.2", b),
        ("c.1", a),
    ]
    assert await profiles.profile(999) is None
    assert await profiles.open_incident_counts([]) == {}


async def test_an_unknown_number_shows_its_earlier_calls(
    call_facts: CallFactStore, profiles: CallerProfiles, clock: FakeClock
) -> None:
    for i, outcome in enumerate(("abandoned_in_queue", "answered")):
        await call_facts.record_call(
            CallRecordIn(
                call_id=f"u.{i}",
                caller_number="021-6123 4567",
                started_at=clock.utcnow(),
                outcome=outcome,
            )
        )
        clock.advance(30)
    now = clock.utcnow()
    got = await profiles.calls_from_number("+86 21 61234567", before=now)
    assert [(x.call_id, x.outcome) for x in got] == [
        ("u.1", "answered"),
        ("u.0", "abandoned_in_queue"),
    ]
    assert await profiles.calls_from_number("02161234567", before=T0 + timedelta(seconds=1)) == [
        got[1]
    ]
    assert await profiles.calls_from_number("13700000000") == []


async def test_merging_two_callers_moves_everything_and_is_audited(
    store: IncidentStore,
    directory: CallerDirectory,
    profiles: CallerProfiles,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    keep = await directory.create(
        name="赵敏", actor="ops", phones=["13800138000"], department="财务部"
    )
    drop = await directory.create(
        name="赵敏 (dup)",
        actor="ops",
        phones=["13800138000", "010-6234 5678"],
        employee_id="E2002",
        email="zhaomin@example.com",
        vip=True,
        notes="二号楼",
    )
    await call(store, clock, "m.1", "010-6234 5678")
    merged = await profiles.merge(keep.id, drop.id, "S001")
    assert merged.name == "赵敏" and merged.department == "财务部"
    assert (merged.employee_id, merged.email, merged.vip, merged.notes) == (
        "E2002",
        "zhaomin@example.com",
        True,
        "二号楼",
    )
    assert sorted(p.number for p in merged.phones) == ["+861062345678", "+8613800138000"]
    assert await directory.get(drop.id) is None
    prof = await profiles.profile(keep.id)
    assert prof is not None and prof.open_incidents == 1 and prof.calls[0].call_id == "m.1"
    async with sessions() as s:
        (audit,) = (
            await s.execute(select(AuditLog).where(AuditLog.action == "callers_merged"))
        ).scalars()
        phones = (await s.execute(select(CallerPhone.caller_id))).scalars().all()
    assert audit.actor == "S001" and audit.target == f"caller:{keep.id}"
    assert audit.detail["merged"]["name"] == "赵敏 (dup)"
    assert audit.detail["moved"]["incidents"] == 1
    assert set(phones) == {keep.id}
    with pytest.raises(InvalidInputError, match="into itself"):
        await profiles.merge(keep.id, keep.id, "S001")
    with pytest.raises(TicketNotFoundError):
        await profiles.merge(keep.id, drop.id, "S001")
