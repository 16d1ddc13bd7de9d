"""The incident reports as one service for the reports page (`IncidentReports`): every table of
`ctid.reports.incidents` for a period, and each as CSV."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.clock import Clock
from ctid.reports.incidents import (
    ArticleRow,
    BacklogRow,
    FcrRow,
    LineRow,
    SlaRow,
    TypeCategoryRow,
    backlog_by_age,
    by_type_and_category,
    categories_without_article,
    first_contact_resolution,
    first_line_by_article,
    resolution_lines,
    rows_csv,
    sla_by_priority,
)
from ctid.reports.render import csv_text

TABLES = ("types", "sla", "backlog", "lines", "fcr", "articles", "uncovered")
"""The CSV downloads: `GET /reports/incidents.csv?table=…`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentReportTables:
    types: tuple[TypeCategoryRow, ...]
    sla: tuple[SlaRow, ...]
    backlog: tuple[BacklogRow, ...]
    lines: tuple[LineRow, ...]
    fcr: FcrRow
    articles: tuple[ArticleRow, ...]
    uncovered: tuple[str, ...]
    """Categories no published article covers."""


class IncidentReports:
    """The incident report tables over the database (the backlog is as of now)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cfg: Config,
        clock: Clock,
        *,
        categories: Sequence[str] | None = None,
    ) -> None:
        self._sessions = sessions
        self._cfg = cfg
        self._clock = clock
        # The tickets' vocabulary (passed in by the app): a category no incident has used yet
        # is still one the desk has no article for.
        self._categories = categories

    async def tables(self, start: date, end: date) -> IncidentReportTables:
        s, c, now = self._sessions, self._cfg, self._clock.utcnow()
        return IncidentReportTables(
            types=tuple(await by_type_and_category(s, c, start, end)),
            sla=tuple(await sla_by_priority(s, c, start, end, now)),
            backlog=tuple(await backlog_by_age(s, now)),
            lines=tuple(await resolution_lines(s, c, start, end)),
            fcr=await first_contact_resolution(s, c, start, end),
            articles=tuple(await first_line_by_article(s, c, start, end)),
            uncovered=tuple(await categories_without_article(s, self._categories)),
        )

    async def csv(self, start: date, end: date, table: str) -> str:
        t = await self.tables(start, end)
        match table:
            case "types":
                return rows_csv(TypeCategoryRow, t.types)
            case "sla":
                return rows_csv(SlaRow, t.sla)
            case "backlog":
                return rows_csv(BacklogRow, t.backlog)
            case "lines":
                return rows_csv(LineRow, t.lines)
            case "fcr":
                return rows_csv(FcrRow, [t.fcr])
            case "articles":
                return rows_csv(ArticleRow, t.articles)
            case "uncovered":
                return csv_text(["category"], [[c] for c in t.uncovered])
            case _:
                raise ValueError(f"no incident report table {table!r}")
