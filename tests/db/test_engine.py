"""The engine: URL handling, SQLite pragmas on every connection, foreign keys on both backends."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ctid.core.errors import StoreError
from ctid.db import check_schema, create_engine, display_url, parse_url, upgrade
from ctid.db.schema import RingAttempt


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///var/ctid.db", "sqlite+aiosqlite:///var/ctid.db"),
        ("sqlite+aiosqlite:////abs/ctid.db", "sqlite+aiosqlite:////abs/ctid.db"),
        ("postgresql://u:p@db/ctid", "postgresql+asyncpg://u:p@db/ctid"),
        ("postgres://u@db/ctid", "postgresql+asyncpg://u@db/ctid"),
        ("postgresql+asyncpg://u@db:5433/ctid", "postgresql+asyncpg://u@db:5433/ctid"),
    ],
)
def test_parse_url_picks_the_async_driver(given: str, expected: str) -> None:
    assert parse_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("mysql://u@db/ctid", "backend 'mysql' is not supported"),
        ("postgresql+psycopg2://u@db/ctid", "driver 'postgresql+psycopg2' is not supported"),
        ("sqlite+pysqlite:///x.db", "driver 'sqlite+pysqlite' is not supported"),
        ("not a url", "not a valid URL"),
    ],
)
def test_parse_url_refuses_what_ctid_cannot_drive(given: str, complaint: str) -> None:
    with pytest.raises(StoreError, match=re.escape(complaint)):
        parse_url(given)


def test_display_url_masks_the_password() -> None:
    shown = display_url("postgresql+asyncpg://ctid:hunter2@db.example/ctid")
    assert "hunter2" not in shown
    assert shown == "postgresql+asyncpg://ctid:***@db.example/ctid"


async def test_sqlite_pragmas_are_set_on_every_connection(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}", sqlite_busy_timeout_ms=1234)
    try:
        # Two connections held at once, so both came from the connect hook (not one reused).
        async with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
                assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 1234
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
                assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1  # NORMAL
    finally:
        await engine.dispose()


async def test_sqlite_busy_timeout_zero_fails_fast_on_a_held_write_lock(tmp_path: Path) -> None:
    # Shows the busy_timeout we set is the one in effect: at 0 a second writer is refused at
    # once instead of waiting (the default driver timeout would make it wait 5 s).
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    holder = create_engine(url)
    impatient = create_engine(url, sqlite_busy_timeout_ms=0)
    try:
        async with holder.connect() as a:
            await a.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            await a.commit()
            await a.exec_driver_sql("BEGIN IMMEDIATE")
            async with impatient.connect() as b:
                with pytest.raises(Exception, match="database is locked"):
                    await b.exec_driver_sql("INSERT INTO t VALUES (1)")
            await a.rollback()
    finally:
        await holder.dispose()
        await impatient.dispose()


async def test_sqlite_file_and_its_directory_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ctid.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        await check_schema(engine)
    finally:
        await engine.dispose()
    assert path.is_file()


async def test_sqlite_in_memory_database_is_shared_by_the_pool() -> None:
    engine = create_engine("sqlite+aiosqlite://")
    try:
        assert await upgrade(engine) == ["0001", "0002", "0003", "0007"]
        await check_schema(engine)  # a new pooled connection would see an empty database
    finally:
        await engine.dispose()


async def test_foreign_keys_are_enforced(migrated_engine: AsyncEngine) -> None:
    async with migrated_engine.connect() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(
                insert(RingAttempt).values(
                    call_id="no-such-call", seat_id="seat1", started_at=datetime.now(UTC)
                )
            )


@pytest.mark.postgres
async def test_postgres_sessions_run_in_utc(pg_empty_url: str) -> None:
    engine = create_engine(pg_empty_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW timezone"))).scalar() == "UTC"
            assert (await conn.execute(text("SHOW application_name"))).scalar() == "ctid"
    finally:
        await engine.dispose()


def test_sqlite_engine_refuses_an_uncreatable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create its directory"):
        create_engine(f"sqlite:///{blocker / 'sub' / 'ctid.db'}")
