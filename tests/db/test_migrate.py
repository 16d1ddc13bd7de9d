"""Migrations on SQLite and PostgreSQL: from empty, idempotent, concurrent, matching the models;
`check_schema` refuses databases that are behind, ahead or unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import structlog
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.typing import EventDict

from ctid.core.errors import NotMigratedError, StoreError
from ctid.db import check_schema, create_engine, current_revision, head_revision, upgrade
from ctid.db.migrate import sql_dir
from ctid.db.schema import Holiday, is_modelled, metadata


def _tables(conn: Connection) -> set[str]:
    # Without the FTS5 table and its shadow tables (SQLite's search index, not a model).
    return {t for t in inspect(conn).get_table_names() if is_modelled(t, "table")}


ALL = ["0001", "0002", "0003", "0004", "0006", "0007", "0008"]
"""Every migration, oldest first."""


async def test_upgrade_from_empty_creates_every_table(engine: AsyncEngine) -> None:
    assert await current_revision(engine) is None
    assert await upgrade(engine) == ALL
    assert await current_revision(engine) == head_revision() == ALL[-1]
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == set(metadata.tables) | {"alembic_version"}


async def test_upgrade_is_idempotent_and_keeps_data(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Holiday).values(day=date(2026, 10, 1), kind="holiday", name="国庆节")
        )
    assert await upgrade(engine) == []
    assert await current_revision(engine) == ALL[-1]
    async with engine.connect() as conn:
        assert (await conn.execute(select(Holiday.name))).scalar_one() == "国庆节"


async def test_upgrade_accepts_a_url(db_url: str) -> None:
    assert await upgrade(db_url) == ALL
    assert await current_revision(db_url) == ALL[-1]


async def test_concurrent_upgrades_apply_the_migration_once(db_url: str) -> None:
    first, second = create_engine(db_url), create_engine(db_url)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(upgrade(first), upgrade(second)), timeout=150
        )
    finally:
        await first.dispose()
        await second.dispose()
    assert sorted(results) == [[], ALL]


class _Counter:
    """A structlog processor that sets `reached` once `name` was logged `times` times."""

    def __init__(self, name: str, times: int) -> None:
        self.name, self.times, self.seen = name, times, 0
        self.reached = asyncio.Event()

    def __call__(self, _logger: object, _method: str, event_dict: EventDict) -> EventDict:
        if event_dict.get("event") == self.name:
            self.seen += 1
            if self.seen >= self.times:
                self.reached.set()
        raise structlog.DropEvent

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        saved = structlog.get_config()
        structlog.configure(processors=[self], cache_logger_on_first_use=False)
        try:
            yield
        finally:
            structlog.configure(**saved)


async def test_concurrent_sqlite_upgrades_wait_out_a_held_lock(sqlite_url: str) -> None:
    """The busy machine, made deterministic: another process holds the brand-new file's lock
    (so the WAL switch and BEGIN IMMEDIATE answer "database is locked" at once) while two
    upgrades start; both wait, then one migrates and the other finds it done."""
    path = Path(make_url(sqlite_url).database or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE IF NOT EXISTS squatter (x INTEGER)")
    first = create_engine(sqlite_url, sqlite_busy_timeout_ms=20)
    second = create_engine(sqlite_url, sqlite_busy_timeout_ms=20)
    try:
        waits = _Counter("db_upgrade_waiting", 2)
        with waits.capturing():
            both = asyncio.ensure_future(asyncio.gather(upgrade(first), upgrade(second)))
            try:
                await asyncio.wait_for(waits.reached.wait(), timeout=60)
                assert not both.done()
            finally:
                holder.execute("COMMIT")
                holder.close()
            results = await asyncio.wait_for(both, timeout=150)
    finally:
        await first.dispose()
        await second.dispose()
    assert sorted(results) == [[], ALL]


async def test_upgrade_from_0001_keeps_incidents(engine: AsyncEngine) -> None:
    """A database migrated by the first release moves forward with its data intact."""
    assert await upgrade(engine, target="0001") == ["0001"]
    async with engine.begin() as conn:
        await conn.execute(
            insert(Holiday).values(day=date(2026, 10, 2), kind="holiday", name="国庆节")
        )
    assert await upgrade(engine) == ALL[1:]
    async with engine.connect() as conn:
        assert (await conn.execute(select(Holiday.name))).scalar_one() == "国庆节"


async def test_check_schema_refuses_an_empty_database_then_passes(engine: AsyncEngine) -> None:
    with pytest.raises(NotMigratedError) as caught:
        await check_schema(engine)
    message = str(caught.value)
    assert f"is not migrated (at none, need {ALL[-1]})" in message
    assert message.endswith("run `ctid db upgrade --config PATH`")
    await upgrade(engine)
    await check_schema(engine)


async def test_check_schema_names_the_config_file(engine: AsyncEngine) -> None:
    with pytest.raises(NotMigratedError, match=r"ctid db upgrade --config /etc/ctid/ctid\.toml`$"):
        await check_schema(engine, config_path="/etc/ctid/ctid.toml")


async def test_check_schema_refuses_a_revision_from_a_newer_ctid(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(StoreError, match="at revision 9999, which this version of ctid") as caught:
        await check_schema(engine)
    assert not isinstance(caught.value, NotMigratedError)


@pytest.mark.postgres
async def test_check_schema_message_hides_the_password(pg_empty_url: str) -> None:
    url = make_url(pg_empty_url)
    if url.password is None:
        # A trust-auth server ignores it; a server that checks passwords has one in the env URL.
        url = url.set(password="not-shown-anywhere")
    secret = str(url.password)
    engine = create_engine(url.render_as_string(hide_password=False))
    try:
        with pytest.raises(NotMigratedError) as caught:
            await check_schema(engine)
    finally:
        await engine.dispose()
    assert secret not in str(caught.value)
    assert ":***@" in str(caught.value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting to it is refused


async def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    url = f"postgresql://ctid:hunter2@127.0.0.1:{_free_port()}/ctid"
    engine = create_engine(url)
    try:
        with pytest.raises(StoreError, match=r"cannot be used") as caught:
            await asyncio.wait_for(check_schema(engine), timeout=30)
    finally:
        await engine.dispose()
    assert "hunter2" not in str(caught.value)
    with pytest.raises(StoreError, match=r"cannot be used"):
        await asyncio.wait_for(upgrade(url), timeout=30)


def _model_diffs(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": lambda name, type_, _parents: is_modelled(name, type_),
        },
    )
    return list(compare_metadata(ctx, metadata))


async def test_models_match_the_migrations(migrated_engine: AsyncEngine) -> None:
    async with migrated_engine.connect() as conn:
        diffs = await conn.run_sync(_model_diffs)
    assert diffs == []


def test_sql_dir_prefers_the_copy_inside_an_installed_package(tmp_path: Path) -> None:
    pkg = tmp_path / "site-packages" / "ctid"
    (pkg / "_sql").mkdir(parents=True)
    (pkg / "_sql" / "env.py").write_text("")
    assert sql_dir(pkg) == pkg / "_sql"


def test_sql_dir_finds_the_source_checkout() -> None:
    found = sql_dir()
    assert found == Path(__file__).resolve().parents[2] / "sql"
    assert (found / "versions" / "0001_initial.py").is_file()


def test_sql_dir_missing_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="migration scripts not found"):
        sql_dir(tmp_path / "ctid")


def test_shipped_head_read_without_alembic_is_alembics_head(tmp_path: Path) -> None:
    from ctid.db.migrate import shipped_head

    assert shipped_head() == head_revision()
    # A history the plain reading cannot settle (two heads) is left to Alembic, which refuses it.
    versions = tmp_path / "versions"
    versions.mkdir()
    for src in sql_dir().joinpath("versions").glob("*.py"):
        (versions / src.name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "env.py").write_text(sql_dir().joinpath("env.py").read_text(encoding="utf-8"))
    (versions / "9999_side.py").write_text(
        'revision: str = "9999"\ndown_revision: str | None = "0001"\n', encoding="utf-8"
    )
    with pytest.raises(Exception, match="head"):
        shipped_head(tmp_path)
