"""Schema migrations: runs the Alembic scripts in `sql/` on ctid's async engine, reports the
database's revision, and refuses to start on a database that is behind (`check_schema`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import structlog
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ctid.core.errors import NotMigratedError, StoreError
from ctid.db.engine import create_engine, display_url

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

# Alembic (its script loader imports every migration module) is imported only where it is used:
# `check_schema`, on every daemon start, answers from a version query and the scripts' text.

log = structlog.get_logger(__name__)

T = TypeVar("T")

# An arbitrary constant: the PostgreSQL advisory lock that serialises concurrent upgrades.
_PG_UPGRADE_LOCK = 0x637469640001


def sql_dir(package_dir: Path | None = None) -> Path:
    """Where the migration scripts live: `ctid/_sql` in an installed wheel, else `<repo>/sql`."""
    pkg = package_dir if package_dir is not None else Path(__file__).resolve().parents[1]
    for candidate in (pkg / "_sql", pkg.parent / "sql"):
        if (candidate / "env.py").is_file():
            return candidate
    raise StoreError(
        f"migration scripts not found (looked in {pkg / '_sql'} and {pkg.parent / 'sql'})"
    )


def alembic_config(url: str | None = None, *, scripts: Path | None = None) -> AlembicConfig:
    """An Alembic configuration built in code (no alembic.ini). `url` is only needed when
    Alembic itself has to connect (e.g. `alembic revision --autogenerate` from a shell)."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(scripts if scripts is not None else sql_dir()))
    if url is not None:
        # ConfigParser treats % as interpolation; URL-escaped passwords contain it.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision(scripts: Path | None = None) -> str:
    """The newest revision this version of ctid ships."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(scripts=scripts)).get_current_head()
    if head is None:  # pragma: no cover - the repo always ships 0001
        raise StoreError("no migration scripts found")
    return head


@asynccontextmanager
async def _engine_for(engine_or_url: AsyncEngine | str) -> AsyncIterator[AsyncEngine]:
    if isinstance(engine_or_url, AsyncEngine):
        yield engine_or_url
        return
    engine = create_engine(engine_or_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _run(engine: AsyncEngine, fn: Callable[[Connection], T], *, lock: bool) -> T:
    """Run `fn` on a sync connection in one transaction; with `lock`, serialise against every
    other ctid upgrading the same database (BEGIN IMMEDIATE / advisory lock)."""
    where = display_url(engine.url)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + _SQLITE_LOCK_WAIT_S
    attempt = 0
    while True:
        try:
            async with engine.connect() as conn:
                if lock:
                    await _lock_for_upgrade(conn)
                result = await conn.run_sync(fn)
                await conn.commit()
                return result
        except (OperationalError, DBAPIError, OSError) as exc:
            # SQLite answers "database is locked" without waiting in a few places a busy
            # handler does not cover: the WAL switch of a brand-new file while another process
            # holds it (in the connect hook), and a BEGIN IMMEDIATE racing it. Another ctid is
            # upgrading: wait for it, however long a loaded machine makes it take (bounded).
            if not (_sqlite_locked(engine, exc) and loop.time() < give_up):
                raise StoreError(f"database {where} cannot be used: {_reason(exc)}") from exc
            attempt += 1
            log.info("db_upgrade_waiting", url=where, attempt=attempt, error=_reason(exc))
            await asyncio.sleep(min(0.5, 0.02 * attempt))


_SQLITE_LOCK_WAIT_S = 120.0


def _sqlite_locked(engine: AsyncEngine, exc: BaseException) -> bool:
    return engine.dialect.name == "sqlite" and "locked" in str(exc).lower()


async def _lock_for_upgrade(conn: AsyncConnection) -> None:
    if conn.dialect.name == "sqlite":
        # Take the write lock now (waits up to busy_timeout), so a second ctid upgrading the same
        # file waits here, then sees the new revision; SQLite DDL is transactional this way too.
        # A "locked" answer is retried by `_run` on a fresh connection.
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_UPGRADE_LOCK})


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    inner = orig if isinstance(orig, BaseException) else exc
    text_ = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {text_[0]}" if text_ else type(inner).__name__


async def upgrade(engine_or_url: AsyncEngine | str, *, target: str = "head") -> list[str]:
    """Bring the database up to `target`; returns the revisions applied, oldest first
    (empty when it was already there). Safe to run concurrently from several processes."""
    from alembic import command
    from alembic.util.exc import CommandError

    async with _engine_for(engine_or_url) as engine:
        cfg = alembic_config()
        applied: list[str] = []
        cfg.attributes["applied"] = applied

        def _upgrade(sync_conn: Connection) -> None:
            cfg.attributes["connection"] = sync_conn
            try:
                command.upgrade(cfg, target)
            except CommandError as exc:
                raise StoreError(f"database {display_url(engine.url)}: {exc}") from exc

        await _run(engine, _upgrade, lock=True)
        log.info(
            "db_upgraded" if applied else "db_up_to_date",
            url=display_url(engine.url),
            applied=applied,
        )
        return applied


def _current(sync_conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection=sync_conn).get_current_revision()


_REVISION = re.compile(r"^revision(?:\s*:\s*str)?\s*=\s*[\"']([\w-]+)[\"']\s*$", re.M)
_DOWN = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(?:None|[\"']([\w-]+)[\"'])\s*$", re.M)


def shipped_head(scripts: Path | None = None) -> str:
    """`head_revision` read from the scripts' `revision`/`down_revision` lines, without Alembic;
    anything it cannot read plainly (a merge, an odd line, two heads) is left to Alembic."""
    try:
        versions = (scripts if scripts is not None else sql_dir()) / "versions"
        revisions: set[str] = set()
        parents: set[str] = set()
        for path in versions.glob("*.py"):
            source = path.read_text(encoding="utf-8")
            revision = _REVISION.findall(source)
            down = _DOWN.findall(source)
            if len(revision) != 1 or len(down) != 1:
                return head_revision(scripts)
            revisions.add(revision[0])
            if down[0]:
                parents.add(down[0])
    except OSError:
        return head_revision(scripts)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else head_revision(scripts)


def _stamped(sync_conn: Connection) -> list[str] | None:
    """The rows of Alembic's version table (None: no table, never migrated)."""
    if not inspect(sync_conn).has_table("alembic_version"):
        return None
    rows = sync_conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
    return [str(r) for r in rows]


async def current_revision(engine_or_url: AsyncEngine | str) -> str | None:
    """The revision the database is at; None for a database ctid never migrated."""
    async with _engine_for(engine_or_url) as engine:
        return await _run(engine, _current, lock=False)


async def check_schema(engine: AsyncEngine, *, config_path: str | None = None) -> None:
    """Raise `NotMigratedError` unless the database is at this ctid's head revision (and
    `StoreError` if it is at a revision this ctid does not know, i.e. a newer ctid migrated it)."""
    head = shipped_head()
    stamped = await _run(engine, _stamped, lock=False)
    if stamped == [head]:
        return
    from alembic.script import ScriptDirectory

    current = await current_revision(engine)
    if current == head:  # pragma: no cover - the version query said otherwise a moment ago
        return
    where = display_url(engine.url)
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current is not None and current not in known:
        raise StoreError(
            f"database {where} is at revision {current}, which this version of ctid does not "
            f"know (it ships up to {head}): was it migrated by a newer ctid?"
        )
    raise NotMigratedError(
        f"database {where} is not migrated (at {current or 'none'}, need {head}): "
        f"run `ctid db upgrade --config {config_path or 'PATH'}`"
    )
