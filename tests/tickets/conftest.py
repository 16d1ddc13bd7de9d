"""Fixtures for the tickets tests: a desk config, a fake clock, and a migrated database on SQLite
(a fresh copy of a migrated template per test) and PostgreSQL (migrated once per session,
truncated per test), plus the directory and the incident store on top of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ctid.config import (
    Config,
    IncidentConfig,
    SeatConfig,
    SiteConfig,
    SupervisorConfig,
    WebConfig,
)
from ctid.core.clock import FakeClock
from ctid.db import create_engine, session_factory
from ctid.tickets.call_facts import CallFactStore
from ctid.tickets.callbacks import CallbackStore
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.incidents import IncidentStore

PG_DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 9, 30, tzinfo=SHANGHAI)
SECRET = b"test-link-secret-0123456789abcdef"


@pytest.fixture
def db_url(migrated_db_url: str) -> str:
    """A migrated, empty database on each backend (tests/conftest.py)."""
    return migrated_db_url


@pytest.fixture
def sqlite_url(migrated_sqlite_url: str) -> str:
    """A migrated, empty SQLite database (for tests that need only one backend)."""
    return migrated_sqlite_url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


def desk_config(**incidents: Any) -> Config:
    return Config(
        site=SiteConfig(name="Group IT Service Desk", timezone="Asia/Shanghai", language="en"),
        web=WebConfig(public_url="https://desk.example.com/"),
        seats=(
            SeatConfig(id="seat1", name="Seat 1", tier="ordinary", interface="PJSIP/seat1"),
            SeatConfig(id="seat2", name="Seat 2", tier="ordinary", interface="PJSIP/seat2"),
            SeatConfig(id="seat3", name="Seat 3", tier="expert", interface="PJSIP/seat3"),
            SeatConfig(id="seat4", name="Seat 4", tier="expert", interface="PJSIP/seat4"),
        ),
        supervisors=(
            SupervisorConfig(
                employee_id="S001",
                name="Duty Manager",
                phone="PJSIP/sup1",
                email="duty@example.com",
            ),
        ),
        incidents=IncidentConfig(
            second_line_groups={
                "network": "netops@example.com",
                "desktop": "desktop-support@example.com",
            },
            followup_after_close_s=3600,
            **incidents,
        ),
    )


@pytest.fixture
def cfg() -> Config:
    return desk_config()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0, "Asia/Shanghai")


@pytest.fixture
def directory(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, cfg: Config
) -> CallerDirectory:
    return CallerDirectory(sessions, clock, cfg)


@pytest.fixture
def store(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, cfg: Config
) -> IncidentStore:
    return IncidentStore(sessions, clock, cfg, link_secret=SECRET)


@pytest.fixture
def callbacks(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, cfg: Config
) -> CallbackStore:
    return CallbackStore(sessions, clock, cfg)


@pytest.fixture
def call_facts(sessions: async_sessionmaker[AsyncSession], cfg: Config) -> CallFactStore:
    return CallFactStore(sessions, cfg)
