"""The tables on SQLite and PostgreSQL: every column of every table round-trips (Chinese text,
aware datetimes back as UTC), naive datetimes are refused, defaults, cascades, optimistic locking
and the concurrent-safe incident counter."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm.exc import StaleDataError

from ctid.db import create_engine, session_factory, upgrade
from ctid.db.schema import (
    AuditLog,
    Base,
    Call,
    Callback,
    CallbackCall,
    Caller,
    CallerPhone,
    DeskDraft,
    Holiday,
    Incident,
    IncidentContact,
    IncidentHistory,
    IncidentNote,
    IncidentNumberCounter,
    JournalMark,
    KbArticle,
    KbArticleVersion,
    LunchOverride,
    MailOutbox,
    NaiveDatetimeError,
    QueueLogCall,
    QueueLogPosition,
    RingAttempt,
    RosterOverride,
    Seat,
    SeatStateLog,
    SpySession,
    User,
    WebSession,
    metadata,
    next_incident_seq,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 9, 30, 15, 123456, tzinfo=SHANGHAI)  # 01:30:15.123456 UTC


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# One row per table, in foreign-key order, with a non-null value in EVERY column.
ROWS: list[tuple[type[Base], dict[str, Any]]] = [
    (
        User,
        {
            "id": 7,
            "employee_id": "E1001",
            "name": "张伟",
            "role": "supervisor",
            "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
            "email": "zhang.wei@example.com",
            "active": False,
            "created_at": t(0),
            "updated_at": t(1),
        },
    ),
    (
        Seat,
        {
            "id": "seat1",
            "name": "一号座席",
            "tier": "expert",
            "interface": "PJSIP/seat1",
            "staffed_by": "E1001",
            "active": True,
            "updated_at": t(2),
        },
    ),
    (
        Caller,
        {
            "id": 11,
            "name": "李娜",
            "employee_id": "E2002",
            "department": "财务部",
            "office_location": "北京总部 8层 803",
            "email": "li.na@example.com",
            "vip": True,
            "notes": "打印机常卡纸;优先处理",
            "created_at": t(3),
            "updated_at": t(4),
        },
    ),
    (
        CallerPhone,
        {
            "id": 12,
            "caller_id": 11,
            "number_normalized": "+861062345678",
            "raw": "010-6234 5678",
            "kind": "office",
        },
    ),
    (
        KbArticle,
        {
            "id": 41,
            "title": "打印机卡纸",
            "symptoms": "打印时提示卡纸",
            "steps": "打开后盖,取出纸张",
            "category": "hardware",
            "request_type": "fault",
            "tags": "打印机 printer",
            "language": "zh",
            "status": "published",
            "search_text": "打印机卡纸 打印时提示卡纸 打开后盖,取出纸张 打印机 printer",
            "version": 2,
            "created_by": "E1001",
            "created_at": t(1),
            "updated_by": "S001",
            "updated_at": t(2),
        },
    ),
    (
        KbArticleVersion,
        {
            "id": 42,
            "article_id": 41,
            "version": 1,
            "title": "打印机卡纸",
            "symptoms": "打印时提示卡纸",
            "steps": "取出纸张",
            "category": "hardware",
            "request_type": "fault",
            "tags": "打印机",
            "language": "zh",
            "status": "published",
            "author": "E1001",
            "created_at": t(1),
        },
    ),
    (
        Incident,
        {
            "id": 21,
            "number": "INC-20261122-0001",
            "caller_id": 11,
            "caller_number": "+861062345678",
            "caller_name": "李娜",
            "channel": "phone",
            "request_type": "fault",
            "category": "hardware",
            "impact": "medium",
            "urgency": "high",
            "priority": "P2",
            "status": "dispatched",
            "summary": "打印机无法打印",
            "description": "报错 0x0000011b;已重启,指示灯闪烁橙色。",
            "owner_seat": "seat1",
            "owner_employee": "E1001",
            "owner_group": "桌面支持",
            "sla_response_due": t(30),
            "sla_resolve_due": t(480),
            "responded_at": t(5),
            "resolved_at": t(90),
            "closed_at": t(120),
            "flags": ["capped", "回访"],
            "satisfaction": 5,
            "satisfaction_comment": "非常满意",
            "resolution": "更换硒鼓后恢复打印",
            "assignee_email": "desktop@example.com",
            "suspended_at": t(60),
            "suspended_from": "accepted",
            "kb_article_id": 41,
            "merged_into_id": 21,
            "created_at": t(5),
            "updated_at": t(6),
            "version": 1,
        },
    ),
    (
        IncidentHistory,
        {
            "id": 22,
            "incident_id": 21,
            "at": t(7),
            "actor": "E1001",
            "action": "dispatch",
            "from_status": "in_progress",
            "to_status": "dispatched",
            "detail": {"group": "桌面支持", "note": "需上门", "attempt": 1, "ok": True},
        },
    ),
    (
        IncidentContact,
        {
            "id": 23,
            "incident_id": 21,
            "call_id": "1763775015.43",
            "kind": "call",
            "at": t(8),
            "actor": "seat1",
        },
    ),
    (
        IncidentNote,
        {
            "id": 24,
            "incident_id": 21,
            "at": t(9),
            "author": "E1001",
            "kind": "caller",
            "body": "工程师明天上午上门。",
            "mail_key": "incident:INC-20261122-0001:note:24",
        },
    ),
    (IncidentNumberCounter, {"day": date(2026, 11, 22), "last": 42}),
    (
        Call,
        {
            "id": 31,
            "call_id": "1763775015.42",
            "caller_number": "+861062345678",
            "caller_name": "李娜",
            "caller_id": 11,
            "queue": "shared",
            "ivr_choice": "2",
            "category": "fault",
            "started_at": t(8),
            "queued_at": t(8.2),
            "answered_at": t(8.4),
            "ended_at": t(18.4),
            "answered_by_seat": "seat1",
            "answer_ring": 2,
            "within_rings": True,
            "outcome": "answered",
            "talk_s": 600.25,
            "capped": True,
            "transferred_to": "seat2",
            "incident_id": 21,
        },
    ),
    (
        RingAttempt,
        {
            "id": 32,
            "call_id": "1763775015.42",
            "seat_id": "seat1",
            "started_at": t(8.2),
            "ended_at": t(8.4),
            "outcome": "answered",
            "ring_s": 9.75,
            "talk_s": 125.5,
        },
    ),
    (
        Callback,
        {
            "id": 41,
            "caller_number": "+861062345678",
            "caller_id": 11,
            "reason": "after_hours",
            "call_id": "1763775015.42",
            "incident_id": 21,
            "requested_at": t(9),
            "status": "in_progress",
            "attempts": 2,
            "outcome": "无人接听",
            "worked_by": "E1001",
            "updated_at": t(10),
        },
    ),
    (
        CallbackCall,
        {
            "id": 42,
            "callback_id": 41,
            "reason": "capped",
            "call_id": "1763775015.42",
            "added_at": t(9.5),
        },
    ),
    (
        MailOutbox,
        {
            "id": 51,
            "dedupe_key": "incident:21:dispatched",
            "to_addr": "desktop@example.com",
            "subject": "【派单】INC-20261122-0001 打印机无法打印",
            "body_text": "请尽快处理。",
            "body_html": "<p>请尽快处理。</p>",
            "status": "failed",
            "attempts": 8,
            "next_attempt_at": t(11),
            "last_error": "550 邮箱不存在",
            "created_at": t(10.5),
            "sent_at": t(12),
        },
    ),
    (
        AuditLog,
        {
            "id": 61,
            "at": t(13),
            "actor": "E1001",
            "action": "roster_changed",
            "target": "seat1",
            "detail": {"from": "E1001", "to": "E3003", "原因": "病假"},
        },
    ),
    (
        SpySession,
        {
            "id": 71,
            "supervisor": "E1001",
            "seat_id": "seat1",
            "call_id": "1763775015.42",
            "mode": "whisper",
            "requested_at": t(14),
            "started_at": t(14.1),
            "stopped_at": t(16),
            "action_id": "ctid-spy-71",
            "spy_channel": "PJSIP/sup1-00000007",
        },
    ),
    (
        RosterOverride,
        {
            "id": 81,
            "day": date(2026, 11, 23),
            "seat_id": "seat1",
            "staffed_by": "E3003",
            "note": "替班",
            "created_by": "E1001",
            "created_at": t(17),
        },
    ),
    (
        LunchOverride,
        {
            "id": 91,
            "kind": "day",
            "day": date(2026, 11, 24),
            "iso_week": "2026-W48",
            "group_name": "A组",
            "note": "调换午餐值班",
            "created_by": "E1001",
            "created_at": t(18),
        },
    ),
    (Holiday, {"day": date(2026, 10, 1), "kind": "holiday", "name": "国庆节"}),
    (
        WebSession,
        {
            "id": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "user_id": 7,
            "csrf_token": "Zm9vYmFyYmF6",
            "created_at": t(19),
            "expires_at": t(19 + 720),
            "last_seen_at": t(20),
        },
    ),
    (
        QueueLogPosition,
        {
            "path": "/var/log/asterisk/queue_log",
            "inode": 5308449,
            "offset": 4_294_967_296 + 191,  # past 4 GiB: a BIGINT
            "updated_at": t(21),
        },
    ),
    (
        QueueLogCall,
        {
            "log_key": "1796492741.0@1796492743",
            "call_id": "1796492741.0",
            "outcome": "answered",
            "action": "added",
            "reconciled_at": t(22),
        },
    ),
    (JournalMark, {"journal_id": "5f0c7a7e2b6d4c1a9e3f8b2d1c0a9e8f", "seq": 9_000_000_000}),
    (
        SeatStateLog,
        {
            "id": 1,
            "seat_id": "seat1",
            "state": "paused",
            "reason": "meal",
            "at": t(21),
            "by": "E1001",
        },
    ),
    (
        DeskDraft,
        {
            "call_id": "1795400000.7",
            "seat_id": "seat1",
            "employee_id": "E1001",
            "fields": {"summary": "打印机无法打印"},
            "number": "INC-20261123-0001",
            "saved": True,
            "updated_at": t(22),
        },
    ),
]


def test_the_sample_covers_every_column_of_every_table() -> None:
    # A new table or column must be added to ROWS, so the round trip keeps covering everything.
    assert {model.__tablename__ for model, _ in ROWS} == set(metadata.tables)
    for model, values in ROWS:
        table = metadata.tables[model.__tablename__]
        assert set(values) == set(table.columns.keys()), model.__tablename__
        assert all(v is not None for v in values.values()), model.__tablename__


async def test_every_table_round_trips(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    async with sessions() as session:
        for model, values in ROWS:
            session.add(model(**values))
            await session.flush()  # in foreign-key order
        await session.commit()

    async with sessions() as session:
        for model, values in ROWS:
            stored = (await session.execute(select(model))).scalars().one()
            for column, expected in values.items():
                got = getattr(stored, column)
                assert got == expected, f"{model.__tablename__}.{column}"
                if isinstance(expected, datetime):
                    assert got.tzinfo is UTC, f"{model.__tablename__}.{column} is not UTC"
                    assert got.hour == expected.astimezone(UTC).hour


async def test_naive_datetimes_are_refused(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    async with sessions() as session:
        session.add(Holiday(day=date(2026, 1, 1), kind="holiday", name="元旦"))
        session.add(
            AuditLog(at=datetime(2026, 11, 22, 9, 0), actor="E1", action="login", target=None)
        )
        with pytest.raises(StatementError) as caught:
            await session.flush()
    assert isinstance(caught.value.orig, NaiveDatetimeError)
    assert "naive" in str(caught.value.orig)


async def test_queries_compare_instants_not_wall_clock_text(migrated_engine: AsyncEngine) -> None:
    # 00:30 UTC and 08:45 Shanghai (00:45 UTC) must order by instant on both backends.
    async with migrated_engine.begin() as conn:
        await conn.execute(
            insert(Call),
            [
                {"call_id": "a", "started_at": datetime(2026, 11, 22, 0, 30, tzinfo=UTC)},
                {"call_id": "b", "started_at": datetime(2026, 11, 22, 8, 45, tzinfo=SHANGHAI)},
                {"call_id": "c", "started_at": datetime(2026, 11, 22, 1, 0, tzinfo=UTC)},
            ],
        )
    since = datetime(2026, 11, 22, 8, 40, tzinfo=SHANGHAI)  # 00:40 UTC
    async with migrated_engine.connect() as conn:
        rows = await conn.execute(
            select(Call.call_id).where(Call.started_at >= since).order_by(Call.started_at)
        )
        assert list(rows.scalars()) == ["b", "c"]


async def test_sqlite_stores_naive_utc_text_and_readable_json(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(
                insert(AuditLog).values(at=T0, actor="E1", action="login", detail={"名字": "张伟"})
            )
        async with engine.connect() as conn:
            row = (await conn.exec_driver_sql("SELECT at, detail FROM audit_log")).one()
    finally:
        await engine.dispose()
    assert tuple(row) == ("2026-11-22 01:30:15.123456", '{"名字":"张伟"}')


async def test_server_defaults_apply_to_plain_inserts(migrated_engine: AsyncEngine) -> None:
    async with migrated_engine.begin() as conn:
        await conn.execute(
            insert(MailOutbox).values(
                dedupe_key="k", to_addr="a@example.com", subject="s", body_text="b", created_at=T0
            )
        )
        await conn.execute(
            insert(Incident).values(
                number="INC-1",
                channel="web",
                request_type="consultation",
                status="new",
                summary="密码重置",
                created_at=T0,
                updated_at=T0,
            )
        )
        await conn.execute(
            insert(User).values(
                employee_id="E9", name="王芳", role="agent", created_at=T0, updated_at=T0
            )
        )
    async with migrated_engine.connect() as conn:
        mail = (await conn.execute(select(MailOutbox.status, MailOutbox.attempts))).one()
        incident = (await conn.execute(select(Incident.flags, Incident.version))).one()
        active = (await conn.execute(select(User.active))).scalar_one()
    assert tuple(mail) == ("pending", 0)
    assert tuple(incident) == ([], 1)
    assert active is True


async def test_stale_incident_updates_are_refused(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    async with sessions() as session:
        session.add(
            Incident(
                number="INC-20261122-0002",
                channel="phone",
                request_type="fault",
                status="new",
                summary="VPN 连不上",
                created_at=T0,
                updated_at=T0,
            )
        )
        await session.commit()
    async with sessions() as first, sessions() as second:
        a = (await first.execute(select(Incident))).scalar_one()
        b = (await second.execute(select(Incident))).scalar_one()
        a.status = "assigned"
        await first.commit()
        b.status = "rejected"
        with pytest.raises(StaleDataError):
            await second.commit()
    async with sessions() as session:
        final = (await session.execute(select(Incident))).scalar_one()
        assert (final.status, final.version) == ("assigned", 2)


async def test_incident_numbers_are_unique_under_concurrency(
    migrated_engine: AsyncEngine,
) -> None:
    sessions = session_factory(migrated_engine)
    day = date(2026, 11, 22)

    async def take(for_day: date) -> int:
        async with sessions() as session:
            seq = await next_incident_seq(session, for_day)
            await session.commit()
            return seq

    got = await asyncio.wait_for(asyncio.gather(*(take(day) for _ in range(20))), timeout=60)
    assert sorted(got) == list(range(1, 21))
    assert await take(date(2026, 11, 23)) == 1  # every day starts again at 1
    async with migrated_engine.connect() as conn:
        assert await next_incident_seq(conn, day) == 21  # connections work too
        await conn.rollback()
    assert await take(day) == 21  # a rolled-back number is handed out again


async def test_deletes_cascade_or_detach_as_declared(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    async with sessions() as session:
        session.add(Caller(id=1, name="赵磊", created_at=T0, updated_at=T0))
        await session.flush()
        session.add(CallerPhone(caller_id=1, number_normalized="1001", raw="1001"))
        session.add(Call(call_id="x.1", caller_id=1, started_at=T0))
        await session.flush()
        session.add(RingAttempt(call_id="x.1", seat_id="seat1", started_at=T0))
        await session.commit()
    async with migrated_engine.begin() as conn:
        await conn.execute(delete(Caller))
        assert (await conn.execute(select(CallerPhone.id))).all() == []
        assert (await conn.execute(select(Call.caller_id))).scalar_one() is None
        await conn.execute(delete(Call))
        assert (await conn.execute(select(RingAttempt.id))).all() == []
