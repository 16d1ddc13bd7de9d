"""`ctid db backup` / `ctid db restore`: a consistent copy of the database while ctid runs (SQLite's
online backup API; PostgreSQL through `pg_dump`/`pg_restore`), restored only into an empty one."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

from ctid.core.errors import CtidError
from ctid.db.engine import create_engine, parse_url

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"


class BackupError(CtidError):
    """A backup or restore could not be done (the message says why)."""


class ToolMissingError(BackupError):
    """`pg_dump`/`pg_restore` is not installed."""


class TargetNotEmptyError(BackupError):
    """The backup file exists already, or the database to restore into holds tables."""


class BadBackupError(BackupError):
    """The file is not a ctid backup this database can take."""


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("database url: an in-memory SQLite database has nothing to back up")
    return Path(url.database)


def _pg_env(url: URL) -> dict[str, str]:
    """libpq settings for pg_dump/pg_restore; the password goes in the environment, never argv."""
    env = dict(os.environ)
    for var, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[var] = str(value)
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(
            f"{name} is not installed: install the PostgreSQL client tools "
            f"(Debian: apt-get install postgresql-client) or back up with your own {name}"
        )
    return path


async def _run(argv: list[str], env: dict[str, str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        detail = (err or out).decode(errors="replace").strip().splitlines()
        raise BackupError(
            f"{Path(argv[0]).name} failed: {detail[-1] if detail else proc.returncode}"
        )


async def backup(database_url: str, to: Path) -> str:
    """Write a backup of the database to `to` (which must not exist); returns what was done."""
    url = parse_url(database_url)
    if await asyncio.to_thread(to.exists):
        raise TargetNotEmptyError(f"{to}: exists already (choose a new file)")
    if url.get_backend_name() == "sqlite":
        source = _sqlite_path(url)
        if not source.is_file():
            raise BackupError(f"{source}: the SQLite database does not exist")
        await asyncio.to_thread(_sqlite_copy, source, to)
        return f"{to}: SQLite backup of {source}"
    dump = _tool("pg_dump")
    partial = to.with_name(to.name + ".partial")
    try:
        await _run(
            [dump, "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"],
            _pg_env(url),
        )
        partial.replace(to)
    finally:
        partial.unlink(missing_ok=True)
    return f"{to}: pg_dump of database {url.database} on {url.host or 'localhost'}"


def _sqlite_copy(source: Path, to: Path) -> None:
    # The online backup API: a consistent snapshot even while the daemon writes (WAL).
    partial = to.with_name(to.name + ".partial")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
        finally:
            dst.close()
        partial.replace(to)
    finally:
        src.close()
        partial.unlink(missing_ok=True)


def backup_kind(path: Path) -> str:
    """ "sqlite" or "postgresql" from the file's first bytes; `BadBackupError` otherwise."""
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgresql"
    raise BadBackupError(f"{path}: is not a ctid backup (neither SQLite nor a pg_dump archive)")


async def _table_count(url: URL) -> int:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            if url.get_backend_name() == "sqlite":
                sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            else:
                sql = (
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            return int((await conn.execute(text(sql))).scalar_one())
    finally:
        await engine.dispose()


async def restore(database_url: str, source: Path) -> str:
    """Load the backup at `source` into the configured database, which must hold no tables."""
    url = parse_url(database_url)
    backend = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql"
    kind = backup_kind(source)
    if kind != backend:
        raise BadBackupError(
            f"{source}: is a {kind} backup; the configured database is {backend} "
            "(restore it into the same kind of database)"
        )
    if backend == "sqlite":
        target = _sqlite_path(url)
        if target.exists() and target.stat().st_size > 0 and await _table_count(url) > 0:
            raise TargetNotEmptyError(
                f"{target}: the database is not empty (restore only into a new, empty database)"
            )
        await asyncio.to_thread(_sqlite_restore, source, target)
        return f"{target}: restored from {source}"
    pg_restore = _tool("pg_restore")
    if await _table_count(url) > 0:
        raise TargetNotEmptyError(
            f"database {url.database}: is not empty (restore only into a new, empty database)"
        )
    await _run(
        [
            pg_restore,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={url.database}",
            str(source),
        ],
        _pg_env(url),
    )
    return f"database {url.database}: restored from {source}"


def _sqlite_restore(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
