"""The KPI report and the monthly agent review as tables for the web (`Reports`), and their CSVs;
a bad period or grouping is `RequestRefusedError`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ctid.config import Config
from ctid.core.errors import RequestRefusedError
from ctid.i18n import Translator
from ctid.reports import agent_month as agent_month_report
from ctid.reports import kpi
from ctid.reports.kpi import GROUPINGS as GROUPINGS
from ctid.reports.period import ReportError
from ctid.reports.render import KPI_COLUMNS, Kind, agent_month_csv, report_csv


@dataclass(frozen=True, slots=True)
class KpiColumn:
    name: str
    """`KpiRow` attribute and CSV header."""
    label: str
    kind: Kind
    """rate: a fraction 0–1; seconds: a duration; score: an average 1–5."""


@dataclass(frozen=True, slots=True)
class KpiLine:
    key: str
    """The group (seat id, tier, day, hour) or `total`."""
    values: Mapping[str, float | int | None]
    """Column name → value (None: nothing to measure)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiTable:
    start: date
    end: date
    by: str
    timezone: str
    columns: tuple[KpiColumn, ...]
    """`ctid.reports.render.KPI_COLUMNS`."""
    rows: tuple[KpiLine, ...]
    total: KpiLine
    incidents_by_type: tuple[tuple[str, str | None, int], ...] = ()
    """(request type, category or None, count)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMonthLine:
    key: str
    name: str
    incidents_handled: int
    consultations_answered: int
    satisfaction_recorded: int
    callbacks_done: int

    @property
    def followups(self) -> int:
        return self.satisfaction_recorded + self.callbacks_done


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentMonthTable:
    month: str
    timezone: str
    seats: tuple[AgentMonthLine, ...]
    staff: tuple[AgentMonthLine, ...]


@dataclass
class Reports:
    """`ReportsPort` over `ctid.reports`; a bad period or grouping is `RequestRefusedError`."""

    sessions: async_sessionmaker[AsyncSession]
    cfg: Config

    async def _report(self, start: date, end: date, by: str) -> kpi.Report:
        grouping = next((g for g in kpi.GROUPINGS if g == by), None)
        if grouping is None:
            raise RequestRefusedError(f"by must be one of {', '.join(kpi.GROUPINGS)}")
        try:
            return await kpi.compute(self.sessions, self.cfg, start, end, grouping)
        except ReportError as exc:
            raise RequestRefusedError(str(exc)) from exc

    async def kpis(self, start: date, end: date, by: str) -> KpiTable:
        report = await self._report(start, end, by)
        columns = tuple(KpiColumn(c.name, c.label, c.kind) for c in KPI_COLUMNS if c.kind != "text")

        def line(row: kpi.KpiRow) -> KpiLine:
            return KpiLine(row.key, {c.name: getattr(row, c.name) for c in columns})

        return KpiTable(
            start=report.start,
            end=report.end,
            by=report.by,
            timezone=report.timezone,
            columns=columns,
            rows=tuple(line(r) for r in report.rows),
            total=line(report.total),
            incidents_by_type=tuple(
                (i.request_type, i.category, i.count) for i in report.incidents_by_type
            ),
        )

    async def kpis_csv(self, start: date, end: date, by: str, t: Translator | None = None) -> str:
        return report_csv(await self._report(start, end, by), t)

    async def _month(self, month: str) -> agent_month_report.AgentMonth:
        try:
            return await agent_month_report.compute(self.sessions, self.cfg, month)
        except ReportError as exc:
            raise RequestRefusedError(str(exc)) from exc

    async def agent_month(self, month: str) -> AgentMonthTable:
        review = await self._month(month)

        def line(r: agent_month_report.AgentMonthRow) -> AgentMonthLine:
            return AgentMonthLine(
                key=r.key,
                name=r.name,
                incidents_handled=r.incidents_handled,
                consultations_answered=r.consultations_answered,
                satisfaction_recorded=r.satisfaction_recorded,
                callbacks_done=r.callbacks_done,
            )

        return AgentMonthTable(
            month=review.month,
            timezone=review.timezone,
            seats=tuple(line(r) for r in review.seats),
            staff=tuple(line(r) for r in review.staff),
        )

    async def agent_month_csv(self, month: str, t: Translator | None = None) -> str:
        return agent_month_csv(await self._month(month), t)
