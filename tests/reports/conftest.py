"""Fixtures for the report tests: the 4-seat desk config, and a migrated, empty database on
SQLite (a copy of a migrated template per test) and PostgreSQL (migrated once per session,
emptied per test), with helpers that insert facts as the ORM models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ctid.config import (
    Config,
    DatabaseConfig,
    SeatConfig,
    SiteConfig,
    SupervisorConfig,
)
from ctid.db import create_engine, session_factory
from ctid.db.schema import Call, Incident, IncidentHistory, RingAttempt

PG_DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hh: int, mm: int = 0, ss: int = 0, month: int = 11) -> datetime:
    """An instant in 2026, Shanghai wall time (day of `month`)."""
    return datetime(2026, month, day, hh, mm, ss, tzinfo=SH)


@pytest.fixture
def sqlite_url(migrated_sqlite_url: str) -> str:
    """A migrated, empty SQLite database (tests/conftest.py)."""
    return migrated_sqlite_url


@pytest.fixture
def db_url(migrated_db_url: str) -> str:
    """A migrated, empty database on each backend (tests/conftest.py)."""
    return migrated_db_url


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(sqlite_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def any_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on SQLite only."""
    return session_factory(engine)


@pytest.fixture
def any_sessions(any_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on each backend."""
    return session_factory(any_engine)


def desk_config(db_url: str = "") -> Config:
    return Config(
        site=SiteConfig(timezone="Asia/Shanghai"),
        database=DatabaseConfig(url=db_url),
        seats=(
            SeatConfig(
                id="seat1",
                name="Seat 1",
                tier="ordinary",
                interface="PJSIP/seat1",
                staffed_by="E001",
            ),
            SeatConfig(
                id="seat2",
                name="Seat 2",
                tier="ordinary",
                interface="PJSIP/seat2",
                staffed_by="E002",
            ),
            SeatConfig(
                id="seat3", name="Seat 3", tier="expert", interface="PJSIP/seat3", staffed_by="E003"
            ),
            SeatConfig(id="seat4", name="Seat 4", tier="expert", interface="PJSIP/seat4"),
        ),
        supervisors=(
            SupervisorConfig(employee_id="S001", name="Duty Manager", phone="PJSIP/sup1"),
        ),
    )


@pytest.fixture
def cfg() -> Config:
    return desk_config()


# --------------------------------------------------------------------------- fact builders


def call(
    call_id: str,
    started: datetime,
    outcome: str | None,
    *,
    number: str | None = None,
    queued_s: float | None = None,
    answered_s: float | None = None,
    ended_s: float | None = None,
    seat: str | None = None,
    ring: int | None = None,
    within: bool | None = None,
    talk_s: float | None = None,
    capped: bool = False,
    transferred_to: str | None = None,
    incident_id: int | None = None,
) -> Call:
    """A `calls` row; the `*_s` arguments are seconds after `started`."""

    def after(s: float | None) -> datetime | None:
        return started + timedelta(seconds=s) if s is not None else None

    return Call(
        call_id=call_id,
        caller_number=number,
        started_at=started,
        queued_at=after(queued_s),
        answered_at=after(answered_s),
        ended_at=after(ended_s),
        answered_by_seat=seat,
        answer_ring=ring,
        within_rings=within,
        outcome=outcome,
        talk_s=talk_s,
        capped=capped,
        transferred_to=transferred_to,
        incident_id=incident_id,
    )


def ring(
    call_id: str, seat: str, started: datetime, outcome: str, ring_s: float = 15.0
) -> RingAttempt:
    return RingAttempt(
        call_id=call_id,
        seat_id=seat,
        started_at=started,
        ended_at=started + timedelta(seconds=ring_s),
        outcome=outcome,
        ring_s=ring_s,
    )


def incident(
    inc_id: int,
    created: datetime,
    *,
    request_type: str = "fault",
    category: str | None = None,
    status: str = "in_progress",
    owner_seat: str | None = None,
    owner_employee: str | None = None,
    owner_group: str | None = None,
    flags: list[str] | None = None,
    satisfaction: int | None = None,
) -> Incident:
    return Incident(
        id=inc_id,
        number=f"INC-{created:%Y%m%d}-{inc_id:04d}",
        channel="phone",
        request_type=request_type,
        category=category,
        status=status,
        summary=f"incident {inc_id}",
        owner_seat=owner_seat,
        owner_employee=owner_employee,
        owner_group=owner_group,
        flags=flags or [],
        satisfaction=satisfaction,
        created_at=created,
        updated_at=created,
    )


def history(
    inc_id: int, when: datetime, action: str, actor: str = "seat1", **detail: Any
) -> IncidentHistory:
    return IncidentHistory(
        incident_id=inc_id, at=when, actor=actor, action=action, detail=detail or None
    )


async def insert(sessions: async_sessionmaker[AsyncSession], *rows: Any) -> None:
    """Add rows in order, flushing between them (incidents before the calls that point at them)."""
    async with sessions() as s, s.begin():
        for row in rows:
            s.add(row)
            await s.flush()
