"""Fixtures for the tickets tests: a desk config, a fake clock, and a migrated database on SQLite
(a fresh copy of a migrated template per test) and PostgreSQL (migrated once per session,
truncated per test), plus the directory and the incident store on top of it."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
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
from ctid.db import create_engine, session_factory, upgrade
from ctid.db.schema import metadata
from ctid.tickets.directory import CallerDirectory
from ctid.tickets.store import IncidentStore

PG_DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 22, 9, 30, tzinfo=SHANGHAI)
SECRET = b"test-link-secret-0123456789abcdef"


def _run_isolated(coro: Coroutine[Any, Any, None]) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


async def _admin(url: str, *statements: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for stmt in statements:
                await conn.exec_driver_sql(stmt)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets its own copy (migrating takes ~0.3 s)."""
    path = tmp_path_factory.mktemp("tickets-template") / "ctid.db"
    _run_isolated(_migrate(f"sqlite+aiosqlite:///{path.as_posix()}"))
    return path


@pytest.fixture(scope="session")
def tickets_pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database for this session (dropped at the end); skipped (failed
    under CI) when the server is unreachable."""
    admin = os.environ.get("CTID_TEST_PG_URL", PG_DEFAULT_URL)
    name = f"ctid_tickets_{secrets.token_hex(6)}"
    try:
        _run_isolated(_admin(admin, f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        reason = f"PostgreSQL (CTID_TEST_PG_URL) is unreachable: {exc!r}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    _run_isolated(_migrate(url))
    yield url
    _run_isolated(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        return _sqlite_copy(request, tmp_path)
    url = str(request.getfixturevalue("tickets_pg_url"))
    # DELETE beats TRUNCATE on a handful of tiny tables (TRUNCATE rewrites every file).
    _run_isolated(
        _admin(url, *(f'DELETE FROM "{t.name}"' for t in reversed(metadata.sorted_tables)))
    )
    return url


def _sqlite_copy(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    template: Path = request.getfixturevalue("sqlite_template")
    target = tmp_path / "ctid.db"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target.as_posix()}"


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty SQLite database (for tests that need only one backend)."""
    return _sqlite_copy(request, tmp_path)


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
        site=SiteConfig(name="Group IT Service Desk", timezone="Asia/Shanghai"),
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
