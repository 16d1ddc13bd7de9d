"""Database fixtures: `sqlite_url` (a fresh file), `pg_url` (a throwaway PostgreSQL database for
the session), `pg_empty_url` (that database emptied for one test) and `db_url`/`engine`/
`migrated_engine`, parametrised over both backends."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ctid.db import create_engine, upgrade

PG_DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def _run_isolated(coro: Coroutine[Any, Any, None]) -> None:
    # A private loop: never touches the loop pytest-asyncio runs the tests on.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.close()


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
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test session (dropped at the end).

    Unreachable server: the test fails when `CI` is set, and is skipped otherwise.
    """
    admin = os.environ.get("CTID_TEST_PG_URL", PG_DEFAULT_URL)
    name = f"ctid_test_{secrets.token_hex(6)}"
    try:
        _run_isolated(_admin(admin, f'CREATE DATABASE "{name}"'))
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        shown = make_url(admin).render_as_string(hide_password=True)
        reason = f"PostgreSQL at {shown} (CTID_TEST_PG_URL) is unreachable: {exc!r}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    _run_isolated(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg_empty_url(pg_url: str) -> str:
    """The session's PostgreSQL database with every table dropped."""
    await _admin(pg_url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")
    return pg_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet (in a directory that does not exist yet)."""
    return f"sqlite+aiosqlite:///{(tmp_path / 'var' / 'ctid.db').as_posix()}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_empty_url"))


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def migrated_engine(engine: AsyncEngine) -> AsyncEngine:
    await upgrade(engine)
    return engine
