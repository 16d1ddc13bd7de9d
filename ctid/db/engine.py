"""Builds ctid's async SQLAlchemy engine and session factory for SQLite (aiosqlite) or PostgreSQL
(asyncpg): driver selection, SQLite pragmas (WAL, busy_timeout, foreign keys), pool settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from ctid.core.errors import StoreError

log = structlog.get_logger(__name__)

_SQLITE_DRIVER = "sqlite+aiosqlite"
_PG_DRIVER = "postgresql+asyncpg"


def parse_url(url: str | URL) -> URL:
    """The URL with ctid's async driver filled in (`sqlite://` → aiosqlite, `postgresql://` →
    asyncpg). Raises `StoreError` for anything else; never echoes the URL (it may hold a password).
    """
    if isinstance(url, URL):
        parsed = url
    else:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(
                "database url is not a valid URL (expected sqlite:///PATH or "
                "postgresql://USER@HOST/DB)"
            ) from None
    backend = parsed.get_backend_name()
    explicit_driver = "+" in parsed.drivername
    if backend == "sqlite":
        if explicit_driver and parsed.get_driver_name() != "aiosqlite":
            raise StoreError(
                f"database url: driver {parsed.drivername!r} is not supported; use {_SQLITE_DRIVER}"
            )
        return parsed.set(drivername=_SQLITE_DRIVER)
    if backend in ("postgresql", "postgres"):
        if explicit_driver and parsed.get_driver_name() != "asyncpg":
            raise StoreError(
                f"database url: driver {parsed.drivername!r} is not supported; use {_PG_DRIVER}"
            )
        return parsed.set(drivername=_PG_DRIVER)
    raise StoreError(
        f"database url: backend {backend!r} is not supported (use sqlite or postgresql)"
    )


def display_url(url: str | URL) -> str:
    """The URL for messages and logs, password masked."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return "(invalid database url)"
    return parsed.render_as_string(hide_password=True)


def _is_sqlite_memory(url: URL) -> bool:
    db = url.database or ""
    return db in ("", ":memory:") or url.query.get("mode") == "memory"


def _dumps(value: Any) -> str:
    # Keep Chinese readable in the database (the default escapes it to \uXXXX).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def create_engine(
    url: str | URL,
    *,
    sqlite_busy_timeout_ms: int = 5000,
    pool_size: int = 5,
    echo: bool = False,
) -> AsyncEngine:
    """An `AsyncEngine` for `url` (see `parse_url`).

    SQLite: the file's parent directory is created; every connection gets WAL, `busy_timeout`
    and `foreign_keys=ON`. SQLite keeps the driver's default transaction handling (BEGIN just
    before the first write), which behaves like PostgreSQL's READ COMMITTED for read-then-write
    units: guard read-modify-write with a conditional UPDATE (incidents.version) or an upsert.
    PostgreSQL: a bounded pool with pre-ping, session time zone UTC.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite_busy_timeout_ms, echo)
    engine = _create_async_engine(
        parsed,
        echo=echo,
        json_serializer=_dumps,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=30,
        pool_recycle=1800,
        pool_pre_ping=True,
        connect_args={
            "timeout": 10,
            "server_settings": {"application_name": "ctid", "timezone": "UTC"},
        },
    )
    log.debug("db_engine_created", url=display_url(parsed), backend="postgresql")
    return engine


def _sqlite_engine(url: URL, busy_timeout_ms: int, echo: bool) -> AsyncEngine:
    memory = _is_sqlite_memory(url)
    if not memory and url.database is not None and not url.query.get("uri"):
        try:
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"database {display_url(url)}: cannot create its directory ({exc.strerror})"
            ) from None
    kwargs: dict[str, Any] = {"echo": echo, "json_serializer": _dumps}
    if memory:
        # Every new connection to :memory: is a new, empty database: share one connection.
        kwargs["poolclass"] = StaticPool
    engine = _create_async_engine(url, **kwargs)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL needs a lock another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                # Safe with WAL (no corruption on power loss; at worst the last commits roll back).
                cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    log.debug("db_engine_created", url=display_url(url), backend="sqlite")
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for one unit of work each; objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
