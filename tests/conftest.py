"""Database fixtures: `sqlite_url` (a fresh file), `pg_url` (a throwaway PostgreSQL database for
the session), `pg_empty_url` (that database emptied for one test) and `db_url`/`engine`/
`migrated_engine`, parametrised over both backends."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ctid.db import create_engine, upgrade
from ctid.db.schema import metadata

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


# --------------------------------------------------------------------------- migrated databases
# For tests that need a migrated, empty database and not the migrations themselves: SQLite is a
# copy of one migrated template file (migrating takes ~0.3 s), PostgreSQL is migrated once per
# session and emptied for each test.


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrated-template") / "ctid.db"
    _run_isolated(_migrate(f"sqlite+aiosqlite:///{path.as_posix()}"))
    return path


@pytest.fixture(scope="session")
def migrated_pg_url() -> Iterator[str]:
    """A migrated PostgreSQL database for this session (dropped at the end)."""
    admin = os.environ.get("CTID_TEST_PG_URL", PG_DEFAULT_URL)
    name = f"ctid_test_{secrets.token_hex(6)}"
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


@pytest.fixture
def migrated_sqlite_url(migrated_sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated, empty SQLite database of this test's own."""
    target = tmp_path / "migrated" / "ctid.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite_template, target)
    return f"sqlite+aiosqlite:///{target.as_posix()}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated_db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("migrated_sqlite_url"))
    url = str(request.getfixturevalue("migrated_pg_url"))
    # DELETE beats TRUNCATE on a handful of tiny tables (TRUNCATE rewrites every file).
    _run_isolated(
        _admin(url, *(f'DELETE FROM "{t.name}"' for t in reversed(metadata.sorted_tables)))
    )
    return url


# --------------------------------------------------------------------------- headless Chromium

CHROMIUM = os.environ.get("CTID_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium (never a downloaded browser); missing: skip, or fail under CI."""
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (set CTID_CHROMIUM; apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()
