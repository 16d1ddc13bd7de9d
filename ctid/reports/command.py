"""`ctid report` and `ctid report agent-month`: open the configured database, check it is
migrated, compute the report and render it as text or CSV (the CLI prints the string)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.db import check_schema, create_engine, session_factory
from ctid.reports import agent_month, kpi
from ctid.reports.period import ReportError, parse_day, parse_month
from ctid.reports.render import agent_month_output, report_output, text_table
from ctid.reports.seat_time import STATES, seat_time, seat_time_csv


@asynccontextmanager
async def _sessions(cfg: Config) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(
        cfg.database_url,
        sqlite_busy_timeout_ms=cfg.database.sqlite_busy_timeout_ms,
        pool_size=cfg.database.pool_size,
    )
    try:
        await check_schema(engine)
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def report_command(
    cfg: Config,
    from_: date | str,
    to: date | str,
    by: str = "total",
    as_csv: bool = False,
    *,
    is_open: Callable[[datetime], bool] | None = None,
) -> str:
    """`ctid report --from YYYY-MM-DD --to YYYY-MM-DD [--by seat|tier|day|hour] [--csv]`.

    Raises `ReportError` for bad arguments, `NotMigratedError`/`StoreError` for the database.
    """
    start = parse_day(from_, "--from")
    end = parse_day(to, "--to")
    if end < start:
        raise ReportError(f"--to {end} is before --from {start}")
    grouping = next((g for g in kpi.GROUPINGS if g == by), None)
    if grouping is None:
        raise ReportError(f"--by {by!r} is not one of {', '.join(kpi.GROUPINGS)}")
    async with _sessions(cfg) as sessions:
        report = await kpi.compute(sessions, cfg, start, end, grouping, is_open=is_open)
    return report_output(report, as_csv=as_csv)


async def agent_month_command(cfg: Config, month: str, as_csv: bool = False) -> str:
    """`ctid report agent-month YYYY-MM [--csv]`."""
    parse_month(month)  # a bad month fails before the database is touched
    async with _sessions(cfg) as sessions:
        review = await agent_month.compute(sessions, cfg, month)
    return agent_month_output(review, as_csv=as_csv)


async def seat_time_command(
    cfg: Config, from_: date | str, to: date | str, now: datetime, as_csv: bool = False
) -> str:
    """`ctid report --seat-time --from YYYY-MM-DD --to YYYY-MM-DD [--csv]`: time per seat
    state per seat per day (minutes in the table, seconds in the CSV)."""
    start = parse_day(from_, "--from")
    end = parse_day(to, "--to")
    if end < start:
        raise ReportError(f"--to {end} is before --from {start}")
    async with _sessions(cfg) as sessions:
        days = await seat_time(sessions, cfg.site.timezone, start, end, now)
    if as_csv:
        return seat_time_csv(days)
    rows = [
        [d.seat, d.day.isoformat(), *(f"{d.seconds.get(s, 0.0) / 60:.1f}" for s in STATES)]
        for d in days
    ]
    return text_table(["seat", "day", *(f"{s} min" for s in STATES)], rows, left=2)
