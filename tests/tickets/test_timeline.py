"""One incident per problem on SQLite and PostgreSQL: a later call attached to the caller's open
incident (while ringing and after the automatic incident was opened, which is withdrawn and
audited), IVR status queries as contacts, work notes (the caller's mailed through the outbox),
and the timeline in time order."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.clock import FakeClock
from ctid.core.errors import TransitionError
from ctid.db.schema import AuditLog, Incident, IncidentNote, MailOutbox
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.errors import InvalidInputError, TicketNotFoundError
from ctid.tickets.facts import CallFacts
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.timeline import IncidentTimeline

from .conftest import T0


@pytest.fixture
def timeline(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, cfg: Config
) -> IncidentTimeline:
    return IncidentTimeline(sessions, clock, cfg)


def facts(
    call_id: str, number: str = "13800138000", seat: str = "seat1", at: datetime = T0
) -> CallFacts:
    return CallFacts(
        call_id=call_id,
        answered_at=at,
        answered_by_seat=seat,
        caller_number=number,
        caller_name="ZHANG SAN",
        ivr_digit="2",
    )


async def zhangsan(directory: CallerDirectory, email: str | None = "zhangsan@example.com") -> int:
    view = await directory.create(
        name="张三", actor="ops", email=email, phones=["+86 138-0013-8000"]
    )
    return view.id


async def test_a_second_call_joins_the_open_incident_and_the_duplicate_is_withdrawn(
    store: IncidentStore,
    directory: CallerDirectory,
    timeline: IncidentTimeline,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await zhangsan(directory)
    first = await store.create_from_call(facts("c.1"))
    clock.advance(600)
    dup = await store.create_from_call(facts("c.2", seat="seat2", at=clock.utcnow()))
    assert {v.number for v in await store.list_open()} == {first.number, dup.number}

    clock.advance(30)
    result = await timeline.attach_call("c.2", first.number, "E002")
    assert (result.number, result.withdrawn, result.already) == (first.number, dup.number, False)
    assert [v.number for v in await store.list_open()] == [first.number]
    gone = await store.get(dup.number)
    assert gone is not None and gone.status == "closed" and "merged" in gone.flags
    linked = await store.incident_for_call("c.2")
    assert linked is not None and linked.number == first.number
    assert await timeline.contact_count(first.number) == 2
    async with sessions() as s:
        row = await s.scalar(select(Incident).where(Incident.number == dup.number))
        assert row is not None and row.merged_into_id == first.id
        audit = (await s.execute(select(AuditLog))).scalars().all()
        assert [(a.action, a.target, a.actor) for a in audit if a.action != "caller_created"] == [
            ("incident_merged", dup.number, "E002")
        ]
    # The history of both says so; attaching again changes nothing.
    assert [h.action for h in await store.history(dup.number)] == ["create", "merge"]
    again = await timeline.attach_call("c.2", first.number, "E002")
    assert again.already and again.withdrawn is None
    entries = await timeline.timeline(first.number)
    assert [(e.kind, e.what) for e in entries] == [
        ("call", "call"),
        ("lifecycle", "create"),
        ("call", "call"),
        ("contact", "call"),
        ("lifecycle", "attach_call"),
    ]
    assert entries[-1].detail["withdrawn"] == dup.number


async def test_a_ringing_call_attached_before_any_incident_exists(
    store: IncidentStore, directory: CallerDirectory, timeline: IncidentTimeline
) -> None:
    await zhangsan(directory)
    first = await store.create_from_call(facts("c.1"))
    assert await timeline.attached_incident("c.9") is None
    result = await timeline.attach_call("c.9", first.number, "seat2")
    assert result.withdrawn is None
    assert await timeline.attached_incident("c.9") == first.number
    assert await timeline.contact_count(first.number) == 2


async def test_a_ringing_call_is_checked_against_the_incidents_caller_by_its_number(
    store: IncidentStore, directory: CallerDirectory, timeline: IncidentTimeline
) -> None:
    await zhangsan(directory)
    first = await store.create_from_call(facts("c.1"))
    manual = await store.create(actor="E1", summary="VPN", caller_number="13900139000")
    # No call row yet: the live call's number decides. Another caller's number is refused ...
    with pytest.raises(InvalidInputError, match="another caller"):
        await timeline.attach_call("c.9", first.number, "seat2", caller_number="13700137000")
    with pytest.raises(InvalidInputError, match="another caller"):
        await timeline.attach_call("c.9", manual.number, "seat2", caller_number="13800138000")
    assert await timeline.attached_incident("c.9") is None
    # ... one of the caller's phones, in any spelling, is the same caller
    result = await timeline.attach_call(
        "c.9", first.number, "seat2", caller_number="+86 138 0013 8000"
    )
    assert result.number == first.number and not result.already
    # unknown numbers (withheld) are left to the agent
    other = await timeline.attach_call("c.10", manual.number, "seat2", caller_number="")
    assert other.number == manual.number


async def test_an_incident_opened_after_a_ringing_attach_is_withdrawn_by_attaching_again(
    store: IncidentStore, directory: CallerDirectory, timeline: IncidentTimeline, clock: FakeClock
) -> None:
    await zhangsan(directory)
    first = await store.create_from_call(facts("c.1"))
    clock.advance(60)
    await timeline.attach_call("c.9", first.number, "seat2")  # while ringing
    late = await store.create_from_call(facts("c.9", seat="seat2", at=clock.utcnow()))
    assert late.number != first.number  # the app did not ask attached_incident() first
    again = await timeline.attach_call("c.9", first.number, "seat2")
    assert (again.withdrawn, again.already) == (late.number, False)
    assert [v.number for v in await store.list_open()] == [first.number]
    assert await timeline.contact_count(first.number) == 2


async def test_attaching_is_refused_to_closed_or_foreign_incidents(
    store: IncidentStore, directory: CallerDirectory, timeline: IncidentTimeline
) -> None:
    await zhangsan(directory)
    mine = await store.create_from_call(facts("c.1"))
    other = await store.create_from_call(facts("c.2", number="13900139000"))
    with pytest.raises(InvalidInputError, match="another caller"):
        await timeline.attach_call("c.1", other.number, "E001")
    await store.apply(other.number, "classify", "E1", request_type="fault", category="network")
    await store.apply(other.number, "prioritize", "E1", impact="low", urgency="low")
    await store.apply(other.number, "resolve", "E1", resolution="ok")
    with pytest.raises(TransitionError, match="it is resolved"):
        await timeline.attach_call("c.5", other.number, "E001")
    with pytest.raises(TicketNotFoundError):
        await timeline.attach_call("c.5", "INC-20991231-0001", "E001")
    # The call's own incident resolved already: it is not silently withdrawn.
    await store.apply(mine.number, "classify", "E1", request_type="fault", category="network")
    await store.apply(mine.number, "prioritize", "E1", impact="low", urgency="low")
    await store.apply(mine.number, "resolve", "E1", resolution="ok")
    third = await store.create(actor="E1", summary="again", caller_number="13800138000")
    with pytest.raises(TransitionError, match=f"{mine.number} is resolved already"):
        await timeline.attach_call("c.1", third.number, "E001")


async def test_ivr_status_queries_are_contacts_once_per_call(
    store: IncidentStore,
    directory: CallerDirectory,
    timeline: IncidentTimeline,
    clock: FakeClock,
) -> None:
    await zhangsan(directory)
    inc = await store.create_from_call(facts("c.1"))
    clock.advance(3600)
    assert await timeline.record_status_query("c.7", inc.number) is True
    assert await timeline.record_status_query("c.7", inc.number.lower()) is False
    assert await timeline.contact_count(inc.number) == 2
    assert [(e.kind, e.what, e.actor) for e in await timeline.timeline(inc.number)][-1] == (
        "contact",
        "status_query",
        "ivr",
    )


async def test_notes_internal_and_to_the_caller(
    store: IncidentStore,
    directory: CallerDirectory,
    timeline: IncidentTimeline,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await zhangsan(directory)
    inc = await store.create_from_call(facts("c.1"))
    clock.advance(60)
    internal = await timeline.add_note(inc.number, "E001", "已远程查看,怀疑是网卡驱动")
    clock.advance(60)
    await store.apply(inc.number, "suspend", "E001", reason="等用户回到工位")
    clock.advance(60)
    to_caller = await timeline.add_note(
        inc.number, "E001", "工程师明天上午 10 点上门。", kind="caller"
    )
    assert internal.mail_key is None
    assert to_caller.mail_key == f"incident:{inc.number}:note:{to_caller.id}"
    async with sessions() as s:
        (mail,) = (await s.execute(select(MailOutbox))).scalars().all()
    assert (mail.dedupe_key, mail.to_addr) == (to_caller.mail_key, "zhangsan@example.com")
    assert "工程师明天上午 10 点上门。" in mail.body_text and inc.number in mail.subject
    entries = await timeline.timeline(inc.number)
    assert [(e.kind, e.what, e.actor) for e in entries] == [
        ("call", "call", "seat1"),
        ("lifecycle", "create", "seat1"),
        ("note", "internal", "E001"),
        ("lifecycle", "suspend", "E001"),
        ("note", "caller", "E001"),
    ]
    assert entries[2].text == "已远程查看,怀疑是网卡驱动"
    assert entries[3].detail["to_status"] == "suspended"
    assert entries[4].detail == {"mailed": True}
    assert [n.id for n in await timeline.notes(inc.number)] == [internal.id, to_caller.id]


async def test_a_caller_note_without_an_address_is_refused_and_not_saved(
    store: IncidentStore,
    directory: CallerDirectory,
    timeline: IncidentTimeline,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await zhangsan(directory, email=None)
    inc = await store.create_from_call(facts("c.1"))
    with pytest.raises(InvalidInputError, match="no caller email"):
        await timeline.add_note(inc.number, "E001", "hello", kind="caller")
    with pytest.raises(InvalidInputError, match="note is required"):
        await timeline.add_note(inc.number, "E001", "  \n ")
    with pytest.raises(InvalidInputError, match="kind must be"):
        await timeline.add_note(inc.number, "E001", "x", kind="secret")
    async with sessions() as s:
        assert (await s.execute(select(IncidentNote))).scalars().all() == []
