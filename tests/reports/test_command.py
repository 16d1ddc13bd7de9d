"""`report_command` / `agent_month_command`: the configured database, end to end."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.core.errors import NotMigratedError
from ctid.reports import ReportError, agent_month_command, report_command

from .conftest import at, call, desk_config, insert
from .test_kpi import week


async def test_report_command_csv_and_text(
    sqlite_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await insert(sessions, *week())
    cfg = desk_config(sqlite_url)
    text = await report_command(cfg, "2026-11-02", "2026-11-03", "day", True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["day"] for r in rows] == ["2026-11-02", "2026-11-03", "total"]
    assert [r["offered"] for r in rows] == ["5", "3", "8"]
    assert [r["loss_rate"] for r in rows] == ["0.4000", "0.0000", "0.2500"]
    assert rows[2]["first_line_rate"] == "0.6000"
    text = await report_command(cfg, "2026-11-02", "2026-11-03", "total", False)
    assert "Call loss rate" in text and "25.0%" in text
    assert ["fault", "network", "2"] in [line.split() for line in text.splitlines()]


async def test_agent_month_command(
    sqlite_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await insert(sessions, call("c1", at(2, 9), "answered", seat="seat1", answered_s=5))
    cfg = desk_config(sqlite_url)
    rows = list(csv.reader(io.StringIO(await agent_month_command(cfg, "2026-11", True))))
    assert rows[1] == ["2026-11", "seat", "seat1", "Seat 1", "0", "0", "0", "0", "0"]
    assert "Agent review 2026-11 (Asia/Shanghai)" in await agent_month_command(cfg, "2026-11")


@pytest.mark.parametrize(
    ("from_", "to", "by", "message"),
    [
        ("2026-11-3", "2026-11-03", "day", "--from '2026-11-3' is not a date written YYYY-MM-DD"),
        ("2026-11-02", "2026-02-30", "day", "--to '2026-02-30' is not a valid calendar date"),
        ("2026-11-03", "2026-11-02", "day", "--to 2026-11-02 is before --from 2026-11-03"),
        ("2026-11-02", "2026-11-03", "week", "--by 'week' is not one of total, seat, tier"),
    ],
)
async def test_bad_arguments_fail_before_the_database(
    tmp_path: Path, from_: str, to: str, by: str, message: str
) -> None:
    # The database does not even exist: the arguments are checked first.
    cfg = desk_config(f"sqlite+aiosqlite:///{(tmp_path / 'nope.db').as_posix()}")
    with pytest.raises(ReportError) as err:
        await report_command(cfg, from_, to, by, False)
    assert str(err.value).startswith(message)
    with pytest.raises(ReportError, match="YYYY-MM"):
        await agent_month_command(cfg, "2026-13")
    assert not (tmp_path / "nope.db").exists()


async def test_unmigrated_database_is_refused(tmp_path: Path) -> None:
    cfg = desk_config(f"sqlite+aiosqlite:///{(tmp_path / 'empty.db').as_posix()}")
    with pytest.raises(NotMigratedError):
        await report_command(cfg, "2026-11-02", "2026-11-03", "total", False)
