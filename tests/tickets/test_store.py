"""The incident store on SQLite and PostgreSQL: numbering per site-local day (also under
concurrent creates), idempotent incidents from calls, history, optimistic locking, outbox mail
with its dedupe keys and content, signed links and the IVR status lookup."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.clock import FakeClock
from ctid.core.errors import TransitionError
from ctid.db.schema import Call, Incident, IncidentHistory, MailOutbox
from ctid.tickets.actions import (
    Dispatch,
)
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.errors import (
    InvalidInputError,
    TicketNotFoundError,
    TokenError,
    TokenExpiredError,
    VersionConflictError,
)
from ctid.tickets.facts import CallFacts
from ctid.tickets.incidents import IncidentStore
from ctid.tickets.lifecycle import (
    TransferLiveCall,
)

from .conftest import SECRET, T0

LINK = re.compile(r"https://desk\.example\.com(/[^\s?]+)(\?decision=\w+)?")


async def outbox(sessions: async_sessionmaker[AsyncSession]) -> list[MailOutbox]:
    async with sessions() as s:
        return list((await s.execute(select(MailOutbox).order_by(MailOutbox.id))).scalars())


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


async def zhangsan(directory: CallerDirectory, email: str | None = "zhangsan@example.com") -> int:
    view = await directory.create(
        name="张三",
        actor="ops",
        employee_id="E001",
        department="财务部",
        office_location="总部 3F",
        email=email,
        phones=["+86 138-0013-8000"],
    )
    return view.id


async def triage(store: IncidentStore, number: str) -> None:
    """Category and priority: what resolving needs (two versions)."""
    await store.apply(number, "classify", "E100", request_type="fault", category="hardware")
    await store.apply(number, "prioritize", "E100", impact="low", urgency="low")


# --------------------------------------------------------------------------- numbering


async def test_numbers_count_per_site_local_day(store: IncidentStore, clock: FakeClock) -> None:
    a = await store.create(actor="E100", summary="Printer jam")
    b = await store.create(actor="E100", summary="VPN down")
    assert (a.number, b.number) == ("INC-20261122-0001", "INC-20261122-0002")
    # 23:30 UTC on the 22nd is 07:30 on the 23rd in Shanghai: a new day, a new sequence.
    clock.set(datetime(2026, 11, 22, 23, 30, tzinfo=UTC))
    c = await store.create(actor="E100", summary="Early bird")
    assert c.number == "INC-20261123-0001"
    # 15:59 UTC on the 22nd is still the 22nd (23:59 local).
    clock.set(datetime(2026, 11, 22, 15, 59, tzinfo=UTC))
    d = await store.create(actor="E100", summary="Late")
    assert d.number == "INC-20261122-0003"


async def test_concurrent_creates_get_distinct_numbers(store: IncidentStore) -> None:
    views = await asyncio.gather(
        *(store.create(actor="E100", summary=f"issue {i}") for i in range(12))
    )
    numbers = sorted(v.number for v in views)
    assert numbers == [f"INC-20261122-{i:04d}" for i in range(1, 13)]


# --------------------------------------------------------------------------- from calls


async def test_create_from_call(
    store: IncidentStore, directory: CallerDirectory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    caller_id = await zhangsan(directory)
    view = await store.create_from_call(
        facts(caller_number="+86 138-0013-8000", ivr_digit="1", answered_by_employee="E100")
    )
    assert view.number == "INC-20261122-0001"
    assert (view.channel, view.status, view.request_type) == (
        "phone",
        "in_progress",
        "consultation",
    )
    assert (view.caller_id, view.caller_name, view.caller_number) == (
        caller_id,
        "张三",
        "+8613800138000",
    )
    assert (view.owner_seat, view.owner_employee) == ("seat1", "E100")
    assert view.responded_at == T0
    assert view.version == 1
    linked = await store.incident_for_call("1763775000.1")
    assert linked is not None and linked.number == view.number
    history = await store.history(view.number)
    assert [(h.action, h.actor, h.from_status, h.to_status) for h in history] == [
        ("create", "seat1", None, "in_progress")
    ]
    assert history[0].detail["call_id"] == "1763775000.1"
    async with sessions() as s:
        call = await s.scalar(select(Call))
        assert call is not None and call.incident_id == view.id and call.caller_id == caller_id


async def test_create_from_call_is_idempotent(
    store: IncidentStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await store.create_from_call(facts())
    again = await store.create_from_call(facts(answered_by_seat="seat2"))
    assert again == first
    racing = await asyncio.gather(*(store.create_from_call(facts("77.1")) for _ in range(6)))
    assert len({v.number for v in racing}) == 1
    assert await count(sessions, Incident) == 2
    assert await count(sessions, Call) == 2


async def test_unknown_and_shared_numbers_leave_the_caller_open(
    store: IncidentStore, directory: CallerDirectory
) -> None:
    for name in ("前台 A", "前台 B"):
        await directory.create(name=name, actor="ops", phones=["010-12345678"])
    shared = await store.create_from_call(facts("1.1", caller_number="01012345678"))
    assert shared.caller_id is None and shared.caller_number == "+861012345678"
    unknown = await store.create_from_call(
        facts("1.2", caller_number="anonymous", caller_name="Bad\r\nName\x00" + "x" * 300)
    )
    assert unknown.caller_id is None
    assert unknown.caller_number == "anonymous"
    assert unknown.caller_name is not None
    assert "\n" not in unknown.caller_name and "\x00" not in unknown.caller_name
    assert len(unknown.caller_name) == 128
    assert unknown.request_type == "fault"


# --------------------------------------------------------------------------- lifecycle


async def test_full_lifecycle_writes_history(
    store: IncidentStore, directory: CallerDirectory, clock: FakeClock
) -> None:
    await zhangsan(directory)
    inc = await store.create_from_call(facts())
    n = inc.number
    await store.apply(n, "classify", "E100", request_type="fault", category="network")
    r = await store.apply(n, "prioritize", "E100", impact="high", urgency="high")
    assert r.incident.priority == "P1"
    assert r.incident.sla_resolve_due == inc.created_at + timedelta(minutes=240)
    clock.advance(60)
    await store.apply(n, "dispatch", "E100", group="network")
    await store.apply(n, "accept", "group:network")
    await store.apply(n, "suspend", "group:network", reason="Waiting for a spare part")
    await store.apply(n, "resume", "group:network")
    r = await store.apply(n, "resolve", "group:network", resolution="Replaced the SFP module.")
    assert r.incident.resolved_at == clock.utcnow()
    r = await store.apply(n, "close", "E100")
    assert r.incident.status == "closed" and r.incident.version == 9
    rows = [(h.action, h.actor, h.from_status, h.to_status) for h in await store.history(n)]
    assert rows == [
        ("create", "seat1", None, "in_progress"),
        ("classify", "E100", "in_progress", "in_progress"),
        ("prioritize", "E100", "in_progress", "in_progress"),
        ("dispatch", "E100", "in_progress", "dispatched"),
        ("accept", "group:network", "dispatched", "accepted"),
        ("suspend", "group:network", "accepted", "suspended"),
        ("resume", "group:network", "suspended", "accepted"),
        ("resolve", "group:network", "accepted", "resolved"),
        ("close", "E100", "resolved", "closed"),
    ]
    suspend = (await store.history(n))[5]
    assert suspend.detail == {"reason": "Waiting for a spare part"}


async def test_illegal_step_changes_nothing(
    store: IncidentStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    inc = await store.create_from_call(facts())
    with pytest.raises(TransitionError, match=r"cannot close INC-20261122-0001: it is in_progress"):
        await store.apply(inc.number, "close", "E100")
    after = await store.get(inc.number)
    assert after == inc
    assert await count(sessions, IncidentHistory) == 1


async def test_optimistic_lock_conflict(
    store: IncidentStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    inc = await store.create(actor="E100", summary="Outlook crashes", owner_seat="seat1")
    seen_by_a = seen_by_b = inc.version
    await store.apply(inc.number, "reassign", "E100", expected_version=seen_by_a, seat="seat2")
    with pytest.raises(VersionConflictError, match=r"changed by E100 \(reassign") as info:
        await store.apply(
            inc.number, "dispatch", "E200", expected_version=seen_by_b, group="desktop"
        )
    assert info.value.current_version == inc.version + 1
    now = await store.get(inc.number)
    assert now is not None and (now.status, now.owner_seat, now.owner_group) == (
        "assigned",
        "seat2",
        None,
    )
    assert await count(sessions, IncidentHistory) == 2
    assert await outbox(sessions) == []


async def test_flag_is_idempotent(store: IncidentStore) -> None:
    inc = await store.create_from_call(facts())
    first = await store.apply(inc.number, "flag", "system", name="capped")
    again = await store.apply(inc.number, "flag", "system", name="capped")
    assert first.incident.flags == ("capped",)
    assert again.entry is None and again.incident.version == first.incident.version


async def test_hand_to_expert_asks_for_the_live_transfer(store: IncidentStore) -> None:
    inc = await store.create_from_call(facts())
    r = await store.apply(inc.number, "hand_to_expert", "E100", seat="seat3", call_live=True)
    assert r.transfer == TransferLiveCall(seat="seat3")
    assert r.incident.owner_seat == "seat3"
    assert (await store.status_for_ivr("202611220001")) == ("handed_to_expert", "seat3")


async def test_bad_input(store: IncidentStore) -> None:
    with pytest.raises(InvalidInputError, match="summary is longer"):
        await store.create(actor="E100", summary="x" * 501)
    with pytest.raises(InvalidInputError, match="unknown seat"):
        await store.create(actor="E100", summary="x", owner_seat="seat99")
    with pytest.raises(TicketNotFoundError):
        await store.apply("INC-20261122-0042", "start", "E100")
    inc = await store.create(actor="E100", summary="x")
    with pytest.raises(InvalidInputError, match="unknown incident action"):
        await store.apply(inc.number, "drop_table", "E100")
    with pytest.raises(InvalidInputError):
        await store.apply(inc.number, Dispatch(group="network"), "E100", group="x")


# --------------------------------------------------------------------------- mail and links


async def test_dispatch_mail_and_accept_link(
    store: IncidentStore, directory: CallerDirectory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await zhangsan(directory)
    inc = await store.create_from_call(facts())
    await store.apply(inc.number, "prioritize", "E100", impact="medium", urgency="high")
    await store.apply(
        inc.number,
        "classify",
        "E100",
        request_type="fault",
        category="network",
    )
    r = await store.apply(
        inc.number,
        "dispatch",
        "E100",
        group="network",
        assignee_email="li.lei@example.com",
        note="No link light on port 12; the user is on the 3rd floor.",
    )
    key = f"incident:{inc.number}:dispatched:v4"
    assert r.mails == (key,)
    (mail,) = await outbox(sessions)
    assert mail.dedupe_key == key
    assert mail.to_addr == "li.lei@example.com, netops@example.com"
    assert mail.subject == f"[{inc.number}] P2 dispatched to network: Phone call from 张三 (fault)"
    for expected in (
        "Priority:      P2 (respond by 2026-11-22 10:00, resolve by 2026-11-22 17:30)",
        "Category:      Network",
        "Caller:        张三 (employee id E001)",
        "Department:    财务部",
        "Location:      总部 3F",
        "Phone:         +86 138-0013-8000",
        "No link light on port 12",
    ):
        assert expected in mail.body_text
    links = {m.group(2): m.group(1) for m in LINK.finditer(mail.body_text)}
    assert set(links) == {"?decision=accept", "?decision=reject"}
    token = links["?decision=accept"].removeprefix("/incidents/respond/")

    claims = store.verify_link(token, "dispatch")
    assert (claims.number, claims.group, claims.assignee) == (
        inc.number,
        "network",
        "li.lei@example.com",
    )
    accepted = await store.respond_to_dispatch(token, "accept")
    assert accepted.incident.status == "accepted"
    assert accepted.entry is not None and accepted.entry.actor == "li.lei@example.com"
    with pytest.raises(TransitionError, match="no longer waiting for network"):
        await store.respond_to_dispatch(token, "reject", "too late")


async def test_reject_link_needs_a_reason_and_returns_to_the_desk(
    store: IncidentStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    inc = await store.create_from_call(facts())
    await store.apply(inc.number, "dispatch", "E100", group="desktop")
    (mail,) = await outbox(sessions)
    assert mail.to_addr == "desktop-support@example.com"
    token = LINK.search(mail.body_text).group(1).rsplit("/", 1)[1]  # type: ignore[union-attr]
    with pytest.raises(InvalidInputError, match="reason is required"):
        await store.respond_to_dispatch(token, "reject", "")
    r = await store.respond_to_dispatch(token, "reject", "Not a desktop problem")
    assert (r.incident.status, r.incident.owner_group, r.incident.owner_seat) == (
        "rejected",
        None,
        "seat1",
    )
    assert r.entry is not None and r.entry.actor == "group:desktop"


async def test_dispatch_link_is_tied_to_its_group_and_expires(
    store: IncidentStore, clock: FakeClock, sessions: async_sessionmaker[AsyncSession]
) -> None:
    inc = await store.create_from_call(facts())
    await store.apply(inc.number, "dispatch", "E100", group="desktop")
    await store.apply(inc.number, "dispatch", "E100", group="network")
    first, second = await outbox(sessions)
    assert (first.dedupe_key, second.dedupe_key) == (
        f"incident:{inc.number}:dispatched:v2",
        f"incident:{inc.number}:dispatched:v3",
    )
    old = LINK.search(first.body_text).group(1).rsplit("/", 1)[1]  # type: ignore[union-attr]
    new = LINK.search(second.body_text).group(1).rsplit("/", 1)[1]  # type: ignore[union-attr]
    with pytest.raises(TransitionError, match="no longer waiting for desktop"):
        await store.respond_to_dispatch(old, "accept")
    tampered = new[:-2] + ("AA" if new[-2:] != "AA" else "BB")
    with pytest.raises(TokenError):
        await store.respond_to_dispatch(tampered, "accept")
    clock.advance(7 * 86400)
    with pytest.raises(TokenExpiredError):
        await store.respond_to_dispatch(new, "accept")
    after = await store.get(inc.number)
    assert after is not None and after.status == "dispatched"


async def test_resolution_mail_and_delayed_satisfaction_survey(
    store: IncidentStore,
    directory: CallerDirectory,
    clock: FakeClock,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await zhangsan(directory)
    inc = await store.create_from_call(facts())
    await triage(store, inc.number)
    r = await store.apply(
        inc.number, "resolve_first_line", "E100", resolution="Cleared the print queue."
    )
    assert r.incident.flags == ("first_line",)
    clock.advance(120)
    closed_at = clock.utcnow()
    await store.apply(inc.number, "close", "E100")
    resolved, survey = await outbox(sessions)
    assert resolved.dedupe_key == f"incident:{inc.number}:resolved:v4"
    assert resolved.to_addr == "zhangsan@example.com"
    assert "Cleared the print queue." in resolved.body_text
    assert resolved.next_attempt_at is not None and resolved.next_attempt_at <= closed_at
    assert survey.dedupe_key == f"incident:{inc.number}:satisfaction:v5"
    assert survey.to_addr == "zhangsan@example.com"
    assert survey.next_attempt_at == closed_at + timedelta(seconds=3600)
    match = re.search(r"https://desk\.example\.com/survey/(\S+)", survey.body_text)
    assert match is not None
    token = match.group(1)
    with pytest.raises(TokenError):
        await store.respond_to_dispatch(token, "accept")  # a survey link is not a dispatch link
    rated = await store.record_rating(token, 5, "非常好 <b>thanks</b>")
    assert (rated.satisfaction, rated.satisfaction_comment) == (5, "非常好 <b>thanks</b>")
    with pytest.raises(TransitionError, match="rated already"):
        await store.record_rating(token, 1)


async def test_no_caller_email_no_caller_mail(
    store: IncidentStore, directory: CallerDirectory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await zhangsan(directory, email=None)
    inc = await store.create_from_call(facts())
    await triage(store, inc.number)
    await store.apply(inc.number, "resolve", "E100", resolution="Done")
    await store.apply(inc.number, "close", "E100")
    assert await outbox(sessions) == []


async def test_escalation_mails_the_duty_manager(
    store: IncidentStore, sessions: async_sessionmaker[AsyncSession]
) -> None:
    inc = await store.create_from_call(facts())
    await store.apply(inc.number, "escalate", "E100", reason="Whole floor offline")
    (mail,) = await outbox(sessions)
    assert (mail.to_addr, mail.dedupe_key) == (
        "duty@example.com",
        f"incident:{inc.number}:escalated:v2",
    )
    assert "Whole floor offline" in mail.body_text


# --------------------------------------------------------------------------- lookups


async def test_ivr_status_lookup(store: IncidentStore) -> None:
    inc = await store.create(actor="E100", summary="x", owner_seat="seat2")
    assert await store.status_for_ivr("202611220001") == ("assigned", "seat2")
    assert await store.status_for_ivr(inc.number) == ("assigned", "seat2")
    assert await store.status_for_ivr("inc-20261122-0001") == ("assigned", "seat2")
    for miss in ("202611220002", "2026", "", "12' OR 1=1 --", "INC-20261122-1"):
        assert await store.status_for_ivr(miss) is None


async def test_list_open_and_for_caller(store: IncidentStore, directory: CallerDirectory) -> None:
    caller_id = await zhangsan(directory)
    a = await store.create_from_call(facts("c.1"))
    b = await store.create_from_call(facts("c.2", answered_by_seat="seat2"))
    c = await store.create(actor="E100", summary="other", owner_seat="seat1")
    await triage(store, a.number)
    await store.apply(a.number, "resolve", "E100", resolution="ok")
    assert [v.number for v in await store.list_open()] == [c.number, b.number]
    assert [v.number for v in await store.list_open(owner_seat="seat1")] == [c.number]
    assert [v.number for v in await store.for_caller(caller_id)] == [b.number, a.number]
    assert [v.number for v in await store.for_caller(caller_id, limit=1)] == [b.number]


async def test_survey_links_signed_with_another_secret_fail(
    store: IncidentStore,
    sessions: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    cfg: Config,
    directory: CallerDirectory,
) -> None:
    await zhangsan(directory)
    inc = await store.create_from_call(facts())
    await triage(store, inc.number)
    await store.apply(inc.number, "resolve", "E100", resolution="ok")
    await store.apply(inc.number, "close", "E100")
    survey = (await outbox(sessions))[-1]
    token = survey.body_text.split("/survey/")[1].split()[0]
    other = IncidentStore(sessions, clock, cfg, link_secret=SECRET[::-1])
    with pytest.raises(TokenError):
        await other.record_rating(token, 3)
    view = await store.get(inc.number)
    assert view is not None and view.satisfaction is None


async def test_concurrent_changes_never_lose_an_update(store: IncidentStore) -> None:
    inc = await store.create_from_call(facts())
    names = [f"tag_{i}" for i in range(6)]
    results = await asyncio.gather(
        *(store.apply(inc.number, "flag", f"E{i}", name=n) for i, n in enumerate(names)),
        return_exceptions=True,
    )
    won = [n for n, r in zip(names, results, strict=True) if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, VersionConflictError) for r in lost), lost
    assert won
    final = await store.get(inc.number)
    assert final is not None
    assert sorted(final.flags) == sorted(won)
    assert final.version == 1 + len(won)
    assert len(await store.history(inc.number)) == 1 + len(won)
