"""Alembic environment for ctid: runs the migrations on the connection ctid's `upgrade()` hands
over (a sync facade of the async engine, via `run_sync`), or, from the `alembic` command line,
on an async engine built from `-x url=...` / `sqlalchemy.url`."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection

from ctid.db.engine import create_engine, parse_url
from ctid.db.schema import is_modelled, metadata

config = context.config


def _record_applied(
    ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: dict[str, Any]
) -> None:
    applied = config.attributes.get("applied")
    if applied is not None and step.is_upgrade and step.up_revision_id is not None:
        applied.append(step.up_revision_id)


def _options() -> dict[str, Any]:
    return {
        "target_metadata": metadata,
        "compare_type": True,
        # The FTS5 table and the trigram index are made by hand in 0003; autogenerate skips them.
        "include_name": lambda name, type_, _parents: is_modelled(name, type_),
        # SQLite cannot ALTER most things: autogenerate batch operations (plain ALTERs on PG).
        "render_as_batch": True,
        "on_version_apply": _record_applied,
    }


def _run_on(connection: Connection) -> None:
    context.configure(connection=connection, **_options())
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database with -x url=... or sqlalchemy.url")
    return url


async def _run_with_own_engine() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run_on)
            await conn.commit()
    finally:
        await engine.dispose()


def main() -> None:
    if context.is_offline_mode():
        context.configure(
            url=parse_url(_url()),
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            **_options(),
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_with_own_engine())


main()
